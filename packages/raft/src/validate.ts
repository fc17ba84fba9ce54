import { fail } from "@hsmpool/errors";
import type { Config, Entry, Message, MessageType } from "./types.js";

/** Every Raft message type, for codecs that must refuse anything else. */
export const MESSAGE_TYPES: readonly MessageType[] = [
  "MsgProp",
  "MsgApp",
  "MsgAppResp",
  "MsgVote",
  "MsgVoteResp",
  "MsgPreVote",
  "MsgPreVoteResp",
  "MsgHeartbeat",
  "MsgHeartbeatResp",
  "MsgSnap",
  "MsgTimeoutNow",
  "MsgReadIndex",
  "MsgReadIndexResp",
];
const MESSAGE_TYPE_SET: ReadonlySet<string> = new Set(MESSAGE_TYPES);

function isIndex(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

function isNodeId(s: unknown): s is string {
  return typeof s === "string" && s.length > 0;
}

/** Config boundary check: every mistake is a BadParameter naming the field. */
export function validateConfig(c: Config): void {
  if (typeof c !== "object" || c === null) fail("BadParameter", "raft config must be an object");
  if (!isNodeId(c.id)) fail("BadParameter", "raft config.id must be a non-empty node id");
  if (!Number.isSafeInteger(c.heartbeatTicks) || c.heartbeatTicks < 1) {
    fail("BadParameter", `raft config.heartbeatTicks must be an integer >= 1 (got ${c.heartbeatTicks})`);
  }
  if (!Number.isSafeInteger(c.electionTicks) || c.electionTicks <= c.heartbeatTicks) {
    fail(
      "BadParameter",
      `raft config.electionTicks must be an integer > heartbeatTicks (got ${c.electionTicks}, heartbeat ${c.heartbeatTicks})`,
    );
  }
  requireOptionalPositive("electionJitterTicks", c.electionJitterTicks);
  if (typeof c.random !== "function")
    fail("BadParameter", "raft config.random must be a function returning [0, 1)");
  if (typeof c.storage !== "object" || c.storage === null)
    fail("BadParameter", "raft config.storage is required");
  requireOptionalPositive("maxInflightMsgs", c.maxInflightMsgs);
  requireOptionalPositive("maxSizePerMsgBytes", c.maxSizePerMsgBytes);
  if (c.applied !== undefined && !isIndex(c.applied)) {
    fail("BadParameter", `raft config.applied must be a non-negative integer (got ${c.applied})`);
  }
  const { conf } = c.storage.initialState();
  const overlap = conf.voters.filter((id) => conf.learners.includes(id));
  if (overlap.length > 0) {
    fail("BadParameter", `storage conf lists ${overlap.join(", ")} as both voter and learner`);
  }
}

function validateEntry(e: Entry, where: string): void {
  if (typeof e !== "object" || e === null) fail("BadParameter", `${where}: entry must be an object`);
  if (!isIndex(e.term) || !isIndex(e.index))
    fail("BadParameter", `${where}: entry term/index must be integers >= 0`);
  if (e.type !== "normal" && e.type !== "confChange") {
    fail("BadParameter", `${where}: entry type must be normal or confChange`);
  }
  if (!(e.data instanceof Uint8Array)) fail("BadParameter", `${where}: entry data must be a Uint8Array`);
}

/**
 * Message boundary check. A message from the network is untrusted in shape (the
 * peer is attested, but bytes still get decoded), so a malformed one is refused
 * with BadParameter before it can touch any state.
 */
export function validateMessage(m: Message, self: string): void {
  if (typeof m !== "object" || m === null) fail("BadParameter", "raft message must be an object");
  if (!MESSAGE_TYPE_SET.has(m.type)) fail("BadParameter", `unknown raft message type ${String(m.type)}`);
  if (!isNodeId(m.from)) fail("BadParameter", `${m.type}: from must be a node id`);
  if (m.to !== self) fail("BadParameter", `${m.type} for ${String(m.to)} delivered to ${self}`);
  if (m.from === self) fail("BadParameter", `${m.type} from ${self} to itself`);
  if (!isIndex(m.term)) fail("BadParameter", `${m.type}: term must be an integer >= 0`);
  for (const k of ["logTerm", "index", "commit", "rejectHint"] as const) {
    if (m[k] !== undefined && !isIndex(m[k])) fail("BadParameter", `${m.type}: ${k} must be an integer >= 0`);
  }
  if (m.context !== undefined && !(m.context instanceof Uint8Array)) {
    fail("BadParameter", `${m.type}: context must be a Uint8Array`);
  }
  if (m.entries !== undefined) {
    if (!Array.isArray(m.entries)) fail("BadParameter", `${m.type}: entries must be an array`);
    m.entries.forEach((e, i) => {
      validateEntry(e, `${m.type} entry ${i}`);
      const first = m.entries![0]!;
      if (m.type === "MsgApp" && e.index !== first.index + i) {
        fail("BadParameter", `${m.type}: entry indexes must be consecutive`);
      }
    });
    if (m.type === "MsgApp" && m.entries.length > 0 && m.entries[0]!.index !== (m.index ?? 0) + 1) {
      fail("BadParameter", "MsgApp: first entry must follow the prev index");
    }
  }
  // Forwarded proposals/reads carry term 0; so may a pre-vote refusal from a node that
  // never saw any term (as in etcd). Everything else belongs to a term >= 1.
  if ((m.type === "MsgProp" || m.type === "MsgReadIndex") && m.term !== 0) {
    fail("BadParameter", `${m.type}: a forwarded ${m.type} carries term 0`);
  }
  if (m.term === 0 && m.type !== "MsgProp" && m.type !== "MsgReadIndex" && m.type !== "MsgPreVoteResp") {
    fail("BadParameter", `${m.type}: term must be >= 1`);
  }
  if (m.type === "MsgApp") validateAppendTerms(m);
  if (m.type === "MsgProp" && (m.entries === undefined || m.entries.length === 0)) {
    fail("BadParameter", "MsgProp must carry at least one entry");
  }
  if (m.type === "MsgSnap") {
    const s = m.snapshot;
    if (typeof s !== "object" || s === null || !isIndex(s.meta?.index) || !isIndex(s.meta?.term)) {
      fail("BadParameter", "MsgSnap must carry a snapshot with meta.index and meta.term");
    }
    if (!Array.isArray(s.meta.conf?.voters) || !Array.isArray(s.meta.conf?.learners)) {
      fail("BadParameter", "MsgSnap snapshot must carry meta.conf voters and learners");
    }
    if (!(s.data instanceof Uint8Array)) fail("BadParameter", "MsgSnap snapshot data must be a Uint8Array");
    if (s.meta.term > m.term)
      fail("BadParameter", `MsgSnap: snapshot term ${s.meta.term} above message term ${m.term}`);
  }
}

/** Terms in a MsgApp never exceed the sender's term and never go backwards along the log. */
function validateAppendTerms(m: Message): void {
  let previous = m.logTerm ?? 0;
  if (previous > m.term) fail("BadParameter", `MsgApp: logTerm ${previous} above message term ${m.term}`);
  for (const e of m.entries ?? []) {
    if (e.term < previous || e.term > m.term) {
      fail("BadParameter", `MsgApp: entry ${e.index} has term ${e.term} outside [${previous}, ${m.term}]`);
    }
    previous = e.term;
  }
}

/** An optional config field that, when given, must be an integer >= 1 (BadParameter naming it). */
function requireOptionalPositive(field: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
    fail("BadParameter", `raft config.${field} must be an integer >= 1 (got ${value})`);
  }
}
