/**
 * The Raft driving loop: real-timer ticks, incoming messages and local proposals go
 * into the pure RawNode; each Ready is handled in order —
 *   1. persist snapshot / entries / hard state (WAL append + fdatasync),
 *   2. send messages (only after 1: persist-before-send),
 *   3. hand committed entries (and an installed snapshot) to the application — on a
 *      follower after its messages have left (hooks.flushed), so its apply does not
 *      delay the acknowledgement the leader waits for,
 *   4. advance —
 * one Ready at a time. Steps that arrive while a Ready is being persisted are fed to
 * the RawNode at once (as etcd's node loop does); their output comes in the next Ready.
 * A Ready with nothing to write (heartbeats and their answers, a commit index learned,
 * a tick's messages: most of them on an idle pool) is handled at once, without waiting
 * for a turn of the event loop: "persist, then send" holds trivially.
 *
 * The exception: a leader whose term and vote are already durable sends its messages
 * (appends, heartbeats) while it writes its own entries, as etcd's leader does (Raft
 * thesis 10.2.1), so the followers' fsyncs overlap its own, and writes in the background
 * (seams/storage.ts), so its loop takes their acknowledgements meanwhile. Safe: those messages claim
 * nothing about the leader's disk (no vote, no acknowledgement), and an entry is
 * applied, and so acknowledged to a client, only from a later Ready, handled after this
 * write finished. Followers and candidates always persist first (their MsgAppResp and
 * votes are promises about their disk).
 *
 * Linearizable reads: `readBarrier()` runs a ReadIndex round and resolves once this
 * node has applied up to the read index. Concurrent callers share one round (a caller
 * that arrives while a round is in flight waits for the next one, so no read can be
 * served from a round that started before it arrived). A round starts at the end of the
 * event-loop turn its first caller arrived in (clock.afterTurn), not at once: the
 * requests one socket read delivers (a CryptoSession's messages, several sessions) then
 * share one round instead of the first taking a round alone and the rest the next one.
 * Each round costs the leader heartbeats to a majority and their acks, and a follower a
 * request and an answer (profiled at 25-30% of a member's CPU while signing).
 */
import { fail, HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import type {
  ConfChange,
  ConfState,
  Entry,
  Message,
  NodeId,
  RawNode,
  Ready,
  Snapshot,
  SoftState,
} from "@hsmpool/raft";
import { decodeConfChange } from "@hsmpool/raft";
import type { Logger } from "pino";
import type { Clock, TimerId } from "../seams/clock.js";
import type { NodeObserver } from "../seams/observer.js";
import type { Randomness } from "../seams/random.js";
import { NO_VARIANTS, type ShellVariants } from "../seams/variants.js";
import type { RaftStore } from "../storage/raft-store.js";

export interface RaftDriverHooks {
  send(messages: Message[]): void;
  /** Resolves once the messages sent so far have left (undefined: they leave at once). */
  flushed?(): Promise<void> | undefined;
  /**
   * A snapshot from the leader is durable: the application replaces its state with it,
   * in steps (decoding 100,000 keys takes seconds). The driver lets its event loop run
   * after each step and applies nothing meanwhile; the state must be replaced in the last
   * step (until then queries see the state before the snapshot).
   */
  onSnapshot(snapshot: Snapshot): Iterator<void, void, void>;
  /** One committed entry, in log order, exactly once per process lifetime. */
  onCommitted(entry: Entry): void;
  /** Membership changed (a confChange entry applied). */
  onConfChange(conf: ConfState): void;
  onSoftState(soft: SoftState, term: number): void;
  /**
   * Application state to put in a snapshot at the current applied index, encoded in
   * steps: the driver lets its event loop run after each step (a large state takes
   * seconds to encode) and applies nothing until the bytes are returned.
   */
  snapshotData(): Iterator<void, Uint8Array, void>;
  /** Persisting failed: the node cannot continue safely. */
  onFatal(error: unknown): void;
}

export interface RaftDriverOptions {
  node: RawNode;
  store: RaftStore;
  tickMs: number;
  /** Election timeout in ticks (paces ReadIndex retries). */
  electionTicks: number;
  /** The node's other per-tick work, run after each Raft tick on the same timer (one timer per member). */
  afterTick?: () => void;
  /**
   * Snapshot + compact after this many entries applied since the last snapshot, and once
   * the entries applied since then hold at least LOG_BYTES_PER_SNAPSHOT_BYTE of the last
   * snapshot's bytes (a large state is not re-encoded every few entries).
   */
  snapshotEveryEntries: number;
  /** Bytes of the snapshot the node started from (0: none yet). */
  snapshotBytes?: number;
  /** Membership as of the snapshot the node started from. */
  conf: ConfState;
  appliedIndex: number;
  hooks: RaftDriverHooks;
  logger: Logger;
  clock: Clock;
  random: Randomness;
  /** Broken variants for checker self-tests (sendBeforePersist); empty in a real node. */
  variants?: ShellVariants;
  observer?: NodeObserver;
  /** Why a read may not be confirmed, e.g. "no quorum: 1 of 3 voters reachable (n2, n3 unreachable)". */
  quorumNote?: () => string;
}

interface ReadWaiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface AppliedWaiter {
  index: number;
  resolve: () => void;
}

/**
 * A snapshot re-encodes the whole state, so taking one every N entries costs O(state) per
 * N entries: filling a pool to 100,000 keys re-encoded ~5 million keys per member (one
 * snapshot per 1,000 creates, each of all the keys so far), the fill's main cost past
 * ~30,000 keys. Waiting also until the log since the snapshot is this fraction of the
 * snapshot's size makes the work per applied byte constant (each snapshot is at most
 * 1 / this times the bytes applied since the last), while the log a restart replays or a
 * joiner receives after the snapshot stays a small fraction of the state: 1/8 keeps it
 * at the 1,000-entry floor up to ~8,000 keys and at ~1/8 of the keys beyond.
 */
export const LOG_BYTES_PER_SNAPSHOT_BYTE = 1 / 8;

export class RaftDriver {
  private readonly node: RawNode;
  private timer: TimerId | null = null;
  /** The Ready being written (and the compaction after it), if any. */
  private processing: Promise<void> | null = null;
  /** Inside schedule()'s loop: a hook that steps or proposes leaves the new Ready to that loop. */
  private handling = false;
  private stopped = false;
  private applied: number;
  private snapshotIndex: number;
  /** Size of the last snapshot taken or installed, and the entry bytes applied since. */
  private snapshotBytes: number;
  private appliedBytesSinceSnapshot = 0;
  private conf: ConfState;
  /** Reads waiting for the next ReadIndex round, and the round in flight. */
  private queuedReads: ReadWaiter[] = [];
  /** A round is booked for the end of this turn (startReadRoundAfterTurn). */
  private readRoundBooked = false;
  private readRound: {
    contexts: Set<string>;
    waiters: ReadWaiter[];
    timer: TimerId | null;
    deadline: number;
  } | null = null;
  private appliedWaiters: AppliedWaiter[] = [];
  private readonly readTimeoutMs: number;
  private readonly readRetryMs: number;
  private readonly sendBeforePersist: boolean;

  constructor(private readonly opts: RaftDriverOptions) {
    this.node = opts.node;
    this.sendBeforePersist = (opts.variants ?? NO_VARIANTS).has("sendBeforePersist");
    this.applied = opts.appliedIndex;
    this.snapshotIndex = opts.appliedIndex;
    this.snapshotBytes = opts.snapshotBytes ?? 0;
    this.conf = opts.conf;
    // A ReadIndex round needs one heartbeat round trip. An unanswered request (a leader that
    // stopped or changed) is asked again every quarter election timeout, so a round reaches a
    // newly elected leader soon after its election; give up (NoQuorum) after four election timeouts.
    const electionMs = opts.tickMs * opts.electionTicks;
    this.readRetryMs = Math.max(100, electionMs / 4);
    this.readTimeoutMs = Math.max(1_000, electionMs * 4);
  }

  start(): void {
    this.timer = this.opts.clock.setInterval(() => this.tick(), this.opts.tickMs);
    this.schedule();
  }

  get appliedIndex(): number {
    return this.applied;
  }

  get confState(): ConfState {
    return { voters: [...this.conf.voters], learners: [...this.conf.learners] };
  }

  status() {
    return this.node.status();
  }

  private tick(): void {
    if (this.stopped) return;
    this.node.tick();
    this.schedule();
    this.opts.afterTick?.();
  }

  step(m: Message): void {
    if (this.stopped) return;
    this.node.step(m);
    this.schedule();
  }

  /** Appends `data` on the leader (or forwards it to the leader). Throws NotLeader when no leader is known. */
  propose(data: Uint8Array): void {
    if (this.stopped) fail("ServiceUnavailable", "the node is shutting down");
    this.node.propose(data);
    this.schedule();
  }

  proposeConfChange(cc: ConfChange): void {
    if (this.stopped) fail("ServiceUnavailable", "the node is shutting down");
    this.node.proposeConfChange(cc);
    this.schedule();
  }

  reportUnreachable(id: NodeId): void {
    if (!this.stopped) this.node.reportUnreachable(id);
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    if (this.stopped) return;
    this.node.reportSnapshot(id, ok);
    this.schedule();
  }

  /** Resolves once a ReadIndex round that started after this call is applied locally. */
  readBarrier(): Promise<void> {
    if (this.stopped)
      return Promise.reject(new HsmPoolError("ServiceUnavailable", "the node is shutting down"));
    return new Promise<void>((resolve, reject) => {
      this.queuedReads.push({ resolve, reject });
      this.startReadRoundAfterTurn();
    });
  }

  /** Books the next round for the end of this turn, unless one is in flight (it books the next when it ends). */
  private startReadRoundAfterTurn(): void {
    if (this.readRound !== null || this.readRoundBooked) return;
    this.readRoundBooked = true;
    this.opts.clock.afterTurn(() => {
      this.readRoundBooked = false;
      if (this.readRound === null && !this.stopped) this.startReadRound();
    });
  }

  private startReadRound(): void {
    const waiters = this.queuedReads;
    if (waiters.length === 0) return;
    this.queuedReads = [];
    const deadline = this.opts.clock.now() + this.readTimeoutMs;
    this.readRound = { contexts: new Set(), waiters, timer: null, deadline };
    this.askReadIndex(deadline);
  }

  /**
   * A leader just became known (elected, or heard from): the round's request went to the
   * old one or to nobody, so ask the new one now instead of at the next retry. Same
   * round, same waiters: the new request is still asked after all of them arrived.
   */
  private reaskReadIndex(): void {
    const round = this.readRound;
    if (!round) return;
    this.opts.clock.clear(round.timer);
    round.timer = null;
    this.askReadIndex(round.deadline);
  }

  /**
   * One ReadIndex request for the current round. A request or answer can be dropped
   * (a link down, a leader change), so an unanswered one is asked again after an
   * election timeout; any answer to any of the round's requests serves the round
   * (each was asked after all of its waiters arrived).
   */
  private askReadIndex(deadline: number): void {
    const round = this.readRound;
    if (!round) return;
    if (this.opts.clock.now() >= deadline) {
      this.finishReadRound(
        new HsmPoolError(
          "NoQuorum",
          `${this.opts.quorumNote?.() ?? "no quorum of members is reachable"}: linearizable read not confirmed within ${this.readTimeoutMs} ms`,
          { retryable: true },
        ),
      );
      return;
    }
    const ctx = this.opts.random.bytes(8);
    round.contexts.add(Buffer.from(ctx).toString("hex"));
    round.timer = this.opts.clock.setTimeout(() => this.askReadIndex(deadline), this.readRetryMs);
    try {
      this.node.readIndex(ctx);
      this.schedule();
    } catch (e) {
      if (!isHsmPoolError(e, "NotLeader")) {
        this.finishReadRound(e);
        return;
      }
      // No leader known yet: keep asking until the deadline (an election may be under way).
    }
  }

  private finishReadRound(error: unknown | null, index = 0): void {
    const round = this.readRound;
    if (!round) return;
    this.readRound = null;
    this.opts.clock.clear(round.timer);
    for (const w of round.waiters) {
      if (error !== null) w.reject(error);
      else this.whenApplied(index).then(w.resolve, w.reject);
    }
    this.startReadRoundAfterTurn();
  }

  /** Resolves when the applied index reaches `index`. */
  whenApplied(index: number): Promise<void> {
    if (this.applied >= index) return Promise.resolve();
    return new Promise((resolve) => this.appliedWaiters.push({ index, resolve }));
  }

  /**
   * Handles every Ready there is: at once while it needs no disk write; one that does is
   * persisted asynchronously (and its successors wait for it, in order).
   */
  private schedule(): void {
    if (this.processing !== null || this.handling || this.stopped) return;
    this.handling = true;
    try {
      while (!this.stopped && this.node.hasReady()) {
        const rd = this.node.ready();
        if (this.opts.store.needsWrite(rd)) {
          this.processInBackground(this.writeReady(rd));
          return;
        }
        this.opts.store.keepInMemory(rd);
        this.afterPersist(rd, true);
        this.node.advance(rd);
        if (this.compactionDue()) {
          this.processInBackground(this.compact());
          return;
        }
      }
    } catch (e) {
      this.failed(e);
    } finally {
      this.handling = false;
    }
  }

  /** Readies wait while `work` (a write or a compaction) runs; then scheduling resumes. */
  private processInBackground(work: Promise<void>): void {
    this.processing = work.finally(() => {
      this.processing = null;
      this.schedule();
    });
  }

  private failed(e: unknown): void {
    this.stopped = true;
    this.opts.hooks.onFatal(e);
  }

  /** A Ready with something to write: persist (fsync), then send, apply and advance. */
  private async writeReady(rd: Ready): Promise<void> {
    try {
      // The broken variant sends first whatever the role: a crash before the fsync loses what a peer was told.
      const sendFirst =
        rd.messages.length > 0 && (this.sendBeforePersist || this.mayLeaderSendBeforePersist(rd));
      if (sendFirst) this.send(rd.messages);
      // Having sent, a leader writes in the background: its loop takes the acknowledgements meanwhile.
      await this.opts.store.persist(rd, { background: sendFirst });
      const acknowledgeFirst = !sendFirst && this.acknowledgesBeforeApplying(rd);
      this.announce(rd, !sendFirst);
      if (acknowledgeFirst) {
        // A follower's answers leave before it applies what this Ready committed (with
        // lazyCommitBroadcast every append carries the commit of the entry before it): the
        // leader waits for the answer, not for this member's apply.
        const flushed = this.opts.hooks.flushed?.();
        if (flushed) await flushed;
      }
      // A snapshot is installed in steps, a turn of the loop between two (none for one step).
      const install = rd.snapshot ? this.opts.hooks.onSnapshot(rd.snapshot) : null;
      for (let step = install?.next(); step && !step.done; step = install?.next()) await this.loopTurn();
      this.applyReady(rd);
    } catch (e) {
      this.failed(e);
      return;
    }
    this.node.advance(rd);
    if (this.compactionDue()) await this.compact();
  }

  /** What follows the write of a Ready: send (unless sent already), install, apply, serve reads. */
  private afterPersist(rd: Ready, send: boolean): void {
    this.announce(rd, send);
    this.applyReady(rd);
  }

  /** A follower's Ready that both answers the leader and commits entries. */
  private acknowledgesBeforeApplying(rd: Ready): boolean {
    return rd.messages.length > 0 && rd.committedEntries.length > 0 && !this.isLeader();
  }

  /** The Ready is durable: tell the observer and the soft state, and send (unless sent already). */
  private announce(rd: Ready, send: boolean): void {
    this.opts.observer?.raftPersisted?.(rd);
    if (rd.softState) this.opts.hooks.onSoftState(rd.softState, this.node.status().term);
    if (send) this.send(rd.messages);
    if (rd.softState?.leader) this.reaskReadIndex();
  }

  /**
   * Takes in an installed snapshot (writeReady installs it: a Ready with a snapshot always
   * has something to write), applies committed entries, serves reads.
   */
  private applyReady(rd: Ready): void {
    const { hooks } = this.opts;
    if (rd.snapshot) {
      this.applied = rd.snapshot.meta.index;
      this.snapshotIndex = rd.snapshot.meta.index;
      this.snapshotBytes = rd.snapshot.data.length;
      this.appliedBytesSinceSnapshot = 0;
      this.conf = rd.snapshot.meta.conf;
      hooks.onConfChange(this.confState);
    }
    for (const entry of rd.committedEntries) {
      if (entry.index <= this.applied) continue;
      if (entry.type === "confChange") {
        this.conf = this.node.applyConfChange(decodeConfChange(entry.data));
        hooks.onConfChange(this.confState);
      }
      hooks.onCommitted(entry);
      this.applied = entry.index;
      this.appliedBytesSinceSnapshot += entry.data.length;
    }
    for (const rs of rd.readStates) {
      if (this.readRound?.contexts.has(Buffer.from(rs.requestCtx).toString("hex"))) {
        this.finishReadRound(null, rs.index);
      }
    }
    this.releaseAppliedWaiters();
  }

  private send(messages: Message[]): void {
    if (messages.length === 0) return;
    this.opts.observer?.raftSent?.(messages);
    this.opts.hooks.send(messages);
  }

  private isLeader(): boolean {
    return this.node.status().role === "leader";
  }

  /** A leader in a term and vote already on disk, with no snapshot to install (see the module comment). */
  private mayLeaderSendBeforePersist(rd: Ready): boolean {
    if (rd.snapshot || !this.isLeader()) return false;
    const durable = this.opts.store.durableHardState;
    return !rd.hardState || (rd.hardState.term === durable.term && rd.hardState.vote === durable.vote);
  }

  private releaseAppliedWaiters(): void {
    if (this.appliedWaiters.length === 0) return;
    const ready = this.appliedWaiters.filter((w) => w.index <= this.applied);
    this.appliedWaiters = this.appliedWaiters.filter((w) => w.index > this.applied);
    for (const w of ready) w.resolve();
  }

  private compactionDue(): boolean {
    return (
      this.applied - this.snapshotIndex >= this.opts.snapshotEveryEntries &&
      this.appliedBytesSinceSnapshot >= this.snapshotBytes * LOG_BYTES_PER_SNAPSHOT_BYTE
    );
  }

  private async compact(): Promise<void> {
    const index = this.applied;
    try {
      const data = await this.encodeSnapshotData();
      await this.opts.store.compact(index, this.confState, data);
      this.snapshotIndex = index;
      this.snapshotBytes = data.length;
      this.appliedBytesSinceSnapshot = 0;
      this.opts.logger.info({ index }, "snapshot taken, log compacted");
    } catch (e) {
      this.failed(e);
    }
  }

  /**
   * The application's snapshot bytes, encoded in steps with a turn of the event loop
   * between two (heartbeats, status calls and peers' messages are taken meanwhile; their
   * Readies wait, as during any write, so the state does not change under the encoder).
   */
  private async encodeSnapshotData(): Promise<Uint8Array> {
    const steps = this.opts.hooks.snapshotData();
    for (;;) {
      const step = steps.next();
      if (step.done) return step.value;
      await this.loopTurn();
    }
  }

  /** Resolves after a turn of the event loop (timers, I/O and peers' messages run meanwhile). */
  private loopTurn(): Promise<void> {
    return new Promise<void>((resolve) => this.opts.clock.setTimeout(resolve, 0));
  }

  /** Stops ticking and waits for the Ready being handled to reach the disk. */
  async stop(): Promise<void> {
    this.opts.clock.clear(this.timer);
    this.timer = null;
    const inFlight = this.processing;
    this.stopped = true;
    await inFlight;
    const closing = new HsmPoolError("ServiceUnavailable", "the node is shutting down", { retryable: true });
    for (const w of this.queuedReads.splice(0)) w.reject(closing);
    this.finishReadRound(closing);
  }
}
