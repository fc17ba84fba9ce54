/**
 * Raft core throughput: entries proposed, replicated, committed and applied on
 * every member of an in-memory 3-voter cluster, against the same workload on a
 * 1-voter cluster (no replication: the core's local append/commit/apply path),
 * measured in the same run with alternating rounds. The ratio is the cost of
 * replication inside the core (message handling, progress tracking, quorum math).
 * Goal: ratio >= 0.30 (3 members do at most ~3x the work of one).
 */
import { RawNode } from "../rawnode.js";
import { MemoryStorage } from "../storage.js";
import type { Message } from "../types.js";

const ROUNDS = 4;
const ROUND_MS = 400;
const BATCH = 64;
const PAYLOAD_BYTES = 256;
const GOAL_RATIO = 0.3;

interface Member {
  node: RawNode;
  storage: MemoryStorage;
  applied: number;
}

function cluster(ids: string[]): Map<string, Member> {
  const conf = { voters: ids, learners: [] };
  const members = new Map<string, Member>();
  let seed = 1;
  for (const id of ids) {
    const storage = new MemoryStorage(conf);
    const s = seed++;
    const node = new RawNode({
      id,
      storage,
      electionTicks: 10,
      heartbeatTicks: 1,
      random: () => (s * 0.137) % 1,
      preVote: true,
      checkQuorum: true,
    });
    members.set(id, { node, storage, applied: 0 });
  }
  return members;
}

/** Drain every Ready and deliver every message until the cluster is quiet. */
function settle(members: Map<string, Member>): void {
  const queue: Message[] = [];
  const drain = (m: Member) => {
    while (m.node.hasReady()) {
      const rd = m.node.ready();
      if (rd.snapshot) m.storage.applySnapshot(rd.snapshot);
      m.storage.append(rd.entries);
      if (rd.hardState) m.storage.setHardState(rd.hardState);
      queue.push(...rd.messages);
      m.applied += rd.committedEntries.length;
      m.node.advance(rd);
    }
  };
  for (const m of members.values()) drain(m);
  for (let i = 0; i < queue.length; i++) {
    const msg = queue[i]!;
    const to = members.get(msg.to)!;
    to.node.step(msg);
    drain(to);
  }
}

function elected(ids: string[]): Map<string, Member> {
  const members = cluster(ids);
  members.get(ids[0]!)!.node.campaign();
  settle(members);
  return members;
}

/** Propose batches on the leader for `budgetMs`; returns entries applied on every member per second. */
function runFor(members: Map<string, Member>, leader: string, budgetMs: number): number {
  const payload = new Uint8Array(PAYLOAD_BYTES).fill(7);
  const before = Math.min(...[...members.values()].map((m) => m.applied));
  const start = performance.now();
  let now = start;
  while (now - start < budgetMs) {
    const node = members.get(leader)!.node;
    for (let i = 0; i < BATCH; i++) node.propose(payload);
    settle(members);
    now = performance.now();
  }
  const after = Math.min(...[...members.values()].map((m) => m.applied));
  return ((after - before) / (now - start)) * 1000;
}

const three = elected(["n1", "n2", "n3"]);
const one = elected(["n1"]);
runFor(three, "n1", 150); // warm-up
runFor(one, "n1", 150);
let threeRate = 0;
let oneRate = 0;
for (let r = 0; r < ROUNDS; r++) {
  threeRate += runFor(three, "n1", ROUND_MS) / ROUNDS;
  oneRate += runFor(one, "n1", ROUND_MS) / ROUNDS;
}
const ratio = threeRate / oneRate;
console.log(`3-voter cluster: ${Math.round(threeRate)} entries/s committed and applied on every member`);
console.log(`1-voter baseline: ${Math.round(oneRate)} entries/s`);
console.log(
  `ratio 3-voter/1-voter: ${ratio.toFixed(2)} (goal >= ${GOAL_RATIO}) ${ratio >= GOAL_RATIO ? "OK" : "BELOW GOAL"}`,
);
