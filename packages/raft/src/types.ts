/**
 * Public data types of the sans-I/O Raft core (etcd/raft style).
 *
 * Everything here is plain data: JSON/structured-clone friendly objects (byte
 * payloads are Uint8Array), so the simulator can copy messages and the node shell
 * can map them onto gRPC.
 *
 * Stability note for dependents (packages/sim, packages/node): this file is the
 * contract. Changes are additive only; incompatible changes are listed here:
 *  - (since the first commit) "MsgTransferLeader" was removed from MessageType:
 *    transferLeadership() is leader-only and refuses on followers with NotLeader.
 *  - Added: Config.disableProposalForwarding, Status.leadTransferee,
 *    ProgressStatus.isLearner, Ready.mustSync.
 *
 * Membership changes are ONE AT A TIME (no joint consensus): a leader refuses a new
 * conf change while an earlier one is not yet applied (etcd's pendingConfIndex).
 *
 * Message terms: forwarded MsgProp/MsgReadIndex carry term 0 (valid in any term);
 * a MsgPreVoteResp refusal may carry term 0; every other message has term >= 1.
 */

/** Identifier of a Raft member (any non-empty string, e.g. "n1"). */
export type NodeId = string;

export type EntryType = "normal" | "confChange";

/** One log entry. For `confChange` entries `data` is `encodeConfChange(cc)`. */
export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must be durably stored before any message of the same Ready is sent. */
export interface HardState {
  term: number;
  vote: NodeId | null;
  commit: number;
}

/** Membership. A node is in at most one of the two lists. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export interface SnapshotMeta {
  /** Index of the last entry the snapshot covers. */
  index: number;
  /** Term of that entry. */
  term: number;
  /** Membership as of `index`. */
  conf: ConfState;
}

/** A state-machine snapshot; `data` is opaque and application-provided. */
export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export type ConfChangeType = "addVoter" | "addLearner" | "removeNode";

/**
 * A single membership change. `addVoter` on a current learner promotes it;
 * `addLearner` on a current voter demotes it (both move one voter, so stay safe).
 */
export interface ConfChange {
  type: ConfChangeType;
  node: NodeId;
}

export type MessageType =
  /** Forwarded proposal (follower -> leader). entries = the proposed entries. */
  | "MsgProp"
  /** Append entries. index/logTerm = the entry before `entries`; commit = leader commit. */
  | "MsgApp"
  /** Reply to MsgApp. index = last matching index (or, if reject, the rejected index); rejectHint/logTerm = fast backtracking hint. */
  | "MsgAppResp"
  /** Request vote. index/logTerm = candidate's last entry. context = "transfer" for leadership transfer. */
  | "MsgVote"
  | "MsgVoteResp"
  /** Pre-vote (does not bump anybody's term); term = the term the sender would campaign in. */
  | "MsgPreVote"
  | "MsgPreVoteResp"
  /** Heartbeat. commit = min(follower match, leader commit); context = ReadIndex round id if any. */
  | "MsgHeartbeat"
  | "MsgHeartbeatResp"
  /** Install snapshot. snapshot = the snapshot. */
  | "MsgSnap"
  /** Leadership transfer: "campaign now, ignoring your election timer and leases". */
  | "MsgTimeoutNow"
  /** ReadIndex request forwarded follower -> leader; context = requestCtx. */
  | "MsgReadIndex"
  /** ReadIndex answer leader -> follower; index = read index; context = requestCtx. */
  | "MsgReadIndexResp";

/**
 * A network message. One flat shape for every type (like etcd's raftpb.Message);
 * fields that a type does not use are absent.
 */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  logTerm?: number;
  index?: number;
  entries?: Entry[];
  commit?: number;
  reject?: boolean;
  rejectHint?: number;
  snapshot?: Snapshot;
  context?: Uint8Array;
}

/** Answer to a readIndex(requestCtx) call: reads may be served once applied >= index. */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

export type Role = "follower" | "preCandidate" | "candidate" | "leader";

/** Volatile state, reported in a Ready only when it changed. */
export interface SoftState {
  leader: NodeId | null;
  role: Role;
}

/**
 * A batch of work for the application. Contract (persist-before-send):
 *  1. durably persist `snapshot` (if any), then `entries` (may overwrite a
 *     conflicting suffix), then `hardState` (if any);
 *  2. only then send `messages`;
 *  3. apply `committedEntries` in order (calling applyConfChange for confChange entries);
 *  4. call `advance()`.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
  /** True when hardState/entries/snapshot must be fsynced (false: nothing durable changed). */
  mustSync: boolean;
}

/** Kinds of storage failure the core understands (see StorageError in storage.ts). */
export type StorageErrorKind = "compacted" | "unavailable" | "snapshotTemporarilyUnavailable";

/**
 * Read-only view of stable storage used by the core. The application writes to it
 * (MemoryStorage is provided). Methods throw StorageError for compacted/unavailable.
 */
export interface Storage {
  initialState(): { hardState: HardState; conf: ConfState };
  /** Entries [lo, hi), optionally limited to maxSizeBytes (always at least one entry). */
  entries(lo: number, hi: number, maxSizeBytes?: number): Entry[];
  /** Term of entry `index`; valid for firstIndex()-1 .. lastIndex(). */
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

/**
 * Deliberately wrong behaviours for checker self-tests ONLY (the simulator proves its
 * invariant checkers can fail). Never set in production code.
 *  - commitOldTermEntries: leader commits by counting replicas of any term (Figure 8 bug).
 *  - acceptStaleTermAppend: follower accepts MsgApp from a lower term.
 *  - voteTwiceInTerm: node grants a vote even when it already voted for another in this term.
 */
export type UnsafeVariant = "commitOldTermEntries" | "acceptStaleTermAppend" | "voteTwiceInTerm";

export interface Config {
  id: NodeId;
  storage: Storage;
  /**
   * Base election timeout in ticks, also the leader lease (check-quorum, leader stickiness);
   * a follower's actual timeout is drawn from [electionTicks, electionTicks + electionJitterTicks).
   */
  electionTicks: number;
  /**
   * Width of the randomised part of the election timeout, in ticks (default electionTicks,
   * etcd's [T, 2T)). Narrower elects sooner and more evenly after a leader fails, at the price
   * of more split votes when followers' timers fire together. Liveness only: terms, votes and
   * log matching keep safety whatever the timeouts.
   */
  electionJitterTicks?: number;
  /** Leader heartbeat interval in ticks (must be < electionTicks). */
  heartbeatTicks: number;
  /** Injected randomness in [0, 1) (never Math.random). */
  random: () => number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Soft limit on the entries bytes of one MsgApp (default 1 MiB). */
  maxSizePerMsgBytes?: number;
  /** Max in-flight MsgApp per follower in replicate state (default 256). */
  maxInflightMsgs?: number;
  /**
   * Followers refuse proposals with NotLeader (naming the leader) instead of
   * forwarding them as MsgProp. Default false (forward, like etcd).
   */
  disableProposalForwarding?: boolean;
  /**
   * A new commit index reaches followers with the next append or heartbeat, not in an
   * empty MsgApp sent at once (etcd's way, the default false). Saves two messages per
   * follower per commit (the append and its answer) and a follower Ready; followers
   * apply up to one heartbeat later. Safe: only fewer messages are sent, and a
   * follower's ReadIndex round carries the commit index in its heartbeats.
   */
  lazyCommitBroadcast?: boolean;
  /** Last applied index on restart (default: the snapshot index in storage). */
  applied?: number;
  /** Test-only: see UnsafeVariant. */
  unsafeVariant?: UnsafeVariant;
}

export type ProgressState = "probe" | "replicate" | "snapshot";

export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressState;
  isLearner: boolean;
}

export interface Status {
  id: NodeId;
  term: number;
  vote: NodeId | null;
  commit: number;
  applied: number;
  lead: NodeId | null;
  role: Role;
  /** Present on the leader only. */
  progress?: Record<NodeId, ProgressStatus>;
  conf: ConfState;
  /** Target of an ongoing leadership transfer (leader only), else null. */
  leadTransferee: NodeId | null;
}
