import type { Message, MessageType } from "@hsmpool/raft";

/** Readable names for transcripts ("AppendEntries" rather than "MsgApp"). */
const NAMES: Record<MessageType, string> = {
  MsgProp: "Propose",
  MsgApp: "AppendEntries",
  MsgAppResp: "AppendEntriesResp",
  MsgVote: "RequestVote",
  MsgVoteResp: "VoteResp",
  MsgPreVote: "PreVote",
  MsgPreVoteResp: "PreVoteResp",
  MsgHeartbeat: "Heartbeat",
  MsgHeartbeatResp: "HeartbeatResp",
  MsgSnap: "InstallSnapshot",
  MsgTimeoutNow: "TimeoutNow",
  MsgReadIndex: "ReadIndex",
  MsgReadIndexResp: "ReadIndexResp",
};

/** Small stable codes for the trace hash. */
export const MESSAGE_CODES: Record<MessageType, number> = {
  MsgProp: 1,
  MsgApp: 2,
  MsgAppResp: 3,
  MsgVote: 4,
  MsgVoteResp: 5,
  MsgPreVote: 6,
  MsgPreVoteResp: 7,
  MsgHeartbeat: 8,
  MsgHeartbeatResp: 9,
  MsgSnap: 10,
  MsgTimeoutNow: 11,
  MsgReadIndex: 13,
  MsgReadIndexResp: 14,
};

/** "AppendEntries(term 3, idx 17..19, commit 16)" */
export function describeMessage(m: Message): string {
  const parts = [`term ${m.term}`];
  const n = m.entries?.length ?? 0;
  switch (m.type) {
    case "MsgApp":
      parts.push(n > 0 ? `idx ${(m.index ?? 0) + 1}..${(m.index ?? 0) + n}` : `prev ${m.index ?? 0}`);
      parts.push(`commit ${m.commit ?? 0}`);
      break;
    case "MsgAppResp":
      parts.push(m.reject ? `reject idx ${m.index ?? 0} hint ${m.rejectHint ?? 0}` : `idx ${m.index ?? 0}`);
      break;
    case "MsgVote":
    case "MsgPreVote":
      parts.push(`last idx ${m.index ?? 0} term ${m.logTerm ?? 0}`);
      break;
    case "MsgVoteResp":
    case "MsgPreVoteResp":
      parts.push(m.reject ? "rejected" : "granted");
      break;
    case "MsgHeartbeat":
      parts.push(`commit ${m.commit ?? 0}`);
      break;
    case "MsgSnap":
      parts.push(`snap idx ${m.snapshot?.meta.index ?? 0}`);
      break;
    case "MsgProp":
      parts.push(`${n} entries`);
      break;
    case "MsgReadIndexResp":
      parts.push(`idx ${m.index ?? 0}`);
      break;
    default:
      break;
  }
  return `${NAMES[m.type]}(${parts.join(", ")})`;
}

/** A deep-enough copy that two nodes never share a mutable object (byte payloads are immutable by contract). */
export function cloneMessage(m: Message): Message {
  const c: Message = { ...m };
  if (m.entries) c.entries = m.entries.map((e) => ({ ...e }));
  if (m.snapshot) {
    const meta = m.snapshot.meta;
    c.snapshot = {
      meta: {
        index: meta.index,
        term: meta.term,
        conf: { voters: [...meta.conf.voters], learners: [...meta.conf.learners] },
      },
      data: m.snapshot.data,
    };
  }
  return c;
}
