import type { Entry, HardState, Message, NodeId, Snapshot, Storage } from "@hsmpool/raft";
import { chainDigest, type Digest, digestHex, EMPTY_DIGEST, sameDigest } from "./digest.js";
import { snapshotDigest } from "./kv.js";

/**
 * Raft safety invariants, checked incrementally at the moment each fact is observed
 * (so "after every event" costs O(what changed), not O(log length)):
 *
 *  election-safety       at most one leader per term (seen from role changes and from
 *                        leader-only messages: AppendEntries, Heartbeat, InstallSnapshot)
 *  log-matching          two logs holding an entry with the same index and term agree on
 *                        the whole prefix up to it (rolling digest per node log)
 *  commit-bounds         a node never reports a commit index beyond its own log
 *  leader-completeness   a new leader of term T holds every entry committed in a term < T
 *  state-machine-safety  no two nodes apply different entries (or prefixes) at one index
 *  persist-before-send   after a crash a node remembers every term it spoke in and every
 *                        vote it granted (it persisted them before the message left)
 *  linearizable-read     a ReadIndex read sees every write acknowledged before it started
 *  durability            acknowledged writes survive: the final leader holds them all
 *  liveness              (checked by the cluster) after the last fault heals a leader
 *                        exists and writes commit within a bounded time
 *
 * "Committed in a term < T" is approximated from above: each index records the lowest
 * term in which any node learned it was committed (>= the term it was committed in),
 * so the check can miss a violation but never invent one.
 */

export type InvariantName =
  | "election-safety"
  | "log-matching"
  | "commit-bounds"
  | "leader-completeness"
  | "state-machine-safety"
  | "persist-before-send"
  | "linearizable-read"
  | "durability"
  | "liveness"
  /** The code under test (or the harness) threw: a Raft core assertion or a crash. */
  | "no-crash";

export class InvariantViolation extends Error {
  override readonly name = "InvariantViolation";
  constructor(
    readonly invariant: InvariantName,
    message: string,
  ) {
    super(`${invariant}: ${message}`);
  }
}

function violate(invariant: InvariantName, message: string): never {
  throw new InvariantViolation(invariant, message);
}

/** A node's durable log as digests: entries base+1..last, plus the digest at `base`. */
export class LogMirror {
  base = 0;
  private baseDigest: Digest = EMPTY_DIGEST;
  private baseTerm = 0;
  private terms: number[] = [];
  private digests: Digest[] = [];

  reset(base: number, baseTerm: number, baseDigest: Digest): void {
    this.base = base;
    this.baseTerm = baseTerm;
    this.baseDigest = baseDigest;
    this.terms = [];
    this.digests = [];
  }

  get lastIndex(): number {
    return this.base + this.terms.length;
  }

  digestAt(index: number): Digest | undefined {
    if (index === this.base) return this.baseDigest;
    if (index < this.base) return undefined;
    return this.digests[index - this.base - 1];
  }

  termAt(index: number): number | undefined {
    if (index === this.base) return this.baseTerm;
    if (index < this.base) return undefined;
    return this.terms[index - this.base - 1];
  }

  /**
   * Append (overwriting a conflicting suffix, as storage does). Returns the appended
   * entries with their digests, for the cross-node check; entries at or below the
   * base (already in the snapshot) are skipped.
   */
  append(entries: readonly Entry[]): { index: number; term: number; digest: Digest }[] {
    const out: { index: number; term: number; digest: Digest }[] = [];
    for (const e of entries) {
      if (e.index <= this.base) continue;
      const pos = e.index - this.base - 1;
      if (pos > this.terms.length) {
        throw new Error(`log mirror gap: appending ${e.index} after ${this.lastIndex}`);
      }
      this.terms.length = pos;
      this.digests.length = pos;
      const prev = pos === 0 ? this.baseDigest : (this.digests[pos - 1] as Digest);
      const d = chainDigest(prev, e);
      this.terms.push(e.term);
      this.digests.push(d);
      out.push({ index: e.index, term: e.term, digest: d });
    }
    return out;
  }
}

interface PendingRead {
  key: number;
  /** Log index of the latest write to `key` acknowledged before the read started. */
  mustSeeIndex: number;
  startUs: number;
}

/** The applied index and state digest a snapshot's data stands for. */
export type SnapshotDigestOf = (data: Uint8Array, index: number) => { applied: number; digest: Digest };

export class RaftChecker {
  /** `snapshotDigestOf`: how to read a snapshot's state digest (default: the sim's KV state machine). */
  constructor(private readonly snapshotDigestOf: SnapshotDigestOf = snapshotDigest) {}

  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** index -> term -> digest and the node that first held it. */
  private readonly logAt = new Map<number, Map<number, { digest: Digest; node: NodeId }>>();
  private readonly mirrors = new Map<NodeId, LogMirror>();
  private readonly committed: (Digest | undefined)[] = [];
  private readonly commitTerm: number[] = [];
  private committedMax = 0;
  private readonly lastCommitSeen = new Map<NodeId, number>();
  private readonly applied: Digest[] = [EMPTY_DIGEST];
  private readonly appliedBy: NodeId[] = [""];
  private readonly writeIndex = new Map<number, number[]>();
  private readonly ackedIndexByKey = new Map<number, number>();
  private readonly pendingReads = new Map<number, PendingRead>();
  private readonly maxTermSent = new Map<NodeId, number>();
  /** The highest log index each node acknowledged to a leader (MsgAppResp), and in which term. */
  private readonly appendAcked = new Map<NodeId, { term: number; index: number }>();
  private readonly votesGranted = new Map<NodeId, Map<number, NodeId>>();
  private readonly acks: { index: number; term: number }[] = [];
  maxAckedIndex = 0;
  acked = 0;
  readsChecked = 0;

  mirror(node: NodeId): LogMirror {
    let m = this.mirrors.get(node);
    if (!m) {
      m = new LogMirror();
      this.mirrors.set(node, m);
    }
    return m;
  }

  get highestCommitted(): number {
    return this.committedMax;
  }

  observeLeader(node: NodeId, term: number, how: string): void {
    const prev = this.leaderOfTerm.get(term);
    if (prev === undefined) this.leaderOfTerm.set(term, node);
    else if (prev !== node)
      violate("election-safety", `${prev} and ${node} are both leader of term ${term} (${how})`);
  }

  /** Entries persisted by `node` (Ready.entries, after its snapshot if any). */
  observeAppend(node: NodeId, entries: readonly Entry[]): void {
    for (const x of this.mirror(node).append(entries)) this.crossCheck(node, x.index, x.term, x.digest);
  }

  private crossCheck(node: NodeId, index: number, term: number, digest: Digest): void {
    let byTerm = this.logAt.get(index);
    if (!byTerm) {
      byTerm = new Map();
      this.logAt.set(index, byTerm);
    }
    const seen = byTerm.get(term);
    if (!seen) byTerm.set(term, { digest, node });
    else if (!sameDigest(seen.digest, digest)) {
      violate(
        "log-matching",
        `${seen.node} and ${node} both hold an entry at index ${index} term ${term} but their logs differ up to it`,
      );
    }
  }

  /** A snapshot installed from the leader replaces the node's log. */
  observeSnapshotInstall(node: NodeId, snap: Snapshot): void {
    const d = this.snapshotDigestOf(snap.data, snap.meta.index);
    if (d.applied !== snap.meta.index) {
      violate(
        "state-machine-safety",
        `${node} installed a snapshot at ${snap.meta.index} whose state is at ${d.applied}`,
      );
    }
    this.mirror(node).reset(snap.meta.index, snap.meta.term, d.digest);
    if (snap.meta.index > 0) this.crossCheck(node, snap.meta.index, snap.meta.term, d.digest);
    this.checkApplied(node, snap.meta.index, d.digest);
  }

  /** After a restart the mirror is rebuilt from the recovered storage. */
  observeRecovered(node: NodeId, storage: Storage, hardState: HardState): void {
    const snap = storage.snapshot();
    const d = this.snapshotDigestOf(snap.data, snap.meta.index);
    this.mirror(node).reset(snap.meta.index, snap.meta.term, d.digest);
    this.checkApplied(node, snap.meta.index, d.digest);
    const first = Math.max(storage.firstIndex(), snap.meta.index + 1);
    const last = storage.lastIndex();
    if (last >= first) this.observeAppend(node, storage.entries(first, last + 1));
    this.lastCommitSeen.set(node, hardState.commit);

    const spoke = this.maxTermSent.get(node) ?? 0;
    if (hardState.term < spoke) {
      violate(
        "persist-before-send",
        `${node} restarted at term ${hardState.term} but had sent messages in term ${spoke}`,
      );
    }
    const acked = this.appendAcked.get(node);
    if (acked && acked.term === hardState.term && storage.lastIndex() < acked.index) {
      violate(
        "persist-before-send",
        `${node} acknowledged log index ${acked.index} in term ${acked.term} but restarted with last index ${storage.lastIndex()}`,
      );
    }
    this.appendAcked.delete(node);
    const granted = this.votesGranted.get(node)?.get(hardState.term);
    if (granted !== undefined && hardState.vote !== granted) {
      violate(
        "persist-before-send",
        `${node} granted its term-${hardState.term} vote to ${granted} but restarted with vote ${hardState.vote ?? "none"}`,
      );
    }
  }

  /** Every message a node sends (after its Ready was persisted). */
  observeSent(m: Message): void {
    // Pre-vote messages carry the term the candidate *would* use, which nobody persists.
    const persistedTerm = m.type !== "MsgPreVote" && m.type !== "MsgPreVoteResp";
    if (persistedTerm && m.term > (this.maxTermSent.get(m.from) ?? 0)) this.maxTermSent.set(m.from, m.term);
    if (m.type === "MsgApp" || m.type === "MsgHeartbeat" || m.type === "MsgSnap") {
      this.observeLeader(m.from, m.term, `sent ${m.type}`);
    } else if (m.type === "MsgVote") {
      // Campaigning in a term means voting for oneself in it.
      this.recordVote(m.from, m.term, m.from);
    } else if (m.type === "MsgVoteResp" && !m.reject) {
      this.recordVote(m.from, m.term, m.to);
    } else if (m.type === "MsgAppResp" && !m.reject) {
      const prev = this.appendAcked.get(m.from);
      if (!prev || m.term > prev.term || (m.term === prev.term && (m.index ?? 0) > prev.index))
        this.appendAcked.set(m.from, { term: m.term, index: m.index ?? 0 });
    }
  }

  private recordVote(voter: NodeId, term: number, candidate: NodeId): void {
    let votes = this.votesGranted.get(voter);
    if (!votes) {
      votes = new Map();
      this.votesGranted.set(voter, votes);
    }
    const prev = votes.get(term);
    if (prev !== undefined && prev !== candidate) {
      violate("election-safety", `${voter} voted twice in term ${term}: for ${prev} and for ${candidate}`);
    }
    votes.set(term, candidate);
  }

  /** A node's persisted hard state (commit index) at term `term`. */
  observeCommit(node: NodeId, commit: number, term: number): void {
    const mirror = this.mirror(node);
    if (commit > mirror.lastIndex) {
      violate(
        "commit-bounds",
        `${node} reports commit ${commit} beyond its last log index ${mirror.lastIndex}`,
      );
    }
    const from = this.lastCommitSeen.get(node) ?? 0;
    for (let i = from + 1; i <= commit; i++) {
      const t = this.commitTerm[i];
      if (t === undefined || term < t) this.commitTerm[i] = term;
    }
    if (commit > from) this.lastCommitSeen.set(node, commit);
    const mine = mirror.digestAt(commit);
    if (commit <= this.committedMax) {
      const known = this.committed[commit];
      if (!known) this.committed[commit] = mine;
      else if (mine && !sameDigest(mine, known)) {
        violate(
          "state-machine-safety",
          `${node} committed a different log prefix at index ${commit} than was committed before`,
        );
      }
      return;
    }
    for (let i = this.committedMax + 1; i <= commit; i++) this.committed[i] = mirror.digestAt(i);
    this.committedMax = commit;
  }

  /** `node` became leader of `term` holding `mirror(node)`: it must hold all earlier-term commits. */
  observeBecameLeader(node: NodeId, term: number): void {
    this.observeLeader(node, term, "role change");
    let k = this.committedMax;
    while (k > 0 && (this.commitTerm[k] ?? Number.POSITIVE_INFINITY) >= term) k--;
    if (k === 0) return;
    const mirror = this.mirror(node);
    if (mirror.lastIndex < k) {
      violate(
        "leader-completeness",
        `${node} became leader of term ${term} with last index ${mirror.lastIndex}, missing committed index ${k}`,
      );
    }
    const at = Math.max(k, mirror.base);
    const mine = mirror.digestAt(at);
    const known = this.committed[at];
    if (mine && known && !sameDigest(mine, known)) {
      violate(
        "leader-completeness",
        `${node} became leader of term ${term} but its log differs from the committed log at index ${at}`,
      );
    }
  }

  /** `node`'s state machine reached `index` with `digest` (by applying an entry or a snapshot). */
  checkApplied(node: NodeId, index: number, digest: Digest): void {
    const known = this.applied[index];
    if (known === undefined) {
      if (index !== this.applied.length) {
        violate(
          "state-machine-safety",
          `${node} applied index ${index} before anyone applied ${this.applied.length}`,
        );
      }
      this.applied.push(digest);
      this.appliedBy.push(node);
    } else if (!sameDigest(known, digest)) {
      violate(
        "state-machine-safety",
        `${node} and ${this.appliedBy[index]} applied different entries at index ${index} (${digestHex(digest)} vs ${digestHex(known)})`,
      );
    }
  }

  /**
   * Write `writeId` was applied at `index`. A proposal the network duplicated is
   * applied at several indices (each node applies the same ones, in order).
   */
  observeApplyWrite(writeId: number, index: number): void {
    const at = this.writeIndex.get(writeId);
    if (at === undefined) this.writeIndex.set(writeId, [index]);
    else if (index > (at[at.length - 1] as number)) at.push(index);
  }

  /** The client was told write `writeId` to `key` succeeded: `node` applied it at `index` in term `term`. */
  observeAck(writeId: number, key: number, index: number, term: number): void {
    if (this.applied[index] === undefined)
      violate("durability", `write ${writeId} acked at unapplied index ${index}`);
    this.acked++;
    this.acks.push({ index, term });
    if (index > (this.ackedIndexByKey.get(key) ?? 0)) this.ackedIndexByKey.set(key, index);
    if (index > this.maxAckedIndex) this.maxAckedIndex = index;
  }

  readStarted(readId: number, key: number, nowUs: number): void {
    this.pendingReads.set(readId, { key, mustSeeIndex: this.ackedIndexByKey.get(key) ?? 0, startUs: nowUs });
  }

  readAbandoned(readId: number): void {
    this.pendingReads.delete(readId);
  }

  /**
   * A read was answered with `value` (a write id, or undefined for "no value") by a
   * node whose state machine was at `appliedIndex`: the value came from the latest
   * application of that write at or below it.
   */
  observeRead(readId: number, node: NodeId, value: number | undefined, appliedIndex: number): void {
    const r = this.pendingReads.get(readId);
    if (!r) return;
    this.pendingReads.delete(readId);
    this.readsChecked++;
    let seenIndex = 0;
    if (value !== undefined) {
      for (const i of this.writeIndex.get(value) ?? []) if (i <= appliedIndex) seenIndex = i;
    }
    if (seenIndex < r.mustSeeIndex) {
      violate(
        "linearizable-read",
        `read ${readId} of k${r.key} on ${node} returned the write at index ${seenIndex}, but the write at index ${r.mustSeeIndex} was acknowledged before the read started`,
      );
    }
  }

  /**
   * End of run: `leader` (term `term`) must hold every write acknowledged in an
   * earlier term, with the very entries that were applied when they were acked.
   */
  checkDurable(leader: NodeId, term: number): void {
    let must = 0;
    for (const a of this.acks) if (a.term < term && a.index > must) must = a.index;
    if (must === 0) return;
    const mirror = this.mirror(leader);
    if (mirror.lastIndex < must) {
      violate(
        "durability",
        `final leader ${leader} ends at index ${mirror.lastIndex}, before acknowledged index ${must}`,
      );
    }
    const at = Math.max(must, mirror.base);
    const mine = mirror.digestAt(at);
    const known = this.applied[at];
    if (mine && known && !sameDigest(mine, known)) {
      violate("durability", `final leader ${leader}'s log differs from the acknowledged log at index ${at}`);
    }
  }
}
