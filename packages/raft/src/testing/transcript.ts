/**
 * Transcript-style scenario runner (in the spirit of etcd's datadriven tests).
 * A script is a list of commands, one per line; `#` lines are the teacher's notes.
 * Throughout, a SafetyChecker watches election safety, state machine safety, leader
 * completeness and (at the end) log matching.
 * Actions drive a test Network, `expect` lines check the outcome, and an action
 * may end in `=> error Code "message part" key=value` to assert a refusal.
 *
 * Actions
 *   cluster n1 n2 n3 [learners=n4] [prevote] [checkquorum] [election=10] [heartbeat=1]
 *           [seed=1] [noforward] [inflight=N] [maxmsg=BYTES]
 *                                seed: the election-timeout draws (@hsmpool/faults Prng);
 *                                a story that needs a particular draw names its seed
 *   add-node n4                  a blank node (empty storage) that can be added later
 *   campaign n1                  n1 starts an election now
 *   tick n1,n2|all [xN]          advance logical time (no delivery)
 *   deliver [a->b ...] [type=T,U] [max=N]
 *                                deliver queued messages (and their consequences)
 *                                matching the links (`*` = any) until none is left
 *                                (or N were delivered)
 *   drop [a->b ...] [type=T]     discard matching queued messages
 *   run N [nodes]                N rounds of: every live node (or the listed ones)
 *                                ticks once, then everything is delivered
 *   isolate n1 | block a->b | partition n1 n2 | n3 | heal
 *   crash n1 | restart n1        lose volatile state / come back from storage
 *   propose n1 text | conf n1 addVoter|addLearner|removeNode n4 | transfer n1 n2
 *   read n1 ctx | compact n1 | report-snapshot n1 n4 ok|fail | status
 * Expectations (node lists are comma separated, or `all` for every live node)
 *   expect leader n1 [term=T]    expect no-leader [nodes]   expect role nodes R
 *   expect term nodes T          expect lead nodes n1|none  expect vote nodes n1|none
 *   expect commit nodes I        expect applied nodes a b c|(none)
 *   expect log n1 I:T ...        expect first-index n1 I    expect conf nodes voters=.. [learners=..]
 *   expect progress n1 n4 [state=S] [match=I]
 *   expect queued a->b Type      expect not-queued a->b Type
 *   expect read n1 ctx index=I   expect no-read n1 ctx      expect transferee n1 n2|none
 */
import { isHsmPoolError } from "@hsmpool/errors";
import type { ConfChangeType, Message, UnsafeVariant } from "../types.js";
import { Network, type NetworkOptions } from "./network.js";
import { SafetyChecker } from "./safety.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface TranscriptOptions {
  /** Force a deliberately broken core (checker self-test). */
  unsafeVariant?: UnsafeVariant;
}

export class TranscriptError extends Error {}

interface Line {
  no: number;
  text: string;
}

function parseLinks(tokens: string[]): { links: [string, string][]; types: string[]; max: number } {
  const links: [string, string][] = [];
  let types: string[] = [];
  let max = Number.POSITIVE_INFINITY;
  for (const t of tokens) {
    if (t.startsWith("type=")) types = t.slice(5).split(",");
    else if (t.startsWith("max=")) max = Number(t.slice(4));
    else {
      const [a, b] = t.split("->");
      if (!a || !b) throw new TranscriptError(`bad link ${t} (want a->b)`);
      links.push([a, b]);
    }
  }
  return { links, types, max };
}

function linkFilter(tokens: string[]): (m: Message) => boolean {
  const { links, types } = parseLinks(tokens);
  return (m) =>
    (types.length === 0 || types.includes(m.type)) &&
    (links.length === 0 || links.some(([a, b]) => (a === "*" || a === m.from) && (b === "*" || b === m.to)));
}

export function runTranscript(script: string, opts: TranscriptOptions = {}): string[] {
  const lines: Line[] = script
    .split("\n")
    .map((text, i) => ({ no: i + 1, text: text.trim() }))
    .filter((l) => l.text.length > 0 && !l.text.startsWith("#"));
  let net: Network | undefined;
  let checker: SafetyChecker | undefined;
  const out: string[] = [];
  const network = (): Network => {
    if (!net) throw new TranscriptError("no cluster yet (start with `cluster ...`)");
    return net;
  };

  for (const line of lines) {
    try {
      const [command, expectation] = line.text.split(" => ");
      const tokens = command!.split(/\s+/);
      if (tokens[0] === "cluster") {
        checker?.checkLogMatching();
        net = new Network(parseCluster(tokens.slice(1), opts));
        // Raft's safety properties are checked throughout every scenario, not just the expect lines.
        checker = new SafetyChecker(net);
        continue;
      }
      if (tokens[0] === "expect") {
        checkExpectation(network(), tokens.slice(1));
        continue;
      }
      let error: unknown;
      try {
        runAction(network(), tokens, out);
      } catch (e) {
        if (!isHsmPoolError(e)) throw e;
        error = e;
      }
      checkError(error, expectation);
    } catch (e) {
      const state = net ? `\ncluster state:\n${net.describe()}` : "";
      throw new TranscriptError(`line ${line.no}: ${line.text}\n  ${(e as Error).message}${state}`);
    }
  }
  checker?.checkLogMatching();
  return out;
}

function parseCluster(tokens: string[], opts: TranscriptOptions): NetworkOptions {
  const o: NetworkOptions = { voters: [] };
  for (const t of tokens) {
    const [k, v] = t.split("=");
    if (v === undefined) {
      if (t === "prevote") o.preVote = true;
      else if (t === "checkquorum") o.checkQuorum = true;
      else if (t === "noforward") o.disableProposalForwarding = true;
      else o.voters.push(t);
    } else if (k === "learners") o.learners = v.split(",");
    else if (k === "election") o.electionTicks = Number(v);
    else if (k === "heartbeat") o.heartbeatTicks = Number(v);
    else if (k === "seed") o.seed = Number(v);
    else if (k === "inflight") o.maxInflightMsgs = Number(v);
    else if (k === "maxmsg") o.maxSizePerMsgBytes = Number(v);
    else throw new TranscriptError(`unknown cluster option ${t}`);
  }
  if (opts.unsafeVariant) o.unsafeVariant = opts.unsafeVariant;
  return o;
}

function nodes(net: Network, list: string): string[] {
  return list === "all" ? net.liveIds() : list.split(",");
}

function arg(tokens: string[], i: number, what: string): string {
  const t = tokens[i];
  if (t === undefined) throw new TranscriptError(`missing ${what}`);
  return t;
}

function runAction(net: Network, tokens: string[], out: string[]): void {
  const [cmd] = tokens;
  const node = () => net.member(arg(tokens, 1, "node")).node;
  const after = () => net.process(arg(tokens, 1, "node"));
  switch (cmd) {
    case "add-node":
      net.addMember(arg(tokens, 1, "node"));
      return;
    case "campaign":
      node().campaign();
      after();
      return;
    case "tick": {
      const times = tokens[2]?.startsWith("x") ? Number(tokens[2].slice(1)) : 1;
      for (let i = 0; i < times; i++) for (const id of nodes(net, arg(tokens, 1, "nodes"))) net.tick(id);
      return;
    }
    case "deliver":
      net.deliver(linkFilter(tokens.slice(1)), parseLinks(tokens.slice(1)).max);
      return;
    case "drop": {
      const f = linkFilter(tokens.slice(1));
      net.queue = net.queue.filter((m) => !f(m));
      return;
    }
    case "run": {
      const ids = tokens[2] ? nodes(net, tokens[2]) : undefined;
      for (let i = 0; i < Number(arg(tokens, 1, "rounds")); i++) net.round(ids);
      return;
    }
    case "isolate":
      net.isolate(arg(tokens, 1, "node"));
      return;
    case "block": {
      const { links } = parseLinks(tokens.slice(1));
      for (const [a, b] of links) net.block(a, b);
      return;
    }
    case "partition": {
      const groups = tokens
        .slice(1)
        .join(" ")
        .split("|")
        .map((g) => g.trim().split(/\s+/));
      net.partition(groups);
      return;
    }
    case "heal":
      net.heal();
      return;
    case "crash":
      net.crash(arg(tokens, 1, "node"));
      return;
    case "restart":
      net.restart(arg(tokens, 1, "node"));
      return;
    case "propose":
      try {
        node().propose(enc.encode(tokens.slice(2).join(" ")));
      } finally {
        after();
      }
      return;
    case "conf":
      try {
        node().proposeConfChange({
          type: arg(tokens, 2, "change type") as ConfChangeType,
          node: arg(tokens, 3, "target node"),
        });
      } finally {
        after();
      }
      return;
    case "transfer":
      try {
        node().transferLeadership(arg(tokens, 2, "target node"));
      } finally {
        after();
      }
      return;
    case "read":
      try {
        node().readIndex(enc.encode(arg(tokens, 2, "request context")));
      } finally {
        after();
      }
      return;
    case "compact":
      net.compact(arg(tokens, 1, "node"));
      return;
    case "report-snapshot":
      node().reportSnapshot(arg(tokens, 2, "follower"), arg(tokens, 3, "ok|fail") === "ok");
      after();
      return;
    case "status":
      out.push(net.describe());
      return;
    default:
      throw new TranscriptError(`unknown command ${cmd}`);
  }
}

function checkError(error: unknown, expectation: string | undefined): void {
  if (expectation === undefined) {
    if (error) throw error;
    return;
  }
  const m = /^error (\w+)(?: "([^"]*)")?((?: \w+=\S+)*)$/.exec(expectation.trim());
  if (!m) throw new TranscriptError(`bad expectation "${expectation}" (want: error Code "text" key=value)`);
  const [, code, text, details] = m;
  if (!isHsmPoolError(error)) throw new TranscriptError(`expected error ${code}, but the action succeeded`);
  if (error.code !== code)
    throw new TranscriptError(`expected error ${code}, got ${error.code}: ${error.message}`);
  if (text !== undefined && !error.message.includes(text)) {
    throw new TranscriptError(`expected message containing "${text}", got "${error.message}"`);
  }
  for (const kv of (details ?? "").trim().split(/\s+/).filter(Boolean)) {
    const [k, v] = kv.split("=");
    const actual = String(error.details?.[k!] ?? "none");
    if (actual !== v) throw new TranscriptError(`expected error detail ${k}=${v}, got ${actual}`);
  }
}

function expectEqual(what: string, actual: unknown, expected: unknown): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new TranscriptError(`${what}: expected ${e}, got ${a}`);
}

function checkExpectation(net: Network, t: string[]): void {
  const [what] = t;
  const status = (id: string) => net.member(id).node.status();
  const keyed = (from: number) =>
    Object.fromEntries(t.slice(from).map((kv) => kv.split("=") as [string, string])) as Record<
      string,
      string
    >;
  switch (what) {
    case "leader": {
      const id = arg(t, 1, "node");
      expectEqual(`role of ${id}`, status(id).role, "leader");
      const term = keyed(2).term;
      if (term !== undefined) expectEqual(`term of ${id}`, status(id).term, Number(term));
      return;
    }
    case "no-leader":
      for (const id of nodes(net, t[1] ?? "all")) {
        if (status(id).role === "leader") throw new TranscriptError(`${id} is leader`);
      }
      return;
    case "role":
      for (const id of nodes(net, arg(t, 1, "nodes"))) expectEqual(`role of ${id}`, status(id).role, t[2]);
      return;
    case "term":
      for (const id of nodes(net, arg(t, 1, "nodes")))
        expectEqual(`term of ${id}`, status(id).term, Number(t[2]));
      return;
    case "lead":
      for (const id of nodes(net, arg(t, 1, "nodes"))) {
        expectEqual(`leader known to ${id}`, status(id).lead ?? "none", t[2]);
      }
      return;
    case "vote":
      for (const id of nodes(net, arg(t, 1, "nodes")))
        expectEqual(`vote of ${id}`, status(id).vote ?? "none", t[2]);
      return;
    case "commit":
      for (const id of nodes(net, arg(t, 1, "nodes")))
        expectEqual(`commit of ${id}`, status(id).commit, Number(t[2]));
      return;
    case "applied": {
      const want = t[2] === "(none)" ? [] : t.slice(2);
      for (const id of nodes(net, arg(t, 1, "nodes")))
        expectEqual(`applied data of ${id}`, net.member(id).app.data, want);
      return;
    }
    case "log": {
      const id = arg(t, 1, "node");
      const log = net
        .member(id)
        .node.logEntries()
        .map((e) => `${e.index}:${e.term}`);
      expectEqual(`log (index:term) of ${id}`, log, t.slice(2));
      return;
    }
    case "first-index": {
      const id = arg(t, 1, "node");
      expectEqual(`first index of ${id}`, net.member(id).storage.firstIndex(), Number(t[2]));
      return;
    }
    case "conf": {
      const kv = keyed(2);
      const split = (s: string | undefined) => (s ? s.split(",") : []);
      for (const id of nodes(net, arg(t, 1, "nodes"))) {
        expectEqual(`conf of ${id}`, status(id).conf, {
          voters: split(kv.voters),
          learners: split(kv.learners),
        });
      }
      return;
    }
    case "progress": {
      const pr = status(arg(t, 1, "leader")).progress?.[arg(t, 2, "follower")];
      if (!pr) throw new TranscriptError(`${t[1]} has no progress for ${t[2]} (not leader, or not a member)`);
      const kv = keyed(3);
      if (kv.state !== undefined) expectEqual(`progress state of ${t[2]}`, pr.state, kv.state);
      if (kv.match !== undefined) expectEqual(`progress match of ${t[2]}`, pr.match, Number(kv.match));
      return;
    }
    case "queued":
    case "not-queued": {
      const f = linkFilter([arg(t, 1, "link"), `type=${arg(t, 2, "message type")}`]);
      const found = net.queue.some(f);
      if (found !== (what === "queued")) {
        throw new TranscriptError(`${t[2]} on ${t[1]} is ${found ? "" : "not "}queued`);
      }
      return;
    }
    case "read":
    case "no-read": {
      const id = arg(t, 1, "node");
      const ctx = arg(t, 2, "request context");
      const rs = net.member(id).app.readStates.find((r) => dec.decode(r.requestCtx) === ctx);
      if (what === "no-read") {
        if (rs) throw new TranscriptError(`${id} got a read state for ${ctx} (index ${rs.index})`);
        return;
      }
      if (!rs) throw new TranscriptError(`${id} has no read state for ${ctx}`);
      const index = keyed(3).index;
      if (index !== undefined) expectEqual(`read index for ${ctx}`, rs.index, Number(index));
      return;
    }
    case "transferee": {
      const id = arg(t, 1, "node");
      expectEqual(`transferee of ${id}`, status(id).leadTransferee ?? "none", t[2]);
      return;
    }
    default:
      throw new TranscriptError(`unknown expectation ${what}`);
  }
}
