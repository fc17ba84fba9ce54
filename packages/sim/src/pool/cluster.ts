import type { Prng } from "@hsmpool/faults";
import { type ApplyOutcome, encodeMessage, type GenesisCommand, type OwnershipMessage } from "@hsmpool/pool";
import type { ConfChange, ConfState, Entry, Message, NodeId, Role } from "@hsmpool/raft";
import { describeFault, type Fault, type Intensity } from "../faults.js";
import { Nemesis, type NemesisHost } from "../nemesis.js";
import { DEFAULT_LINK, Network } from "../network.js";
import { cloneMessage, describeMessage, MESSAGE_CODES } from "../raft/format.js";
import { RaftChecker } from "../raft/invariants.js";
import { type NodeHost, type RaftTuning, SimRaftNode } from "../raft/node.js";
import { EventQueue, formatSimTime, US_PER_MS } from "../scheduler.js";
import { TraceHash, Transcript } from "../trace.js";
import { holdsOwnership, type MemberView, PoolChecker, PoolInvariantViolation } from "./checker.js";
import { ClientActor, type ClientEvent, type ClientWorld } from "./clients.js";
import type { HealingUnsafeMode } from "./healing-actor.js";
import { type HealingCluster, PoolHealing } from "./healing-world.js";
import { type MemberHost, PoolMember, simWallMs } from "./member.js";
import type { PoolFault, PoolScenarioPlan } from "./scenarios.js";
import { SimHsmFabric, SimPartition } from "./sim-hsm.js";
import type { PoolUnsafeMode } from "./unsafe.js";

/**
 * The pool harness: one run's event queue, network, three members, clients, fault
 * schedule and checkers. It is the "world": it decides when things happen and
 * delivers what members send; the members are the node shells.
 *
 * Actors are kept apart so more can join (the next one: a healing controller that
 * replaces lost members): members react to events, clients issue operations, the
 * Nemesis applies faults through NemesisHost, and the checkers only observe.
 */

export const POOL_ID = "sim-pool";
export const POOL_TICK_US = 50 * US_PER_MS;
const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 2;
/** Ownership requests are re-sent after this many ticks (as packages/node: 2 election timeouts). */
const OWNERSHIP_RETRY_TICKS = 20;
const MEMBERS = 3;

/** Mean HSM latency per call kind (the device serves one call at a time). */
const HSM_LATENCY_US: Record<string, number> = {
  "hsm.zeroizeAndInit": 20_000,
  "hsm.createOwnershipKeys": 30_000,
  "hsm.signWithOwnerRoot": 4_000,
  "hsm.exportForTransfer": 3_000,
  "hsm.importFromTransfer": 3_000,
  "hsm.checkKeys": 2_000,
  "hsm.deleteKeys": 1_000,
  "generate+wrap": 8_000,
  sign: 2_000,
};

type PoolEvent =
  | { k: "tick"; member: PoolMember }
  | { k: "deliver"; m: Message }
  | { k: "fsync"; member: PoolMember; incarnation: number }
  | { k: "ownership-msg"; from: string; to: string; bytes: Uint8Array; kind: OwnershipMessage["kind"] }
  | { k: "hsm"; member: PoolMember; label: string; fn: () => void }
  | { k: "fault-start"; fault: PoolFault; id: number }
  | { k: "fault-end"; id: number }
  | ClientEvent
  | { k: "heal" }
  | { k: "liveness" }
  | { k: "workload-stop" }
  | { k: "actor"; fn: () => void };

const EVENT_CODES: Record<PoolEvent["k"], number> = {
  tick: 1,
  deliver: 2,
  fsync: 3,
  "ownership-msg": 4,
  hsm: 5,
  "fault-start": 6,
  "fault-end": 7,
  client: 8,
  "client-timeout": 9,
  heal: 10,
  liveness: 11,
  "workload-stop": 12,
  actor: 13,
};

const OWNERSHIP_MESSAGE_CODES: Record<OwnershipMessage["kind"], number> = {
  ownershipRequest: 1,
  ownershipResponse: 2,
  dekRequest: 3,
  dekResponse: 4,
  refused: 5,
};

export interface PoolClusterOptions {
  plan: PoolScenarioPlan;
  intensity: Intensity;
  durationUs: number;
  /** All faults heal here. */
  healAtUs: number;
  /** Liveness must hold this long after the heal; Infinity: no liveness check (short runs). */
  livenessBoundUs: number;
  /** Clients stop issuing operations here, so the end state is quiet. */
  workloadStopUs: number;
  unsafeMode?: PoolUnsafeMode;
  /** A deliberately wrong healing controller (healing self-test). */
  healingUnsafeMode?: HealingUnsafeMode | undefined;
  transcript?: (line: string) => void;
}

export interface PoolStats {
  events: number;
  eventsByKind: Record<PoolEvent["k"], number>;
  raftMessagesSent: number;
  ownershipMessagesSent: number;
  hsmCalls: number;
  hsmFaults: number;
  crashes: number;
  restarts: number;
  pauses: number;
  leaderChanges: number;
  genesisProposals: number;
  /** Restarts of a primary from its provisional checkpoint (Genesis proposed, outcome unknown). */
  provisionalResumes: number;
  highestCommit: number;
  opsIssued: number;
  /** Creates and deletes acknowledged. */
  writesAcked: number;
  /** Gets and signs answered. */
  readsChecked: number;
  opsRefused: number;
  /** Refused with OwnershipPending: the member did not hold the pool's ownership yet. */
  refusedOwnershipPending: number;
  opsUnknown: number;
  /** Operations the linearizability check placed. */
  opsLinearized: number;
  faultsApplied: number;
}

function emptyStats(): PoolStats {
  const eventsByKind = Object.fromEntries(Object.keys(EVENT_CODES).map((k) => [k, 0])) as Record<
    PoolEvent["k"],
    number
  >;
  return {
    events: 0,
    eventsByKind,
    raftMessagesSent: 0,
    ownershipMessagesSent: 0,
    hsmCalls: 0,
    hsmFaults: 0,
    crashes: 0,
    restarts: 0,
    pauses: 0,
    leaderChanges: 0,
    genesisProposals: 0,
    provisionalResumes: 0,
    highestCommit: 0,
    opsIssued: 0,
    writesAcked: 0,
    readsChecked: 0,
    opsRefused: 0,
    refusedOwnershipPending: 0,
    opsUnknown: 0,
    opsLinearized: 0,
    faultsApplied: 0,
  };
}

export class PoolCluster {
  readonly queue = new EventQueue<PoolEvent>();
  readonly trace = new TraceHash();
  readonly transcript: Transcript;
  readonly raftChecker = new RaftChecker();
  readonly fabric = new SimHsmFabric();
  readonly checker: PoolChecker;
  readonly members = new Map<NodeId, PoolMember>();
  readonly clients: ClientActor;
  readonly stats = emptyStats();
  private readonly memberNumber = new Map<NodeId, number>();
  private readonly network: Network;
  private readonly nemesis: Nemesis;
  private readonly tickPrng: Prng;
  private readonly hsmPrng: Prng;
  private readonly tickUs = new Map<NodeId, number>();
  private armedOnGenesis: { fault: PoolFault; id: number }[] = [];
  private armedOnElection: { fault: PoolFault; id: number }[] = [];
  private healedAtUs: number | undefined;
  private readId = 0;
  /** Who proposed a Genesis, in order (scenario tests classify runs by it). */
  readonly genesisProposers: string[] = [];
  /** The HFC and its fabric, in scenarios with healing (plan.healing). */
  readonly healing: PoolHealing | null;
  private readonly spawn: (id: string, conf: ConfState) => PoolMember;

  constructor(
    prng: Prng,
    private readonly options: PoolClusterOptions,
  ) {
    const { plan } = options;
    this.transcript = new Transcript(options.transcript !== undefined, options.transcript);
    this.network = new Network(prng.split("network"), DEFAULT_LINK);
    this.nemesis = new Nemesis(this.network, prng.split("faults"), options.intensity, this.nemesisHost());
    this.clients = new ClientActor(this.clientWorld(), prng.split("workload"), this.stats);
    this.tickPrng = prng.split("ticks");
    this.hsmPrng = prng.split("hsm-latency");
    this.checker = new PoolChecker(POOL_ID, this.fabric);
    if (options.unsafeMode === "divergentDek") this.fabric.corruptNextDekImport = true;
    const tuning: RaftTuning = {
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: HEARTBEAT_TICKS,
      preVote: plan.preVote,
      checkQuorum: plan.checkQuorum,
      maxSizePerMsgBytes: undefined,
      maxInflightMsgs: undefined,
    };
    const voters = Array.from({ length: MEMBERS }, (_, i) => `n${i + 1}`);
    const nodePrng = prng.split("nodes");
    const hsmPrng = prng.split("hsm");
    const memberPrng = prng.split("members");
    const nodeHost = this.nodeHost();
    const memberHost = this.memberHost();
    this.spawn = (id, conf) => {
      const fsyncDelay = (p: Prng) => 100 + Math.round(p.exponential(900));
      // No log compaction: SimRaftNode's snapshots carry only its own KV state, so the
      // key store is rebuilt by replaying the WAL (see README).
      const raft = new SimRaftNode(id, conf, nodePrng.split(id), tuning, null, nodeHost, fsyncDelay);
      const partition = new SimPartition(id, this.fabric, hsmPrng.split(id));
      const member = new PoolMember(id, raft, partition, memberHost, memberPrng.split(id));
      this.members.set(id, member);
      this.memberNumber.set(id, Number(id.slice(1)));
      this.tickUs.set(id, Math.round(POOL_TICK_US * (0.99 + 0.02 * this.tickPrng.float())));
      return member;
    };
    for (const id of voters) this.spawn(id, { voters, learners: [] });
    this.healing = plan.healing
      ? new PoolHealing(
          this.healingCluster(),
          prng.split("healing"),
          voters,
          plan.placementSeed ?? 0,
          options.healingUnsafeMode,
        )
      : null;
  }

  /** What the healing fabric may do to the world (healing-world.ts). */
  private healingCluster(): HealingCluster {
    return {
      members: this.members,
      nowUs: () => this.queue.now,
      after: (delayUs, fn) => this.queue.after(delayUs, { k: "actor", fn }),
      sendControl: (from, to, deliver) => {
        for (const at of this.network.send(from, to, this.queue.now)) {
          this.queue.at(at, {
            k: "actor",
            fn: () => {
              if (!this.network.isCut(from, to) && this.members.get(to)?.running) deliver();
            },
          });
        }
      },
      addMember: (id, conf) => {
        const member = this.spawn(id, conf);
        member.start();
        this.queue.after(this.tickPrng.int(this.tickUs.get(id)!) + 1, { k: "tick", member });
        return member;
      },
      crash: (id, prng) => {
        const m = this.member(id);
        if (!m.crash(prng, 0)) return false;
        this.stats.crashes++;
        return true;
      },
      restart: (id) => this.restart(this.member(id), true),
      leader: () => this.leader(),
      firstCreateAckedSince: (us) => this.clients.firstCreateAckedSince(us),
      trace: (n) => this.trace.add(n),
      log: (make) => this.log(make),
    };
  }

  get nowUs(): number {
    return this.queue.now;
  }

  log(make: () => string): void {
    this.transcript.line(() => `t=${formatSimTime(this.queue.now)} ${make()}`);
  }

  private num(id: string): number {
    return this.memberNumber.get(id) ?? 0;
  }

  /** Schedule the plan and start the members and clients. */
  start(): void {
    const { plan, healAtUs, livenessBoundUs, durationUs, workloadStopUs } = this.options;
    for (const member of this.members.values()) {
      member.start();
      this.queue.after(this.tickPrng.int(this.tickUs.get(member.id)!) + 1, { k: "tick", member });
    }
    plan.faults.forEach((fault, id) => {
      if (fault.onGenesisProposed) this.armedOnGenesis.push({ fault, id });
      else if (fault.onElection) this.armedOnElection.push({ fault, id });
      else this.queue.at(fault.atUs, { k: "fault-start", fault, id });
    });
    this.clients.start();
    this.healing?.start();
    this.queue.at(healAtUs, { k: "heal" });
    const deadline = healAtUs + livenessBoundUs;
    if (deadline <= durationUs) this.queue.at(deadline, { k: "liveness" });
    if (workloadStopUs < durationUs) this.queue.at(workloadStopUs, { k: "workload-stop" });
  }

  /** Process events until simulated time passes durationUs; throws on a violated invariant. */
  run(): void {
    const end = this.options.durationUs;
    for (;;) {
      const t = this.queue.peekTime();
      if (t === undefined || t > end) break;
      const ev = this.queue.pop()!;
      this.stats.events++;
      this.stats.eventsByKind[ev.k]++;
      this.handle(ev);
    }
    this.finalChecks();
  }

  private handle(ev: PoolEvent): void {
    const tr = this.trace;
    tr.add(EVENT_CODES[ev.k]);
    tr.add(this.queue.now);
    switch (ev.k) {
      case "tick":
        tr.add(this.num(ev.member.id));
        ev.member.tick();
        this.healing?.onTick(ev.member);
        this.queue.after(this.tickUs.get(ev.member.id)!, ev);
        return;
      case "deliver":
        this.deliver(ev.m);
        return;
      case "fsync":
        tr.add(this.num(ev.member.id));
        ev.member.raft.fsyncDone(ev.incarnation);
        ev.member.syncLeader();
        return;
      case "ownership-msg":
        this.deliverOwnership(ev.from, ev.to, ev.bytes, ev.kind);
        return;
      case "hsm":
        tr.add(this.num(ev.member.id));
        tr.addString(ev.label);
        this.stats.hsmCalls++;
        this.log(() => `${ev.member.id} HSM ${ev.label.replace(/^hsm\./, "")} completes`);
        ev.fn();
        return;
      case "fault-start":
        tr.add(ev.id);
        this.startFault(ev.fault, ev.id);
        return;
      case "fault-end":
        tr.add(ev.id);
        this.nemesis.end(ev.id);
        return;
      case "client":
      case "client-timeout":
        this.clients.handle(ev);
        return;
      case "heal":
        this.healAll();
        return;
      case "liveness":
        this.checkLiveness();
        return;
      case "workload-stop":
        this.clients.stop();
        return;
      case "actor":
        ev.fn();
        return;
    }
  }

  // ---- Raft transport ----------------------------------------------------------------

  private sendRaft(m: Message): void {
    this.stats.raftMessagesSent++;
    if (!this.members.has(m.to)) return;
    const arrivals = this.network.send(m.from, m.to, this.queue.now);
    if (arrivals.length === 0) {
      this.log(() => `${m.from} -> ${m.to} ${describeMessage(m)} lost`);
      if (m.type === "MsgSnap") this.reportSnapshot(m, false);
      return;
    }
    for (const at of arrivals) this.queue.at(at, { k: "deliver", m: cloneMessage(m) });
  }

  private deliver(m: Message): void {
    const tr = this.trace;
    tr.add(this.num(m.from));
    tr.add(this.num(m.to));
    tr.add(MESSAGE_CODES[m.type]);
    tr.add(m.term);
    tr.add(m.index ?? 0);
    tr.add(m.entries?.length ?? 0);
    const target = this.members.get(m.to);
    if (this.network.isCut(m.from, m.to) || !target?.running) {
      if (m.type === "MsgSnap") this.reportSnapshot(m, false);
      return;
    }
    this.log(() => `${m.from} -> ${m.to} ${describeMessage(m)}`);
    target.raft.step(m);
    target.onRaftMessage(m.from);
    target.syncLeader();
    if (m.type === "MsgSnap") this.reportSnapshot(m, true);
  }

  private reportSnapshot(m: Message, ok: boolean): void {
    const sender = this.members.get(m.from)?.raft;
    if (sender?.state !== "up" || !sender.raw) return;
    sender.act((raw) => raw.reportSnapshot(m.to, ok));
  }

  // ---- ownership transport (opaque HPM1 bytes over the simulated network) -------------

  private sendOwnership(from: PoolMember, to: string, message: OwnershipMessage): void {
    this.stats.ownershipMessagesSent++;
    const bytes = encodeMessage(message);
    if (!this.members.has(to)) return;
    for (const at of this.network.send(from.id, to, this.queue.now)) {
      this.queue.at(at, { k: "ownership-msg", from: from.id, to, bytes, kind: message.kind });
    }
  }

  private deliverOwnership(
    from: string,
    to: string,
    bytes: Uint8Array,
    kind: OwnershipMessage["kind"],
  ): void {
    this.trace.add(this.num(from));
    this.trace.add(this.num(to));
    this.trace.add(OWNERSHIP_MESSAGE_CODES[kind]);
    const target = this.members.get(to);
    if (this.network.isCut(from, to) || !target?.running) return;
    this.log(() => `${from} -> ${to} ${kind} (${bytes.length} bytes)`);
    target.receiveOwnership(from, bytes);
  }

  // ---- hosts ----------------------------------------------------------------------------

  private member(id: NodeId): PoolMember {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  private nodeHost(): NodeHost {
    return {
      checker: this.raftChecker,
      send: (m) => this.sendRaft(m),
      scheduleFsync: (node, delayUs) =>
        this.queue.after(delayUs, {
          k: "fsync",
          member: this.member(node.id),
          incarnation: node.incarnation,
        }),
      onApplied: (node, e: Entry) => {
        if (e.index > this.stats.highestCommit) this.stats.highestCommit = e.index;
        this.member(node.id).onApplied(e);
      },
      onConfApplied: (node, cc: ConfChange) => this.member(node.id).onConfApplied(cc),
      onRoleChange: (node, role: Role, term) => this.onRoleChange(node, role, term),
      onReadServed: (node, readId) => this.member(node.id).keys?.onReadServed(readId),
      log: (make) => this.log(make),
    };
  }

  private memberHost(): MemberHost {
    return {
      poolId: POOL_ID,
      unsafe: this.options.unsafeMode,
      retryTicks: OWNERSHIP_RETRY_TICKS,
      nowUs: () => this.queue.now,
      nowMs: () => simWallMs(this.queue.now),
      at: (atUs, label, member, fn) => this.queue.at(atUs, { k: "hsm", member, label, fn }),
      hsmLatencyUs: (label) => Math.round((HSM_LATENCY_US[label] ?? 2_000) * (0.5 + this.hsmPrng.float())),
      hsmFault: () => {
        const p = this.healedAtUs === undefined ? this.options.plan.hsmFaultProbability : 0;
        if (!this.hsmPrng.chance(p)) return null;
        this.stats.hsmFaults++;
        return "injected transient device fault";
      },
      sendOwnership: (from, to, message) => this.sendOwnership(from, to, message),
      ownershipChanged: () => this.checker.checkOwnership(this.views()),
      resumed: (_member, phase) => {
        if (phase === "ownershipProposed") this.stats.provisionalResumes++;
      },
      genesisProposed: (member, genesis) => this.onGenesisProposed(member, genesis),
      applied: (_member, index, outcome: ApplyOutcome) =>
        this.checker.observeApplied(index, outcome, this.queue.now),
      served: (member, op) => this.checker.served(member, op),
      complete: (op, result) => this.clients.settle(op, "ok", result, null),
      refuse: (op, code, message) => this.clients.settle(op, "refused", null, `${code}: ${message}`),
      unknown: (op, why) => this.clients.settle(op, "unknown", null, why),
      nextReadId: () => ++this.readId,
      log: (make) => this.log(make),
    };
  }

  private views(): MemberView[] {
    return [...this.members.values()];
  }

  private onRoleChange(node: SimRaftNode, role: Role, term: number): void {
    this.log(() => `${node.id} is now ${role} (term ${term})`);
    if (role !== "leader") return;
    this.stats.leaderChanges++;
    const armed = this.armedOnElection;
    this.armedOnElection = [];
    for (const { fault, id } of armed) {
      this.queue.after(fault.onElection?.delayUs ?? 0, { k: "fault-start", fault, id });
    }
  }

  private onGenesisProposed(member: PoolMember, genesis: GenesisCommand): void {
    this.checker.checkGenesisRecorded(member.id, genesis, member.savedCheckpoint());
    this.stats.genesisProposals++;
    this.genesisProposers.push(member.id);
    this.log(() => `${member.id} proposes Genesis`);
    const armed = this.armedOnGenesis;
    this.armedOnGenesis = [];
    for (const { fault, id } of armed) {
      const aimed: PoolFault = {
        ...fault,
        action: { ...fault.action, target: { node: member.id } } as Fault["action"],
      };
      this.queue.after(fault.onGenesisProposed?.delayUs ?? 0, { k: "fault-start", fault: aimed, id });
    }
  }

  /** The running primary with the highest term, if any. */
  leader(): PoolMember | null {
    let best: PoolMember | null = null;
    for (const m of this.members.values()) {
      const r = m.raft;
      if (r.state === "up" && r.role === "leader" && (!best || r.term > best.raft.term)) best = m;
    }
    return best;
  }

  // ---- clients ----------------------------------------------------------------------

  private clientWorld(): ClientWorld {
    return {
      nowUs: () => this.queue.now,
      after: (delayUs, event) => this.queue.after(delayUs, event),
      reachable: () => [...this.members.values()].filter((m) => m.running).map((m) => m.id),
      leader: () => this.leader()?.id ?? null,
      send: (op) => {
        this.trace.add(this.num(op.member));
        this.member(op.member).request(op);
      },
      trace: (n) => this.trace.add(n),
      log: (make) => this.log(make),
    };
  }

  // ---- faults -------------------------------------------------------------------------

  private startFault(fault: PoolFault, id: number): void {
    if (this.healedAtUs !== undefined) return;
    const what = this.nemesis.start(fault, id);
    if (what === null) {
      this.log(() => `fault #${id} (${describeFault(fault)}) skipped: nothing to hit`);
      return;
    }
    this.stats.faultsApplied++;
    this.log(() => `fault #${id} starts: ${what} for ${formatSimTime(fault.durationUs)}`);
    this.queue.after(fault.durationUs, { k: "fault-end", id });
  }

  private nemesisHost(): NemesisHost {
    return {
      members: () => [...this.members.keys()].filter((id) => this.healing?.faultable(id) ?? true),
      leader: () => this.leader()?.id ?? null,
      crash: (id, prng, corruptProbability) => {
        const m = this.member(id);
        if (!m.crash(prng, corruptProbability)) return false;
        this.stats.crashes++;
        this.log(() => `${id} process crashes (its HSM partition and ownership checkpoint survive)`);
        return true;
      },
      restart: (id) => this.restart(this.member(id)),
      pause: (id) => {
        if (!this.member(id).pause()) return false;
        this.stats.pauses++;
        return true;
      },
      resume: (id) => this.member(id).resume(),
      kill: (id, prng) => this.healing?.kill(id, prng) ?? false,
      loseServer: (id) => this.healing?.loseServer(id) ?? false,
      crashSupervisor: () => this.healing?.crashSupervisor() ?? false,
      restartSupervisor: () => this.healing?.restartSupervisor(),
    };
  }

  /** `bySupervisor`: the HFC restarts it; anyone else may not restart a member the HFC keeps down. */
  private restart(m: PoolMember, bySupervisor = false): void {
    if (m.raft.state !== "down") return;
    if (!bySupervisor && this.healing?.staysDown(m.id)) return;
    this.stats.restarts++;
    m.restart();
  }

  private healAll(): void {
    this.log(
      () =>
        "all faults heal: partitions and link faults cleared, crashed members restart, paused ones resume",
    );
    this.healedAtUs = this.queue.now;
    this.armedOnElection = [];
    this.armedOnGenesis = [];
    this.nemesis.healAll();
    for (const m of this.members.values()) {
      // With an HFC, restarting crashed members is its job (the healed invariant checks it did).
      if (m.raft.state === "down" && !this.healing) this.restart(m);
      else if (m.raft.state === "paused") m.resume();
    }
  }

  // ---- liveness and the end of the run ------------------------------------------------

  private checkLiveness(): void {
    if (this.healing) {
      const ok = this.healing.checkHealed(this.healedAtUs ?? 0, this.options.livenessBoundUs);
      this.log(() => ok);
      return;
    }
    const bound = formatSimTime(this.options.livenessBoundUs);
    const fail = (message: string): never => {
      throw new PoolInvariantViolation("liveness", `${message} ${bound} after the last fault healed`);
    };
    const leader = this.leader();
    if (!leader?.store) {
      fail("no primary");
      return;
    }
    for (const m of this.members.values()) {
      if (!holdsOwnership(m.ownership)) {
        fail(`${m.id} does not hold the pool's ownership (phase ${m.ownership?.phase ?? "down"})`);
      }
    }
    const synced = new Set(leader.store.syncedMembers().map((s) => s.memberId));
    const missing = [...this.members.keys()].filter((id) => !synced.has(id));
    if (missing.length > 0) fail(`the key store does not record ${missing.join(", ")} as synced`);
    const firstAck = this.clients.firstCreateAckedSince(this.healedAtUs ?? 0);
    if (firstAck === undefined) {
      fail("no create issued after the heal was acknowledged");
      return;
    }
    this.log(
      () =>
        `liveness ok: primary ${leader.id}, every member synced, first create after the heal acknowledged at ${formatSimTime(firstAck)}`,
    );
  }

  private finalChecks(): void {
    const leader = this.leader();
    const livenessChecked = this.options.healAtUs + this.options.livenessBoundUs <= this.options.durationUs;
    const views: MemberView[] = leader ? [leader] : [];
    for (const m of this.members.values()) if (m !== leader && holdsOwnership(m.ownership)) views.push(m);
    this.checker.finalCheck(this.clients.ops, views, livenessChecked);
    this.stats.opsLinearized = this.checker.opsChecked;
  }
}
