import { type ErrorCode, isHsmPoolError } from "@hsmpool/errors";
import type { Prng } from "@hsmpool/faults";
import {
  type ApplyOutcome,
  createOwnershipState,
  decodeMessage,
  decodeOwnershipCheckpoint,
  encodeOwnershipCheckpoint,
  type GenesisCommand,
  KeyStore,
  type OwnershipCheckpoint,
  type OwnershipEffect,
  type OwnershipInput,
  type OwnershipMessage,
  type OwnershipState,
  ownershipCheckpoint,
  ownershipInputsOf,
  resumeOwnership,
  type SingleKeyResult,
  stepOwnership,
} from "@hsmpool/pool";
import type { ConfChange, Entry } from "@hsmpool/raft";
import { SimDisk } from "../disk.js";
import type { SimRaftNode } from "../raft/node.js";
import { PoolInvariantViolation } from "./checker.js";
import { KeyService, type KeyServiceHost } from "./key-service.js";
import { isHsmEffect, type SimPartition } from "./sim-hsm.js";
import type { PoolUnsafeMode } from "./unsafe.js";
import type { ClientOp } from "./workload.js";

/**
 * One simulated pool member: the node shell of packages/node, in virtual time. It
 * owns a Raft node (the sim's SimRaftNode and WAL), the pool KeyStore applied from
 * committed entries, the ownership machine fed with ticks, leader changes and
 * committed Genesis / MemberOwnershipSynced entries, and a KeyService for client
 * operations. Its hardware outlives the process: the HSM partition and the disk
 * holding the ownership checkpoint survive a crash; everything else is rebuilt on
 * restart (the key store by replaying the WAL, the machine from the checkpoint).
 *
 * Ownership inputs are processed one at a time (a queue, like the node's driver) and
 * follow the pool's persist-before-effects contract: after each step, a changed
 * ownershipCheckpoint (synced, or the provisional one a primary gets in the step that
 * proposes Genesis) is written before any of the step's effects run.
 */

/** What a member needs from the harness. */
export interface MemberHost {
  readonly poolId: string;
  readonly unsafe: PoolUnsafeMode | undefined;
  readonly retryTicks: number;
  nowUs(): number;
  nowMs(): number;
  /** Run `fn` at simulated time `atUs` (the HSM device model uses it). */
  at(atUs: number, label: string, member: PoolMember, fn: () => void): void;
  hsmLatencyUs(label: string): number;
  /** An injected transient device fault for this call, or null. */
  hsmFault(): string | null;
  sendOwnership(from: PoolMember, to: string, message: OwnershipMessage): void;
  ownershipChanged(member: PoolMember): void;
  /** The process restarted from its ownership checkpoint of this phase. */
  resumed(member: PoolMember, phase: OwnershipCheckpoint["phase"]): void;
  /** `member` proposes `genesis` (its checkpoint disk must already record it). */
  genesisProposed(member: PoolMember, genesis: GenesisCommand): void;
  applied(member: PoolMember, index: number, outcome: ApplyOutcome): void;
  served(member: PoolMember, op: string): void;
  complete(op: ClientOp, result: SingleKeyResult): void;
  refuse(op: ClientOp, code: ErrorCode, message: string): void;
  unknown(op: ClientOp, why: string): void;
  nextReadId(): number;
  log(make: () => string): void;
}

const EPOCH_MS = 1_700_000_000_000;

export function foundingKeyStore(poolId: string): KeyStore {
  const store = new KeyStore({ poolId });
  // Founding members boot from Raft's bootstrap snapshot at index 1 (as packages/node does).
  store.apply({ index: 1, term: 1, type: "normal", data: new Uint8Array() });
  return store;
}

export class PoolMember {
  /** Survives crashes: the ownership checkpoint file (rewritten atomically and durably). */
  readonly checkpointDisk = new SimDisk();
  incarnation = 0;
  store: KeyStore | null = null;
  ownership: OwnershipState | null = null;
  keys: KeyService | null = null;
  private inputs: OwnershipInput[] = [];
  private stepping = false;
  private booting = false;
  /** Work that arrived while the process was paused (HSM results, ownership inputs). */
  private pausedWork: (() => void)[] = [];
  /** Client requests that reached a paused process. */
  private deferred: ClientOp[] = [];
  private heard = new Set<string>();
  private peersConnectedFed = false;
  private caughtUpTerm = 0;
  private lead: string | null = null;
  private leadTerm = -1;
  private lastCheckpoint: Uint8Array | null = null;

  constructor(
    readonly id: string,
    readonly raft: SimRaftNode,
    readonly partition: SimPartition,
    private readonly host: MemberHost,
    private readonly prng: Prng,
  ) {}

  /** The ownership checkpoint on this member's disk (what a restart would resume from). */
  savedCheckpoint(): OwnershipCheckpoint | null {
    const saved = this.checkpointDisk.recover().records.at(-1);
    return saved ? decodeOwnershipCheckpoint(saved) : null;
  }

  get running(): boolean {
    return this.raft.running;
  }

  // ---- process lifecycle ----------------------------------------------------------

  start(): void {
    this.boot(() => {
      this.raft.start();
      this.raft.pump();
    });
  }

  restart(): void {
    if (this.raft.state !== "down") return;
    this.boot(() => this.raft.restart());
  }

  /**
   * (Re)start the process: volatile state from scratch, the ownership machine from the
   * checkpoint if one was written, then Raft (whose WAL replay re-applies committed
   * entries). Inputs produced while Raft boots wait until `start` has been fed.
   */
  private boot(startRaft: () => void): void {
    this.incarnation++;
    this.store = foundingKeyStore(this.host.poolId);
    this.keys = new KeyService(this.keyServiceHost());
    this.inputs = [];
    this.pausedWork = [];
    this.heard = new Set();
    this.peersConnectedFed = false;
    this.caughtUpTerm = 0;
    this.lead = null;
    this.leadTerm = -1;
    const config = { nodeId: this.id, poolId: this.host.poolId, retryTicks: this.host.retryTicks };
    const saved = this.checkpointDisk.recover().records.at(-1) ?? null;
    const checkpoint = saved ? decodeOwnershipCheckpoint(saved) : null;
    this.lastCheckpoint = saved;
    this.ownership = checkpoint ? resumeOwnership(config, checkpoint) : createOwnershipState(config);
    this.host.log(
      () =>
        `${this.id} process starts (incarnation ${this.incarnation}), ${checkpoint ? `resuming from its ownership checkpoint (${checkpoint.phase})` : "blank"}`,
    );
    if (checkpoint) {
      this.host.resumed(this, checkpoint.phase);
      this.host.ownershipChanged(this);
    }
    this.booting = true;
    try {
      startRaft();
    } finally {
      this.booting = false;
    }
    const conf = this.raft.conf;
    this.inputs.unshift({
      kind: "start",
      nowMs: this.host.nowMs(),
      incarnation: `i${this.incarnation}r${this.prng.nextU32().toString(16)}`,
      members: [...conf.voters, ...conf.learners],
    });
    this.drain();
    this.syncLeader();
  }

  crash(prng: Prng, corruptProbability: number): boolean {
    if (!this.running) return false;
    this.raft.crash(prng, corruptProbability);
    this.keys?.dropAll(`${this.id} crashed`);
    for (const op of this.deferred) this.host.unknown(op, `${this.id} crashed`);
    this.deferred = [];
    this.keys = null;
    this.store = null;
    this.ownership = null;
    this.inputs = [];
    this.pausedWork = [];
    return true;
  }

  pause(): boolean {
    if (this.raft.state !== "up") return false;
    this.raft.pause();
    return true;
  }

  resume(): void {
    if (this.raft.state !== "paused") return;
    this.raft.resume();
    const work = this.pausedWork;
    this.pausedWork = [];
    for (const w of work) {
      if (!this.raft.isUp) break;
      w();
    }
    const ops = this.deferred;
    this.deferred = [];
    for (const op of ops) this.request(op);
    this.syncLeader();
  }

  /** Run `fn` in the process now, later (paused), or never (crashed since `incarnation`). */
  private inProcess(incarnation: number, fn: () => void): void {
    if (incarnation !== this.incarnation || !this.running) return;
    if (this.raft.state === "paused") this.pausedWork.push(fn);
    else fn();
  }

  // ---- ownership machine ----------------------------------------------------------

  feed(input: OwnershipInput): void {
    if (!this.running || !this.ownership) return;
    if (this.raft.state === "paused") {
      this.pausedWork.push(() => this.feed(input));
      return;
    }
    this.inputs.push(input);
    if (!this.stepping && !this.booting) this.drain();
  }

  private drain(): void {
    this.stepping = true;
    try {
      for (let input = this.inputs.shift(); input && this.ownership; input = this.inputs.shift()) {
        this.step(this.ownership, input);
      }
    } finally {
      this.stepping = false;
    }
  }

  private step(before: OwnershipState, input: OwnershipInput): void {
    let next: ReturnType<typeof stepOwnership>;
    try {
      next = stepOwnership(before, input);
    } catch (e) {
      throw new PoolInvariantViolation(
        "ownership-input",
        `${this.id}'s ownership machine refused ${input.kind}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    const after = next.state;
    this.ownership = after;
    const changed =
      after.phase !== before.phase || after.material !== before.material || after.genesis !== before.genesis;
    const save =
      changed || (after.pending?.step === "verifyKeys") !== (before.pending?.step === "verifyKeys");
    const late = this.host.unsafe === "checkpointAfterEffects";
    if (save && !late) this.saveCheckpoint(after);
    if (changed) {
      if (after.phase !== before.phase)
        this.host.log(() => `${this.id} ownership ${before.phase} -> ${after.phase}`);
      this.host.ownershipChanged(this);
    }
    for (const effect of next.effects) this.execute(effect);
    if (save && late) this.saveCheckpoint(after);
  }

  /**
   * Durable before any effect of the step acts on it (as the node's driver does): the
   * Genesis proposal leaves only once the material it names is recorded. A null
   * checkpoint leaves the last one in place (the machine's contract).
   */
  private saveCheckpoint(state: OwnershipState): void {
    const checkpoint = ownershipCheckpoint(state);
    if (!checkpoint) return;
    const bytes = encodeOwnershipCheckpoint(checkpoint);
    const last = this.lastCheckpoint;
    if (last && last.length === bytes.length && last.every((b, i) => b === bytes[i])) return;
    this.checkpointDisk.rewrite([bytes]);
    this.lastCheckpoint = bytes;
    this.host.log(
      () => `${this.id} saves its ownership checkpoint (${checkpoint.phase}, ${bytes.length} bytes)`,
    );
  }

  private execute(effect: OwnershipEffect): void {
    if (isHsmEffect(effect)) {
      this.hsmCall(effect.kind, (fault) => {
        if (fault !== null) {
          if (effect.kind === "hsm.deleteKeys") return null;
          const correlationId = effect.correlationId;
          return () =>
            this.feed({ kind: "hsmFailed", correlationId, error: { code: "DeviceFault", message: fault } });
        }
        // The device acts even if the process died meanwhile; only the answer is lost.
        const result = this.partition.run(effect);
        return result ? () => this.feed(result) : null;
      });
      return;
    }
    switch (effect.kind) {
      case "send":
        this.host.sendOwnership(this, effect.to, effect.message);
        return;
      case "propose": {
        try {
          this.raft.act((raw) => raw.propose(effect.data));
        } catch (e) {
          if (!isHsmPoolError(e)) throw e;
          this.host.log(() => `${this.id} cannot propose ${effect.command.kind} yet: ${e.code}`);
        }
        if (effect.command.kind === "genesis") {
          this.host.genesisProposed(this, effect.command);
          if (this.host.unsafe === "genesisBeforeCommit") {
            this.feed({ kind: "genesisApplied", genesis: effect.command });
          }
        }
        return;
      }
      case "ownershipSynced":
        this.host.log(
          () => `${this.id} holds the pool's ownership (DEK ${effect.dekFingerprint.slice(0, 12)})`,
        );
        return;
    }
  }

  /**
   * One call on this member's HSM: queued behind the device's earlier calls, done after
   * its latency. `run(fault)` happens on the device at completion time (crash or not)
   * and returns what the process does with the answer, if it is still alive.
   */
  hsmCall(label: string, run: (fault: string | null) => (() => void) | null): void {
    const incarnation = this.incarnation;
    const p = this.partition;
    const startUs = Math.max(this.host.nowUs(), p.busyUntilUs);
    p.busyUntilUs = startUs + this.host.hsmLatencyUs(label);
    this.host.at(p.busyUntilUs, label, this, () => {
      const then = run(this.host.hsmFault());
      if (then) this.inProcess(incarnation, then);
    });
  }

  // ---- Raft side ------------------------------------------------------------------

  /** A committed entry, applied in order (the one place the key store changes). */
  onApplied(e: Entry): void {
    const store = this.store;
    if (!store) return;
    if (e.index !== store.appliedIndex + 1) {
      throw new Error(`${this.id} applies index ${e.index} but its key store is at ${store.appliedIndex}`);
    }
    const { outcome } = store.apply(e);
    this.host.applied(this, e.index, outcome);
    if (
      outcome.kind === "genesisAccepted" ||
      outcome.kind === "genesisIgnored" ||
      outcome.kind === "memberSynced"
    ) {
      this.host.log(() => `${this.id} applies ${describeOutcome(outcome)} at index ${e.index}`);
    }
    this.keys?.onApplied(outcome);
    for (const input of ownershipInputsOf(outcome)) this.feed(input);
    const raft = this.raft;
    if (raft.role === "leader" && e.term === raft.term && this.caughtUpTerm !== raft.term) {
      this.caughtUpTerm = raft.term;
      this.feed({ kind: "leaderCaughtUp", term: raft.term });
    }
  }

  onConfApplied(_cc: ConfChange): void {
    const conf = this.raft.conf;
    this.feed({ kind: "membershipChanged", members: [...conf.voters, ...conf.learners] });
  }

  /** A Raft message from `from` was delivered: attested links to a quorum mean "peers connected". */
  onRaftMessage(from: string): void {
    if (this.peersConnectedFed) return;
    this.heard.add(from);
    if (this.heard.size + 1 > this.raft.conf.voters.length / 2) {
      this.peersConnectedFed = true;
      this.feed({ kind: "peersConnected" });
    }
  }

  /** Tell the machine about a new leader or term (after any event that touched Raft). */
  syncLeader(): void {
    const raw = this.raft.raw;
    if (!raw || this.raft.state !== "up") return;
    const st = raw.status();
    if (st.lead === this.lead && st.term === this.leadTerm) return;
    this.lead = st.lead;
    this.leadTerm = st.term;
    this.feed({ kind: "leaderChanged", leader: st.lead, term: st.term });
  }

  tick(): void {
    if (this.raft.state !== "up") return;
    this.raft.tick();
    this.feed({ kind: "tick", nowMs: this.host.nowMs() });
    this.syncLeader();
  }

  receiveOwnership(from: string, bytes: Uint8Array): void {
    if (!this.running) return;
    this.feed({ kind: "message", from, message: decodeMessage(bytes) });
  }

  // ---- clients --------------------------------------------------------------------

  request(op: ClientOp): void {
    if (!this.running || !this.keys) {
      this.host.refuse(op, "ServiceUnavailable", `${this.id} is down (connection refused)`);
      return;
    }
    if (this.raft.state === "paused") {
      this.deferred.push(op);
      return;
    }
    this.keys.request(op);
  }

  private keyServiceHost(): KeyServiceHost {
    const member = this;
    const host = this.host;
    const incarnation = this.incarnation;
    return {
      id: this.id,
      raft: this.raft,
      partition: this.partition,
      get store() {
        return member.store as KeyStore;
      },
      get ownership() {
        return member.ownership;
      },
      unsafe: host.unsafe,
      nowMs: () => host.nowMs(),
      nextReadId: () => host.nextReadId(),
      hsm: (label, work, failed) =>
        this.hsmCall(label, (fault) => (fault === null ? work : () => failed(fault))),
      serving: (op) => host.served(member, op),
      complete: (op, result) => {
        if (member.incarnation === incarnation) host.complete(op, result);
      },
      refuse: (op, code, message) => {
        if (member.incarnation === incarnation) host.refuse(op, code, message);
      },
      unknown: (op, why) => host.unknown(op, why),
    };
  }
}

function describeOutcome(o: ApplyOutcome): string {
  switch (o.kind) {
    case "genesisAccepted":
      return `Genesis by ${o.genesis.proposer} (the pool's owner root)`;
    case "genesisIgnored":
      return `a later Genesis by ${o.proposer} (ignored)`;
    case "memberSynced":
      return `MemberOwnershipSynced ${o.memberId}`;
    default:
      return o.kind;
  }
}

export function simWallMs(nowUs: number): number {
  return EPOCH_MS + Math.floor(nowUs / 1000);
}
