import type { Prng } from "@hsmpool/faults";
import {
  type ConfChange,
  type ConfState,
  decodeConfChange,
  type Entry,
  type MemoryStorage,
  type Message,
  type NodeId,
  RawNode,
  type Ready,
  type Role,
  type UnsafeVariant,
} from "@hsmpool/raft";
import { SimDisk } from "../disk.js";
import type { RaftChecker } from "./invariants.js";
import { decodeReadCtx, KvStateMachine, type KvWrite } from "./kv.js";
import {
  compactedWal,
  encodeBootstrap,
  encodeCheckpoint,
  encodeEntries,
  encodeHardState,
  encodeSnapshot,
  recoverStorage,
} from "./wal.js";

/**
 * One simulated Raft member: a RawNode driven like a real process would drive it,
 * with its state on a SimDisk write-ahead log. Handling a Ready follows the
 * persist-before-send contract with a simulated fsync delay: records are appended,
 * then (after the fsync completes, possibly much later, possibly never if the node
 * crashes first) messages leave, committed entries are applied, advance() is called.
 *
 * A crash throws away everything in memory; restart rebuilds MemoryStorage and the
 * state machine from what survived on disk.
 */

export type NodeState = "spare" | "up" | "paused" | "down" | "decommissioned";

export interface RaftTuning {
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxSizePerMsgBytes: number | undefined;
  maxInflightMsgs: number | undefined;
  lazyCommitBroadcast?: boolean;
  unsafeVariant?: UnsafeVariant;
}

export interface CompactionPolicy {
  /** Take a snapshot once this many applied entries sit in the log. */
  everyEntries: number;
  /** Rewrite the WAL (atomically) once it is larger than this. */
  walRewriteBytes: number;
}

/** What the node needs from the cluster harness (the "outside world"). */
export interface NodeHost {
  readonly checker: RaftChecker;
  send(m: Message): void;
  scheduleFsync(node: SimRaftNode, delayUs: number): void;
  onApplied(node: SimRaftNode, e: Entry, write: KvWrite | null): void;
  onConfApplied(node: SimRaftNode, cc: ConfChange): void;
  onRoleChange(node: SimRaftNode, role: Role, term: number): void;
  onReadServed(node: SimRaftNode, readId: number, key: number): void;
  log(make: () => string): void;
}

interface WaitingRead {
  readId: number;
  key: number;
  index: number;
}

export class SimRaftNode {
  readonly disk = new SimDisk();
  state: NodeState = "spare";
  incarnation = 0;
  role: Role = "follower";
  term = 0;
  raw: RawNode | null = null;
  storage: MemoryStorage | null = null;
  readonly kv = new KvStateMachine();
  conf: ConfState = { voters: [], learners: [] };
  /** Reads the client sent here: requestCtx id -> key, until the ReadState arrives. */
  readonly readsAwaitingIndex = new Map<number, number>();
  private readonly readsAwaitingApply: WaitingRead[] = [];
  /** Writes proposed through this node that its client is waiting for. */
  readonly localWrites = new Set<number>();
  /** Messages (and the completed fsync) that arrived while paused, handled on resume. */
  private inbox: Message[] = [];
  private readyInFlight: Ready | null = null;
  private fsyncDoneWhilePaused = false;

  constructor(
    readonly id: NodeId,
    private readonly bootstrapConf: ConfState,
    private readonly prng: Prng,
    private readonly tuning: RaftTuning,
    private readonly compaction: CompactionPolicy | null,
    private readonly host: NodeHost,
    private readonly fsyncDelay: (prng: Prng) => number,
  ) {}

  get isUp(): boolean {
    return this.state === "up";
  }

  get running(): boolean {
    return this.state === "up" || this.state === "paused";
  }

  /** First start: write the bootstrap record durably, then boot from disk like any restart. */
  start(): void {
    if (this.state !== "spare") throw new Error(`${this.id} already started`);
    this.disk.append(encodeBootstrap(this.bootstrapConf));
    this.disk.fsync();
    this.boot();
  }

  /** (Re)build everything volatile from the disk. */
  private boot(): void {
    this.incarnation++;
    const { storage, hardState, recovery } = recoverStorage(this.disk);
    this.storage = storage;
    const snap = storage.snapshot();
    this.kv.restore(snap.data, snap.meta.index);
    this.conf = storage.initialState().conf;
    this.term = hardState.term;
    this.role = "follower";
    this.host.checker.observeRecovered(this.id, storage, hardState);
    const rng = this.prng.split(`incarnation-${this.incarnation}`);
    this.raw = new RawNode({
      id: this.id,
      storage,
      electionTicks: this.tuning.electionTicks,
      heartbeatTicks: this.tuning.heartbeatTicks,
      random: () => rng.float(),
      preVote: this.tuning.preVote,
      checkQuorum: this.tuning.checkQuorum,
      ...(this.tuning.maxSizePerMsgBytes !== undefined
        ? { maxSizePerMsgBytes: this.tuning.maxSizePerMsgBytes }
        : {}),
      ...(this.tuning.maxInflightMsgs !== undefined ? { maxInflightMsgs: this.tuning.maxInflightMsgs } : {}),
      ...(this.tuning.lazyCommitBroadcast ? { lazyCommitBroadcast: true } : {}),
      ...(this.tuning.unsafeVariant ? { unsafeVariant: this.tuning.unsafeVariant } : {}),
    });
    this.state = "up";
    this.host.log(
      () =>
        `${this.id} boots (incarnation ${this.incarnation}): ${recovery.records.length} WAL records, term ${hardState.term}, commit ${hardState.commit}, log ${storage.firstIndex()}..${storage.lastIndex()}` +
        (recovery.problem ? `, ${recovery.problem} tail of ${recovery.discardedBytes} bytes truncated` : ""),
    );
  }

  /** Power loss: memory gone, unsynced disk writes lost (and maybe torn/corrupted). */
  crash(prng: Prng, corruptProbability: number): void {
    if (!this.running) return;
    const r = this.disk.crash(prng, { corruptProbability });
    this.dropVolatile("down");
    this.host.log(
      () =>
        `${this.id} crashes: ${r.durableBytes} bytes durable, ${r.keptUnsyncedBytes} unsynced bytes survive, ${r.lostBytes} lost` +
        (r.corruptedAt !== undefined ? `, byte ${r.corruptedAt} corrupted` : ""),
    );
  }

  restart(): void {
    if (this.state !== "down") return;
    this.boot();
    this.pump();
  }

  /** Stopped for good (removed from the cluster); its disk is kept but never read again. */
  decommission(): void {
    if (this.state === "decommissioned") return;
    this.dropVolatile("decommissioned");
  }

  private dropVolatile(next: NodeState): void {
    this.state = next;
    this.raw = null;
    this.storage = null;
    this.readyInFlight = null;
    this.fsyncDoneWhilePaused = false;
    this.inbox = [];
    this.readsAwaitingIndex.clear();
    this.readsAwaitingApply.length = 0;
    this.localWrites.clear();
    this.role = "follower";
  }

  pause(): void {
    if (this.state === "up") this.state = "paused";
  }

  /**
   * Wake up after a pause. A frozen process finds its timers overdue and its socket
   * buffers full; which it handles first is up to the scheduler, so half the time
   * the node ticks (and may act on stale beliefs) before reading its messages.
   */
  resume(): void {
    if (this.state !== "paused") return;
    this.state = "up";
    if (this.prng.chance(0.5)) this.tick();
    if (this.fsyncDoneWhilePaused) {
      this.fsyncDoneWhilePaused = false;
      this.completeReady();
    }
    const inbox = this.inbox;
    this.inbox = [];
    for (const m of inbox) {
      if (!this.isUp) break;
      this.step(m);
    }
  }

  tick(): void {
    if (this.state !== "up" || !this.raw) return;
    this.raw.tick();
    this.pump();
  }

  step(m: Message): void {
    if (this.state === "paused") {
      this.inbox.push(m);
      return;
    }
    if (this.state !== "up" || !this.raw) return;
    this.raw.step(m);
    this.pump();
  }

  /** Run `fn` against the RawNode (proposals, reads, transfers) and handle any Ready it causes. */
  act(fn: (raw: RawNode) => void): void {
    if (this.state !== "up" || !this.raw) throw new Error(`${this.id} is not running`);
    try {
      fn(this.raw);
    } finally {
      if (this.isUp) this.pump();
    }
  }

  /** Start handling the next Ready if none is in flight: persist now, finish after fsync. */
  pump(): void {
    const raw = this.raw;
    const storage = this.storage;
    if (this.state !== "up" || !raw || !storage || this.readyInFlight || !raw.hasReady()) return;
    const rd = raw.ready();
    const checker = this.host.checker;
    if (rd.snapshot) {
      this.disk.append(encodeSnapshot(rd.snapshot));
      storage.applySnapshot(rd.snapshot);
      checker.observeSnapshotInstall(this.id, rd.snapshot);
    }
    if (rd.entries.length > 0) {
      this.disk.append(encodeEntries(rd.entries));
      storage.append(rd.entries);
      checker.observeAppend(this.id, rd.entries);
    }
    if (rd.hardState) {
      this.disk.append(encodeHardState(rd.hardState));
      storage.setHardState(rd.hardState);
      this.term = rd.hardState.term;
      checker.observeCommit(this.id, rd.hardState.commit, rd.hardState.term);
    }
    if (rd.softState && rd.softState.role !== this.role) {
      this.role = rd.softState.role;
      if (this.role === "leader") checker.observeBecameLeader(this.id, this.term);
      this.host.onRoleChange(this, this.role, this.term);
    }
    this.readyInFlight = rd;
    if (rd.mustSync) this.host.scheduleFsync(this, this.fsyncDelay(this.prng));
    else this.completeReady();
  }

  /** The fsync of the in-flight Ready finished (event scheduled by pump). */
  fsyncDone(incarnation: number): void {
    if (incarnation !== this.incarnation || !this.readyInFlight) return;
    if (this.state === "paused") {
      this.fsyncDoneWhilePaused = true;
      return;
    }
    if (this.state !== "up") return;
    this.completeReady();
  }

  private completeReady(): void {
    const rd = this.readyInFlight;
    const raw = this.raw;
    if (!rd || !raw) return;
    if (rd.mustSync) this.disk.fsync();
    for (const m of rd.messages) {
      this.host.checker.observeSent(m);
      this.host.send(m);
    }
    if (rd.snapshot) {
      this.kv.restore(rd.snapshot.data, rd.snapshot.meta.index);
      this.conf = rd.snapshot.meta.conf;
    }
    for (const e of rd.committedEntries) {
      if (e.index <= this.kv.applied) continue; // covered by a snapshot restored in this Ready
      const write = this.kv.apply(e);
      this.host.checker.checkApplied(this.id, e.index, this.kv.digest);
      if (e.type === "confChange") {
        const cc = decodeConfChange(e.data);
        this.conf = raw.applyConfChange(cc);
        this.host.onConfApplied(this, cc);
      }
      this.host.onApplied(this, e, write);
      // The harness may have stopped this node (decommissioned after its own removal).
      if (!this.isUp) return;
    }
    for (const rs of rd.readStates) {
      const readId = decodeReadCtx(rs.requestCtx);
      const key = readId === null ? undefined : this.readsAwaitingIndex.get(readId);
      if (readId === null || key === undefined) continue;
      this.readsAwaitingIndex.delete(readId);
      this.readsAwaitingApply.push({ readId, key, index: rs.index });
    }
    this.serveReads();
    raw.advance(rd);
    this.readyInFlight = null;
    this.maybeCompact();
    this.pump();
  }

  private serveReads(): void {
    let kept = 0;
    for (const r of this.readsAwaitingApply) {
      if (r.index <= this.kv.applied) this.host.onReadServed(this, r.readId, r.key);
      else this.readsAwaitingApply[kept++] = r;
    }
    this.readsAwaitingApply.length = kept;
  }

  private maybeCompact(): void {
    const storage = this.storage;
    const policy = this.compaction;
    if (!storage || !policy) return;
    const applied = this.kv.applied;
    if (applied - (storage.firstIndex() - 1) < policy.everyEntries || applied > storage.lastIndex()) return;
    const snap = storage.createSnapshot(applied, this.conf, this.kv.snapshotData());
    storage.compact(applied);
    this.disk.append(encodeCheckpoint(snap, applied));
    this.host.log(() => `${this.id} compacts its log through index ${applied}`);
    if (this.disk.sizeBytes > policy.walRewriteBytes) {
      this.disk.rewrite(compactedWal(this.bootstrapConf, storage));
    }
  }
}
