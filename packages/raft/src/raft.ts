import { fail } from "@hsmpool/errors";
import { invariant } from "./assert.js";
import { applyToConf, confChangeProblem, isVoter, normalizeConf } from "./conf.js";
import { decodeConfChange, encodeConfChange } from "./confchange-codec.js";
import { RaftLog } from "./log.js";
import { Progress } from "./progress.js";
import { leaderCommitIndex, majority, voteResult } from "./quorum.js";
import { ReadIndexTracker } from "./read-index.js";
import { isStorageError } from "./storage.js";
import type {
  ConfChange,
  Config,
  ConfState,
  Entry,
  Message,
  MessageType,
  NodeId,
  ReadState,
  Role,
  Snapshot,
  UnsafeVariant,
} from "./types.js";

const DEFAULT_MAX_SIZE_PER_MSG_BYTES = 1024 * 1024;
const DEFAULT_MAX_INFLIGHT_MSGS = 256;

/** Context of a MsgVote sent because of MsgTimeoutNow: it bypasses the leader lease. */
const TRANSFER_CONTEXT = new TextEncoder().encode("transfer");

type CampaignKind = "preElection" | "election" | "transfer";

function isTransferContext(ctx: Uint8Array | undefined): boolean {
  return (
    ctx !== undefined &&
    ctx.length === TRANSFER_CONTEXT.length &&
    ctx.every((b, i) => b === TRANSFER_CONTEXT[i])
  );
}

function voteResponseType(t: MessageType): MessageType {
  return t === "MsgPreVote" ? "MsgPreVoteResp" : "MsgVoteResp";
}

/**
 * The Raft state machine proper (etcd's `raft` struct). RawNode wraps it with the
 * Ready/advance protocol and input validation; nothing here performs I/O.
 *
 * Message handling follows etcd/raft closely:
 *  - term rules first (step), then role-specific handling (stepLeader/Candidate/Follower);
 *  - local operations (propose, campaign, transfer, readIndex) are methods, not messages.
 */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId | null = null;
  lead: NodeId | null = null;
  role: Role = "follower";
  readonly log: RaftLog;
  conf: ConfState;
  prs = new Map<NodeId, Progress>();
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  leadTransferee: NodeId | null = null;
  /** Index of the latest conf change the leader appended; a new one waits until it is applied. */
  pendingConfIndex = 0;

  private readonly votes = new Map<NodeId, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private readIndexTracker = new ReadIndexTracker();
  /** Proposals were appended and their MsgApps are not yet sent (see flushAppends). */
  appendsPending = false;
  /** ReadIndex requests that arrived before the leader committed an entry in its term. */
  private pendingReadIndex: { from: NodeId; ctx: Uint8Array }[] = [];

  private readonly electionTimeout: number;
  private readonly electionJitter: number;
  private readonly heartbeatTimeout: number;
  private readonly random: () => number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxSizePerMsgBytes: number;
  private readonly maxInflightMsgs: number;
  private readonly disableProposalForwarding: boolean;
  private readonly lazyCommitBroadcast: boolean;
  private readonly unsafe: UnsafeVariant | undefined;

  constructor(cfg: Config) {
    this.id = cfg.id;
    this.electionTimeout = cfg.electionTicks;
    this.electionJitter = cfg.electionJitterTicks ?? cfg.electionTicks;
    this.heartbeatTimeout = cfg.heartbeatTicks;
    this.random = cfg.random;
    this.preVote = cfg.preVote;
    this.checkQuorum = cfg.checkQuorum;
    this.maxSizePerMsgBytes = cfg.maxSizePerMsgBytes ?? DEFAULT_MAX_SIZE_PER_MSG_BYTES;
    this.maxInflightMsgs = cfg.maxInflightMsgs ?? DEFAULT_MAX_INFLIGHT_MSGS;
    this.disableProposalForwarding = cfg.disableProposalForwarding ?? false;
    this.lazyCommitBroadcast = cfg.lazyCommitBroadcast ?? false;
    this.unsafe = cfg.unsafeVariant;

    const { hardState, conf } = cfg.storage.initialState();
    this.log = new RaftLog(cfg.storage);
    this.conf = normalizeConf(conf);
    this.rebuildProgress();
    invariant(
      hardState.commit <= this.log.lastIndex(),
      `stored commit ${hardState.commit} beyond last index ${this.log.lastIndex()}`,
    );
    this.log.commitTo(hardState.commit);
    this.term = hardState.term;
    this.vote = hardState.vote;
    if (cfg.applied !== undefined) {
      if (cfg.applied > this.log.committed) {
        fail(
          "BadParameter",
          `raft config.applied ${cfg.applied} is beyond the stored commit index ${this.log.committed}`,
        );
      }
      this.log.appliedTo(cfg.applied);
    }
    this.becomeFollower(this.term, null);
  }

  // ---------------------------------------------------------------- helpers

  private voters(): string[] {
    return this.conf.voters;
  }

  private promotable(): boolean {
    return isVoter(this.conf, this.id) && !this.log.hasPendingSnapshot();
  }

  private send(m: Omit<Message, "from" | "term"> & { term?: number }): void {
    invariant(m.to !== this.id, () => `message ${m.type} addressed to self`);
    // Forwarded proposals/reads carry no term (like etcd's local messages): they are
    // valid in whatever term the leader is in.
    const term = m.type === "MsgProp" || m.type === "MsgReadIndex" ? 0 : (m.term ?? this.term);
    this.msgs.push({ ...m, from: this.id, term });
  }

  private sortedPeers(): NodeId[] {
    return [...this.prs.keys()].filter((id) => id !== this.id).sort();
  }

  private rebuildProgress(): void {
    const next = new Map<NodeId, Progress>();
    const add = (id: NodeId, isLearner: boolean) => {
      const existing = this.prs.get(id);
      if (existing) {
        existing.isLearner = isLearner;
        next.set(id, existing);
      } else {
        const pr = new Progress(this.log.lastIndex() + 1, this.maxInflightMsgs, isLearner);
        // A member just added counts as active, or check-quorum could depose the leader right away.
        pr.recentActive = true;
        next.set(id, pr);
      }
    };
    for (const id of this.conf.voters) add(id, false);
    for (const id of this.conf.learners) add(id, true);
    this.prs = next;
  }

  private resetRandomizedElectionTimeout(): void {
    const r = this.random();
    invariant(r >= 0 && r < 1, () => `config.random() returned ${r}, expected a number in [0, 1)`);
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(r * this.electionJitter);
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  // ---------------------------------------------------------------- role changes

  private reset(term: number): void {
    if (term !== this.term) {
      invariant(term > this.term, () => `term would decrease from ${this.term} to ${term}`);
      this.term = term;
      this.vote = null;
    }
    this.lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = null;
    this.votes.clear();
    for (const [id, old] of this.prs) {
      const pr = new Progress(this.log.lastIndex() + 1, this.maxInflightMsgs, old.isLearner);
      if (id === this.id) pr.match = this.log.lastIndex();
      this.prs.set(id, pr);
    }
    this.pendingConfIndex = 0;
    this.appendsPending = false;
    this.readIndexTracker = new ReadIndexTracker();
    this.pendingReadIndex = [];
  }

  becomeFollower(term: number, lead: NodeId | null): void {
    this.reset(term);
    this.lead = lead;
    this.role = "follower";
  }

  private becomeCandidate(): void {
    invariant(this.role !== "leader", "leader cannot become candidate");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
  }

  private becomePreCandidate(): void {
    invariant(this.role !== "leader", "leader cannot become pre-candidate");
    // Pre-vote changes neither term nor vote: a failed pre-campaign leaves no trace.
    this.votes.clear();
    this.lead = null;
    this.role = "preCandidate";
  }

  private becomeLeader(): void {
    invariant(this.role === "candidate", () => `only a candidate can become leader (was ${this.role})`);
    this.reset(this.term);
    this.lead = this.id;
    this.role = "leader";
    const self = this.prs.get(this.id)!;
    self.becomeReplicate();
    self.recentActive = true;
    // Conservatively assume any unapplied entry may be a conf change.
    this.pendingConfIndex = this.log.lastIndex();
    // An entry of our own term: committing it commits everything before it (§5.4.2).
    this.appendEntries([{ term: 0, index: 0, type: "normal", data: new Uint8Array() }]);
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    if (this.role === "leader") this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup("election");
    } else if (this.role === "preCandidate" && this.electionElapsed % this.heartbeatTimeout === 0) {
      this.askPreVotesAgain();
    }
  }

  /**
   * A pre-candidate asks the voters that have not answered again every heartbeat interval.
   * A voter that heard from its leader within the election timeout ignores a pre-vote
   * (leader stickiness, above); after a leader stops, the follower whose randomised timer
   * fires first often asks while the other one's lease still has a tick to run, and
   * without asking again it waited a whole randomised timeout more (the other one's own
   * timer usually won). Pre-votes change no term, vote or log on either side, so asking
   * again is as safe as a duplicated message; only a majority of grants makes a candidate.
   */
  private askPreVotesAgain(): void {
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    for (const id of [...this.voters()].sort()) {
      if (id === this.id || this.votes.has(id)) continue;
      this.send({ to: id, term: this.term + 1, type: "MsgPreVote", index, logTerm });
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.stepDownUnlessQuorumActive();
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.role === "leader" && this.leadTransferee !== null) this.leadTransferee = null;
    }
    if (this.role !== "leader") return;
    this.expireLostSnapshots();
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  /**
   * A MsgSnap not acknowledged within two election timeouts is taken as lost (as if
   * the application had called reportSnapshot(id, false)), so a dropped snapshot
   * cannot stall a follower forever when the transport does not report failures.
   */
  private expireLostSnapshots(): void {
    for (const [id, pr] of this.prs) {
      if (pr.state !== "snapshot") continue;
      if (++pr.snapshotElapsedTicks >= 2 * this.electionTimeout) this.reportSnapshot(id, false);
    }
  }

  private stepDownUnlessQuorumActive(): void {
    let active = 0;
    for (const id of this.voters()) {
      if (id === this.id || this.prs.get(id)?.recentActive) active++;
    }
    if (active < majority(this.voters().length)) {
      this.becomeFollower(this.term, null);
      return;
    }
    for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false;
  }

  // ---------------------------------------------------------------- elections

  /** Start an election if allowed (`election` uses pre-vote when configured). */
  hup(kind: "election" | "transfer"): void {
    if (this.role === "leader") return;
    if (!this.promotable()) return;
    if (this.hasUnappliedConfChanges()) return;
    if (kind === "transfer") this.campaign("transfer");
    else this.campaign(this.preVote ? "preElection" : "election");
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    if (lo > this.log.committed) return false;
    return this.log.entries(lo, this.log.committed + 1).some((e) => e.type === "confChange");
  }

  private campaign(kind: CampaignKind): void {
    let term: number;
    let voteType: MessageType;
    if (kind === "preElection") {
      this.becomePreCandidate();
      voteType = "MsgPreVote";
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = "MsgVote";
      term = this.term;
    }
    if (this.poll(this.id, true) === "won") {
      // Single-voter configuration: no one else to ask.
      if (kind === "preElection") this.campaign("election");
      else this.becomeLeader();
      return;
    }
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    for (const id of [...this.voters()].sort()) {
      if (id === this.id) continue;
      this.send({
        to: id,
        term,
        type: voteType,
        index,
        logTerm,
        ...(kind === "transfer" ? { context: TRANSFER_CONTEXT } : {}),
      });
    }
  }

  private poll(id: NodeId, granted: boolean) {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return voteResult(this.voters(), this.votes);
  }

  // ---------------------------------------------------------------- step

  step(m: Message): void {
    if (m.term === 0) {
      // Forwarded proposal or read request: no term semantics.
    } else if (m.term > this.term) {
      if (m.type === "MsgVote" || m.type === "MsgPreVote") {
        // Leader stickiness: while we hear from a leader, ignore vote requests unless the
        // leader itself asked for them (transfer). Stops a rejoining node from deposing it.
        const inLease = this.checkQuorum && this.lead !== null && this.electionElapsed < this.electionTimeout;
        if (inLease && !isTransferContext(m.context)) return;
      }
      if (m.type === "MsgPreVote" || (m.type === "MsgPreVoteResp" && !m.reject)) {
        // Pre-votes never change our term; a granted pre-vote carries the future term.
      } else if (m.type === "MsgApp" || m.type === "MsgHeartbeat" || m.type === "MsgSnap") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, null);
      }
    } else if (m.term < this.term) {
      if (this.unsafe === "acceptStaleTermAppend" && m.type === "MsgApp" && this.role === "follower") {
        this.handleAppendEntries(m); // deliberately wrong, for checker self-tests only
        return;
      }
      if ((this.checkQuorum || this.preVote) && (m.type === "MsgHeartbeat" || m.type === "MsgApp")) {
        // Tell a stale leader about the newer term. Without this, a node cut off by
        // pre-vote/check-quorum could stay stuck with a leader that never steps down.
        this.send({ to: m.from, type: "MsgAppResp" });
      } else if (m.type === "MsgPreVote") {
        this.send({ to: m.from, type: "MsgPreVoteResp", reject: true });
      }
      return;
    }

    if (m.type === "MsgVote" || m.type === "MsgPreVote") {
      this.handleVoteRequest(m);
      return;
    }
    if (this.role === "leader") this.stepLeader(m);
    else if (this.role === "follower") this.stepFollower(m);
    else this.stepCandidate(m);
  }

  private handleVoteRequest(m: Message): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === null && this.lead === null) ||
      (m.type === "MsgPreVote" && m.term > this.term) ||
      (this.unsafe === "voteTwiceInTerm" && m.type === "MsgVote");
    if (canVote && this.log.isUpToDate(m.index ?? 0, m.logTerm ?? 0)) {
      this.send({ to: m.from, term: m.term, type: voteResponseType(m.type) });
      if (m.type === "MsgVote") {
        this.electionElapsed = 0;
        // (The unsafe variant keeps its first vote on record, so it can still win its own election.)
        if (this.unsafe !== "voteTwiceInTerm" || this.vote === null) this.vote = m.from;
      }
    } else {
      this.send({ to: m.from, type: voteResponseType(m.type), reject: true });
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case "MsgProp":
        this.leaderAppendProposal(m.entries ?? [], false);
        return;
      case "MsgReadIndex":
        this.leaderReadIndex(m.from, m.context ?? new Uint8Array());
        return;
    }
    const pr = this.prs.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case "MsgAppResp":
        this.handleAppendResponse(m, pr);
        return;
      case "MsgHeartbeatResp":
        pr.recentActive = true;
        pr.paused = false;
        if (pr.match < this.log.lastIndex() || pr.state === "probe") this.sendAppend(m.from);
        this.readIndexTracker.recvAck(m.from, m.context);
        for (const r of this.readIndexTracker.confirmed(this.id, this.voters())) {
          this.answerRead(r.from, r.requestCtx, r.index);
        }
        // Reads that arrived while that round was out go together in the next one.
        if (this.readIndexTracker.needsRound()) this.sendReadRound();
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    const index = m.index ?? 0;
    if (m.reject) {
      // Fast backtracking: skip every entry of a term the follower cannot match.
      let nextProbe = m.rejectHint ?? 0;
      if ((m.logTerm ?? 0) > 0) [nextProbe] = this.log.findConflictByTerm(nextProbe, m.logTerm ?? 0);
      if (pr.maybeDecrTo(index, nextProbe)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    if (!pr.maybeUpdate(index) && !(pr.match === index && pr.state === "probe")) return;
    if (pr.state === "probe") pr.becomeReplicate();
    else if (pr.state === "snapshot" && pr.match + 1 >= this.log.firstIndex()) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === "replicate") pr.inflights.freeLE(index);

    if (this.maybeCommit()) {
      this.releasePendingReadIndex();
      if (!this.lazyCommitBroadcast) this.bcastAppend();
    } else if (!this.lazyCommitBroadcast && pr.canBumpCommit(this.log.committed)) {
      this.sendAppend(m.from);
    }
    // Stream more entries while the inflight window allows.
    while (this.maybeSendAppend(m.from, false)) {
      /* keep sending */
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private stepCandidate(m: Message): void {
    const myResponse: MessageType = this.role === "preCandidate" ? "MsgPreVoteResp" : "MsgVoteResp";
    switch (m.type) {
      case "MsgApp":
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case "MsgHeartbeat":
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case "MsgSnap":
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myResponse: {
        const result = this.poll(m.from, !m.reject);
        if (result === "won") {
          if (this.role === "preCandidate") this.campaign("election");
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === "lost") {
          this.becomeFollower(this.term, null);
        }
        return;
      }
      default:
        return; // MsgProp/MsgReadIndex without a leader are dropped; MsgTimeoutNow ignored.
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "MsgProp":
        if (this.lead !== null && !this.disableProposalForwarding) this.send({ ...m, to: this.lead });
        return;
      case "MsgApp":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case "MsgHeartbeat":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case "MsgSnap":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case "MsgTimeoutNow":
        this.hup("transfer");
        return;
      case "MsgReadIndex":
        if (this.lead !== null) this.send({ ...m, to: this.lead });
        return;
      case "MsgReadIndexResp":
        this.readStates.push({ index: m.index ?? 0, requestCtx: m.context ?? new Uint8Array() });
        return;
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- follower handlers

  private handleAppendEntries(m: Message): void {
    const prevIndex = m.index ?? 0;
    if (prevIndex < this.log.committed) {
      this.send({ to: m.from, type: "MsgAppResp", index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(prevIndex, m.logTerm ?? 0, m.commit ?? 0, m.entries ?? []);
    if (lastNew !== null) {
      this.send({ to: m.from, type: "MsgAppResp", index: lastNew });
      return;
    }
    // Reject with a hint: the last index whose term is <= the leader's prev term.
    const [hintIndex, hintTerm] = this.log.findConflictByTerm(
      Math.min(prevIndex, this.log.lastIndex()),
      m.logTerm ?? 0,
    );
    this.send({
      to: m.from,
      type: "MsgAppResp",
      index: prevIndex,
      reject: true,
      rejectHint: hintIndex,
      logTerm: hintTerm,
    });
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit ?? 0);
    this.send({ to: m.from, type: "MsgHeartbeatResp", ...(m.context ? { context: m.context } : {}) });
  }

  private handleSnapshot(m: Message): void {
    invariant(m.snapshot !== undefined, "MsgSnap without a snapshot");
    if (this.restore(m.snapshot)) {
      this.send({ to: m.from, type: "MsgAppResp", index: this.log.lastIndex() });
    } else {
      this.send({ to: m.from, type: "MsgAppResp", index: this.log.committed });
    }
  }

  /**
   * Install a snapshot from the leader. Unlike etcd we accept one whose membership
   * does not include us: a node that joined after the snapshot was taken learns about
   * itself from the log entries that follow it.
   */
  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    invariant(this.role === "follower", () => `restore snapshot as ${this.role}`);
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // We already have the entry: just fast-forward the commit index.
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.conf = normalizeConf(s.meta.conf);
    this.prs = new Map();
    this.rebuildProgress();
    return true;
  }

  // ---------------------------------------------------------------- leader replication

  private appendEntries(ents: Entry[]): void {
    const li = this.log.lastIndex();
    const stamped = ents.map((e, i) => ({ ...e, term: this.term, index: li + 1 + i }));
    this.log.append(stamped);
    this.prs.get(this.id)!.maybeUpdate(this.log.lastIndex());
    // A single-voter cluster commits right away.
    this.maybeCommit();
  }

  private maybeCommit(): boolean {
    const before = this.log.committed;
    const commit = leaderCommitIndex(
      this.voters().map((id) => this.prs.get(id)?.match ?? 0),
      (i) => this.log.termOrZero(i),
      this.term,
      before,
      this.unsafe === "commitOldTermEntries",
    );
    this.log.commitTo(commit);
    return commit > before;
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /** Send entries from pr.next (or a snapshot if they are compacted). False if nothing was sent. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.prs.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[] = [];
    try {
      prevTerm = this.log.term(prevIndex);
      if (pr.state !== "replicate" || !pr.inflights.full()) {
        ents = this.log.entries(pr.next, undefined, this.maxSizePerMsgBytes);
      }
    } catch (e) {
      if (isStorageError(e, "compacted")) return this.maybeSendSnapshot(to, pr);
      throw e;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send({
      to,
      type: "MsgApp",
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: this.log.committed,
    });
    pr.sentEntries(ents.length);
    pr.sentCommit = this.log.committed;
    return true;
  }

  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    // Snapshots are expensive: only send to a follower we know is alive.
    if (!pr.recentActive) return false;
    let snapshot: Snapshot;
    try {
      snapshot = this.log.snapshot();
    } catch (e) {
      if (isStorageError(e, "snapshotTemporarilyUnavailable")) return false;
      throw e;
    }
    invariant(snapshot.meta.index > 0, "entries are compacted but storage has no snapshot");
    pr.becomeSnapshot(snapshot.meta.index);
    this.send({ to, type: "MsgSnap", snapshot });
    return true;
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    const pr = this.prs.get(to)!;
    // Never tell a follower to commit beyond what we know it has.
    const commit = Math.min(pr.match, this.log.committed);
    this.send({ to, type: "MsgHeartbeat", commit, ...(ctx ? { context: ctx } : {}) });
    pr.sentCommit = commit;
  }

  private bcastAppend(): void {
    for (const id of this.sortedPeers()) this.sendAppend(id);
  }

  private bcastHeartbeat(): void {
    const ctx = this.readIndexTracker.heartbeatContext();
    for (const id of this.sortedPeers()) this.sendHeartbeat(id, ctx);
  }

  /**
   * The heartbeat round that confirms the waiting reads, sent to just enough voters to
   * make a majority with the leader, not to every peer: the acknowledgements of a
   * majority are what confirm leadership, the others would only answer too (each message
   * is a gRPC write and a read on both ends; ReadIndex rounds were 25-30% of a member's
   * CPU while signing). Chosen first: followers whose reads wait (they just asked, so they
   * are up), then those heard from this election timeout, then the rest, in id order (a
   * run stays a function of its seed). If one chosen stays silent, the next periodic
   * heartbeat carries the same context to every peer and completes the round.
   */
  private sendReadRound(): void {
    const ctx = this.readIndexTracker.heartbeatContext();
    const voters = this.voters();
    const need = majority(voters.length) - (voters.includes(this.id) ? 1 : 0);
    const askers = this.readIndexTracker.askers();
    const rank = (id: NodeId) => (askers.has(id) ? 0 : this.prs.get(id)?.recentActive ? 1 : 2);
    const chosen = voters
      .filter((id) => id !== this.id && this.prs.has(id))
      .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, need);
    for (const id of chosen) this.sendHeartbeat(id, ctx);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ to, type: "MsgTimeoutNow" });
  }

  /**
   * Append proposed entries on the leader. Conf changes that are invalid or arrive
   * while another is pending become empty entries (as in etcd) when forwarded;
   * `strict` (a local proposal) throws instead so the caller learns why.
   */
  private leaderAppendProposal(ents: Entry[], strict: boolean): void {
    if (!this.prs.has(this.id) || this.leadTransferee !== null) {
      if (strict) {
        fail(
          "ServiceUnavailable",
          `leadership transfer to ${this.leadTransferee} in progress; retry shortly`,
          {
            transferee: this.leadTransferee,
          },
        );
      }
      return;
    }
    const checked = ents.map((e, i): Entry => {
      if (e.type !== "confChange") return e;
      const problem = this.confChangeRefusal(e.data);
      if (problem !== null) {
        if (strict) fail("Conflict", `membership change refused: ${problem}`);
        return { ...e, type: "normal", data: new Uint8Array() };
      }
      this.pendingConfIndex = this.log.lastIndex() + i + 1;
      return e;
    });
    this.appendEntries(checked);
    // Replication is sent when the application next takes a Ready (flushAppends), so
    // proposals made in between travel in one MsgApp per follower instead of one each.
    this.appendsPending = true;
  }

  /** Send the MsgApps owed for proposals appended since the last Ready. */
  flushAppends(): void {
    if (!this.appendsPending) return;
    this.appendsPending = false;
    if (this.role === "leader") this.bcastAppend();
  }

  private confChangeRefusal(data: Uint8Array): string | null {
    let cc: ConfChange;
    try {
      cc = decodeConfChange(data);
    } catch {
      return "malformed conf change entry";
    }
    if (this.pendingConfIndex > this.log.applied) {
      return `an earlier membership change (index ${this.pendingConfIndex}) is not applied yet (applied ${this.log.applied})`;
    }
    return confChangeProblem(this.conf, cc);
  }

  // ---------------------------------------------------------------- local operations

  propose(ents: Entry[]): void {
    if (this.role === "leader") {
      this.leaderAppendProposal(ents, true);
      return;
    }
    if (this.lead === null) {
      fail("NotLeader", `not leader, no leader known (${this.id} is ${this.role} at term ${this.term})`, {
        leader: null,
      });
    }
    if (this.disableProposalForwarding) {
      fail("NotLeader", `not leader, leader is ${this.lead}`, { leader: this.lead });
    }
    this.send({ to: this.lead, type: "MsgProp", entries: ents });
  }

  proposeConfChange(cc: ConfChange): void {
    const entry: Entry = { term: 0, index: 0, type: "confChange", data: encodeConfChange(cc) };
    if (this.role === "leader") {
      const problem = this.confChangeRefusal(entry.data);
      if (problem !== null) fail("Conflict", `membership change refused: ${problem}`, { change: { ...cc } });
    } else {
      // Check what we can locally; the leader re-checks against its own state.
      const problem = confChangeProblem(this.conf, cc);
      if (problem !== null) fail("Conflict", `membership change refused: ${problem}`, { change: { ...cc } });
    }
    this.propose([entry]);
  }

  applyConfChange(cc: ConfChange): ConfState {
    this.conf = applyToConf(this.conf, cc);
    this.rebuildProgress();
    if (this.role !== "leader") return this.conf;
    if (!isVoter(this.conf, this.id)) {
      // Removed or demoted: a leader that is not a voter must not keep leading. Hand
      // over to a fully caught-up voter right away instead of waiting for a timeout.
      const successor = this.caughtUpVoter();
      if (successor !== undefined) this.sendTimeoutNow(successor);
      this.becomeFollower(this.term, null);
      return this.conf;
    }
    // The quorum changed: the commit index may move, new members need entries.
    if (this.maybeCommit()) this.bcastAppend();
    else for (const id of this.sortedPeers()) this.maybeSendAppend(id, false);
    if (this.leadTransferee !== null && !isVoter(this.conf, this.leadTransferee)) this.leadTransferee = null;
    return this.conf;
  }

  /** A voter other than us whose log matches ours completely (first by id), if any. */
  private caughtUpVoter(): NodeId | undefined {
    const last = this.log.lastIndex();
    return [...this.voters()].sort().find((id) => id !== this.id && this.prs.get(id)?.match === last);
  }

  transferLeadership(to: NodeId): void {
    if (this.role !== "leader") {
      fail("NotLeader", `not leader, leader is ${this.lead ?? "unknown"}`, { leader: this.lead });
    }
    if (!isVoter(this.conf, to)) fail("BadParameter", `cannot transfer leadership to ${to}: not a voter`);
    if (to === this.id || to === this.leadTransferee) return;
    this.electionElapsed = 0;
    this.leadTransferee = to;
    const pr = this.prs.get(to)!;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to);
  }

  readIndex(ctx: Uint8Array): void {
    if (this.role === "leader") {
      this.leaderReadIndex(this.id, ctx);
      return;
    }
    if (this.lead === null) {
      fail("NotLeader", `not leader, no leader known to serve the read (${this.id} is ${this.role})`, {
        leader: null,
      });
    }
    this.send({ to: this.lead, type: "MsgReadIndex", context: ctx });
  }

  private leaderReadIndex(from: NodeId, ctx: Uint8Array): void {
    const voters = this.voters();
    if (voters.length === 1 && voters[0] === this.id) {
      this.answerRead(from, ctx, this.log.committed);
      return;
    }
    // Until an entry of our term commits we may not know the true commit index (§8).
    if (!this.committedEntryInCurrentTerm()) {
      this.pendingReadIndex.push({ from, ctx });
      return;
    }
    this.readIndexTracker.add(from, ctx, this.log.committed);
    if (this.readIndexTracker.needsRound()) this.sendReadRound();
  }

  private releasePendingReadIndex(): void {
    if (this.pendingReadIndex.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const pending = this.pendingReadIndex;
    this.pendingReadIndex = [];
    for (const p of pending) this.readIndexTracker.add(p.from, p.ctx, this.log.committed);
    if (this.readIndexTracker.needsRound()) this.sendReadRound();
  }

  private answerRead(from: NodeId, ctx: Uint8Array, index: number): void {
    if (from === this.id) this.readStates.push({ index, requestCtx: ctx });
    else this.send({ to: from, type: "MsgReadIndexResp", index, context: ctx });
  }

  reportUnreachable(id: NodeId): void {
    const pr = this.prs.get(id);
    if (this.role !== "leader" || pr === undefined) return;
    if (pr.state === "replicate") pr.becomeProbe();
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    const pr = this.prs.get(id);
    if (this.role !== "leader" || pr === undefined || pr.state !== "snapshot") return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the next heartbeat response before probing again.
    pr.paused = true;
  }

  /** Called by RawNode once the application persisted a snapshot (it is now applied). */
  snapshotPersisted(index: number): void {
    this.log.stableSnapTo(index);
    this.log.appliedTo(index);
  }
}
