import { fail } from "@hsmpool/errors";
import { invariant } from "./assert.js";
import { isVoter } from "./conf.js";
import { Raft } from "./raft.js";
import type {
  ConfChange,
  Config,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  ProgressStatus,
  Ready,
  SoftState,
  Status,
} from "./types.js";
import { validateConfig, validateMessage } from "./validate.js";

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}

/**
 * The application-facing handle on one Raft member (etcd's RawNode). Pure: it never
 * reads a clock, socket, file or Math.random; time arrives as tick(), randomness via
 * Config.random, messages via step(), and all output leaves through ready().
 *
 * Driving loop:
 *   step()/tick()/propose()...; while (node.hasReady()) { const rd = node.ready();
 *   persist rd.snapshot, rd.entries, rd.hardState; send rd.messages;
 *   apply rd.committedEntries; node.advance(); }
 */
export class RawNode {
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private pendingReady: Ready | undefined;
  /** For the monotonicity assertions. */
  private lastSeenTerm: number;
  private lastSeenCommit: number;

  constructor(config: Config) {
    validateConfig(config);
    this.raft = new Raft(config);
    this.prevSoftState = this.softState();
    this.prevHardState = this.hardState();
    this.lastSeenTerm = this.raft.term;
    this.lastSeenCommit = this.raft.log.committed;
    this.checkInvariants();
  }

  /** Advance logical time by one tick (election and heartbeat timers). */
  tick(): void {
    this.raft.tick();
    this.checkInvariants();
  }

  /** Feed a message received from a peer. Throws BadParameter for a malformed or misaddressed message. */
  step(m: Message): void {
    validateMessage(m, this.raft.id);
    this.raft.step(m);
    this.checkInvariants();
  }

  /**
   * Propose application data. On the leader it is appended; on a follower it is
   * forwarded to the leader (MsgProp), or refused with NotLeader naming the leader
   * when forwarding is disabled; with no known leader, NotLeader (leader: null).
   * During a leadership transfer the leader refuses with ServiceUnavailable.
   * A forwarded proposal may still be lost: watch committed entries to learn its fate.
   */
  propose(data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) fail("BadParameter", "proposal data must be a Uint8Array");
    // Copied: the log must not change if the caller reuses its buffer.
    this.raft.propose([{ term: 0, index: 0, type: "normal", data: data.slice() }]);
    this.checkInvariants();
  }

  /**
   * Propose a membership change (one at a time). Refused with Conflict while an
   * earlier change is unapplied or when the change makes no sense for the current
   * membership (e.g. removing the only voter).
   */
  proposeConfChange(cc: ConfChange): void {
    if (typeof cc !== "object" || cc === null) fail("BadParameter", "conf change must be an object");
    this.raft.proposeConfChange({ type: cc.type, node: cc.node });
    this.checkInvariants();
  }

  /** Apply a committed confChange entry (call while applying committedEntries, in order). */
  applyConfChange(cc: ConfChange): ConfState {
    const conf = this.raft.applyConfChange({ type: cc.type, node: cc.node });
    this.checkInvariants();
    return { voters: [...conf.voters], learners: [...conf.learners] };
  }

  /**
   * Ask the leader to hand leadership to voter `to`: it brings `to` up to date, then
   * sends MsgTimeoutNow; the transfer is abandoned after an election timeout.
   * Only valid on the leader (NotLeader otherwise).
   */
  transferLeadership(to: NodeId): void {
    if (typeof to !== "string" || to.length === 0) fail("BadParameter", "transfer target must be a node id");
    this.raft.transferLeadership(to);
    this.checkInvariants();
  }

  /**
   * Request a linearizable read. When the leader has confirmed its leadership, a
   * ReadState {index, requestCtx} appears in a Ready; serve the read once
   * applied >= index. On a follower the request is forwarded to the leader.
   */
  readIndex(requestCtx: Uint8Array): void {
    if (!(requestCtx instanceof Uint8Array))
      fail("BadParameter", "read request context must be a Uint8Array");
    this.raft.readIndex(requestCtx);
    this.checkInvariants();
  }

  /** Start an election now (pre-vote first when configured). No-op on the leader. */
  campaign(): void {
    if (!isVoter(this.raft.conf, this.raft.id)) {
      fail("OperationNotAllowed", `${this.raft.id} is not a voter and cannot campaign`);
    }
    this.raft.hup("election");
    this.checkInvariants();
  }

  hasReady(): boolean {
    if (this.pendingReady !== undefined) return false;
    if (this.raft.appendsPending) return true;
    const log = this.raft.log;
    return (
      !sameSoftState(this.softState(), this.prevSoftState) ||
      !sameHardState(this.hardState(), this.prevHardState) ||
      log.hasPendingSnapshot() ||
      log.hasUnstableEntries() ||
      this.raft.msgs.length > 0 ||
      this.raft.readStates.length > 0 ||
      log.hasNextCommittedEntries()
    );
  }

  /**
   * Take the next batch of work. PERSIST-BEFORE-SEND CONTRACT: the application must
   * durably persist `snapshot` (if any), `entries` and `hardState` (if any) BEFORE
   * sending any of `messages` (a vote or an append acknowledgement promises that the
   * state is on disk); then apply `committedEntries` in order; then call advance().
   * ready() may not be called again before advance().
   */
  ready(): Ready {
    if (this.pendingReady !== undefined) {
      fail("OperationNotAllowed", "ready() called again before advance(): process the previous Ready first");
    }
    this.raft.flushAppends();
    const log = this.raft.log;
    const unstable = log.unstable();
    const soft = this.softState();
    const hard = this.hardState();
    const hardChanged = !sameHardState(hard, this.prevHardState);
    const rd: Ready = {
      entries: unstable.entries,
      committedEntries: log.nextCommittedEntries(),
      messages: this.raft.msgs,
      readStates: this.raft.readStates,
      mustSync:
        unstable.entries.length > 0 ||
        unstable.snapshot !== undefined ||
        hard.term !== this.prevHardState.term ||
        hard.vote !== this.prevHardState.vote,
    };
    if (!sameSoftState(soft, this.prevSoftState)) rd.softState = soft;
    if (hardChanged) rd.hardState = hard;
    if (unstable.snapshot) rd.snapshot = unstable.snapshot;
    this.raft.msgs = [];
    this.raft.readStates = [];
    this.pendingReady = rd;
    return rd;
  }

  /** Acknowledge the last Ready: its state is persisted, its messages sent, its entries applied. */
  advance(_rd?: Ready): void {
    const rd = this.pendingReady;
    if (rd === undefined) fail("OperationNotAllowed", "advance() called without a pending Ready");
    this.pendingReady = undefined;
    if (rd.softState) this.prevSoftState = rd.softState;
    if (rd.hardState) this.prevHardState = rd.hardState;
    if (rd.snapshot) this.raft.snapshotPersisted(rd.snapshot.meta.index);
    const lastEntry: Entry | undefined = rd.entries[rd.entries.length - 1];
    if (lastEntry) this.raft.log.stableTo(lastEntry.index, lastEntry.term);
    const lastApplied: Entry | undefined = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied) this.raft.log.appliedTo(lastApplied.index);
    this.checkInvariants();
  }

  status(): Status {
    const r = this.raft;
    const s: Status = {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lead: r.lead,
      role: r.role,
      conf: { voters: [...r.conf.voters], learners: [...r.conf.learners] },
      leadTransferee: r.leadTransferee,
    };
    if (r.role === "leader") {
      const progress: Record<NodeId, ProgressStatus> = {};
      for (const [id, pr] of r.prs) {
        progress[id] = { match: pr.match, next: pr.next, state: pr.state, isLearner: pr.isLearner };
      }
      s.progress = progress;
    }
    return s;
  }

  /** Tell the leader a message to `id` could not be delivered (it falls back to probing). */
  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
    this.checkInvariants();
  }

  /** Tell the leader whether the snapshot sent to `id` was delivered. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
    this.checkInvariants();
  }

  /** All log entries the node holds (stable + unstable), for tests and debugging tools. */
  logEntries(): Entry[] {
    const log = this.raft.log;
    return log.entries(log.firstIndex(), log.lastIndex() + 1);
  }

  private softState(): SoftState {
    return { leader: this.raft.lead, role: this.raft.role };
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }

  /** Invariants that must hold after every call; a failure is a bug in the core. */
  private checkInvariants(): void {
    const r = this.raft;
    const log = r.log;
    invariant(r.term >= this.lastSeenTerm, () => `term decreased from ${this.lastSeenTerm} to ${r.term}`);
    invariant(
      log.committed >= this.lastSeenCommit,
      `commit decreased from ${this.lastSeenCommit} to ${log.committed}`,
    );
    invariant(
      log.committed <= log.lastIndex(),
      `commit ${log.committed} beyond last index ${log.lastIndex()}`,
    );
    invariant(log.applied <= log.committed, () => `applied ${log.applied} beyond commit ${log.committed}`);
    invariant(log.lastTerm() <= r.term, () => `last log term ${log.lastTerm()} above current term ${r.term}`);
    if (r.role === "leader") {
      invariant(r.lead === r.id && r.vote === r.id, "a leader leads and voted for itself");
      invariant(isVoter(r.conf, r.id), "a leader is a voter");
    }
    this.lastSeenTerm = r.term;
    this.lastSeenCommit = log.committed;
  }
}
