import type { Prng } from "@hsmpool/faults";
import { DEFAULT_RAFT_TIMING, isHfcVariant } from "@hsmpool/hfc";
import {
  isShellVariant,
  type KeyService,
  type NodeConfig,
  type NodeObserver,
  type ShellVariant,
} from "@hsmpool/node";
import type { ApplyOutcome, GenesisCommand } from "@hsmpool/pool";
import type { Message, NodeId, Role } from "@hsmpool/raft";
import { pino } from "pino";
import { describeFault, type Fault, type Intensity } from "../faults.js";
import { Nemesis, type NemesisHost } from "../nemesis.js";
import { DEFAULT_LINK, Network } from "../network.js";
import { type Digest, EMPTY_DIGEST } from "../raft/digest.js";
import { MESSAGE_CODES } from "../raft/format.js";
import { InvariantViolation, RaftChecker } from "../raft/invariants.js";
import { EventQueue, formatSimTime } from "../scheduler.js";
import { TraceHash, Transcript } from "../trace.js";
import { holdsOwnership, type MemberView, PoolChecker, PoolInvariantViolation } from "./checker.js";
import { ClientActor, type ClientEvent, type ClientWorld } from "./clients.js";
import { type HealingCluster, PoolHealing } from "./healing-world.js";
import { type MemberHost, PoolMember, simWallMs } from "./member.js";
import type { PoolFault, PoolScenarioPlan } from "./scenarios.js";
import type { ShellEventKind, SimProcess } from "./shell/process.js";
import { type Endpoint, type HsmModel, type NetWorld, SimServer } from "./shell/server.js";
import { SimDiskFiles } from "./shell/storage.js";
import { SimHsmFabric, SimPartition } from "./sim-hsm.js";
import type { PoolUnsafeMode } from "./unsafe.js";

/**
 * The pool harness: one run's event queue, network, three members, clients, fault
 * schedule and checkers. It is the "world": it decides when things happen and
 * delivers what members send; the members run the shipped node (member.ts), whose
 * every timer, disk write, HSM call and message is an event here.
 *
 * Actors are kept apart so more can join (the next one: a healing controller that
 * replaces lost members): members react to events, clients issue operations, the
 * Nemesis applies faults through NemesisHost, and the checkers only observe.
 */

export const POOL_ID = "sim-pool";
const MEMBERS = 3;

/** Mean HSM latency per session call (the device serves one call at a time). */
const HSM_LATENCY_US: Record<string, number> = {
  zeroize: 10_000,
  initialize: 10_000,
  login: 1_000,
  generateKey: 8_000,
  sign: 2_000,
  exportForTransfer: 3_000,
  importFromTransfer: 3_000,
  exportWrapped: 1_000,
  importWrapped: 1_000,
  getTransferPublicKey: 500,
  getPublicJwk: 500,
  getHandle: 200,
  deleteKey: 1_000,
  encrypt: 150,
  decrypt: 150,
};

const SILENT = pino({ level: "silent" });
const SHELL_CODES: Record<ShellEventKind, number> = { timer: 1, io: 2, hsm: 3, net: 4 };

type PoolEvent =
  | { k: "shell"; kind: ShellEventKind; member: string; fn: () => void; dropped: (() => boolean) | undefined }
  | { k: "fault-start"; fault: PoolFault; id: number }
  | { k: "fault-end"; id: number }
  | ClientEvent
  | { k: "heal" }
  | { k: "liveness" }
  | { k: "workload-stop" }
  | { k: "actor"; fn: () => void };

const EVENT_CODES: Record<PoolEvent["k"], number> = {
  shell: 1,
  "fault-start": 6,
  "fault-end": 7,
  client: 8,
  "client-timeout": 9,
  heal: 10,
  liveness: 11,
  "workload-stop": 12,
  actor: 13,
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

/** A founding or joining member's node config (addresses name members on the simulated network). */
export function simNodeConfig(
  id: string,
  serverId: string,
  mode: "bootstrap" | "join",
  peers: readonly string[],
  replaces: string | null,
): NodeConfig {
  return {
    nodeId: id,
    poolId: POOL_ID,
    mode,
    recover: false,
    fabricDir: "/sim/fabric",
    serverId,
    partition: 0,
    bundleDir: "/sim/bundle",
    stateDir: `/sim/${id}/state`,
    peerListen: `${id}.sim:7001`,
    dataListen: `${id}.sim:7002`,
    peers: peers.filter((p) => p !== id).map((p) => ({ id: p, address: `${p}.sim:7001` })),
    hfcAddress: "hfc.sim:7000",
    fabricCaCertPath: "/sim/fabric/ca.pem",
    // The shipped timing (what the HFC writes into every config it builds): the simulator
    // runs the node as it runs in production, elections and heartbeats included.
    ...DEFAULT_RAFT_TIMING,
    // No log compaction: the key store is rebuilt by replaying the WAL (as before).
    snapshotEveryEntries: 1_000_000_000,
    replaces,
    minPeerSvn: null,
    joinTimeoutMs: 120_000,
    identity: null,
  };
}

/** The pool's snapshots hold key-store state: digest the bytes (all founding snapshots are equal). */
function poolSnapshotDigest(data: Uint8Array, index: number): { applied: number; digest: Digest } {
  if (data.length === 0) return { applied: index, digest: EMPTY_DIGEST };
  let a = 0x811c9dc5 | 0;
  let b = index | 0;
  for (let i = 0; i < data.length; i++) {
    a = Math.imul(a ^ (data[i] as number), 0x01000193);
    b = Math.imul(b ^ (data[i] as number), 0x5bd1e995);
  }
  return { applied: index, digest: { a, b } };
}

export class PoolCluster {
  readonly queue = new EventQueue<PoolEvent>();
  readonly trace = new TraceHash();
  readonly transcript: Transcript;
  readonly raftChecker = new RaftChecker(poolSnapshotDigest);
  readonly fabric = new SimHsmFabric();
  readonly checker: PoolChecker;
  readonly members = new Map<NodeId, PoolMember>();
  readonly clients: ClientActor;
  readonly stats = emptyStats();
  private readonly memberNumber = new Map<NodeId, number>();
  private readonly network: Network;
  private readonly nemesis: Nemesis;
  private readonly hsmPrng: Prng;
  private readonly endpoints = new Map<NodeId, Endpoint>();
  private armedOnGenesis: { fault: PoolFault; id: number }[] = [];
  private armedOnElection: { fault: PoolFault; id: number }[] = [];
  private armedOnAppendAck: { fault: PoolFault; id: number }[] = [];
  private healedAtUs: number | undefined;
  /** The first invariant violation (a checker may fire inside the node, which would swallow the throw). */
  private violation: Error | null = null;
  private readonly roles = new Map<NodeId, Role>();
  /** Who proposed a Genesis, in order (scenario tests classify runs by it). */
  readonly genesisProposers: string[] = [];
  /** The HFC and its fabric, in scenarios with healing (plan.healing). */
  readonly healing: PoolHealing | null;
  private readonly spawn: (id: string, config: NodeConfig, rackId: string) => PoolMember;
  readonly world: NetWorld;
  private readonly variants: ReadonlySet<ShellVariant>;

  constructor(
    prng: Prng,
    private readonly options: PoolClusterOptions,
  ) {
    const { plan } = options;
    this.transcript = new Transcript(options.transcript !== undefined, options.transcript);
    this.network = new Network(prng.split("network"), DEFAULT_LINK);
    this.nemesis = new Nemesis(this.network, prng.split("faults"), options.intensity, this.nemesisHost());
    this.clients = new ClientActor(this.clientWorld(), prng.split("workload"), this.stats);
    this.hsmPrng = prng.split("hsm-latency");
    this.checker = new PoolChecker(POOL_ID, this.fabric);
    const unsafe = options.unsafeMode;
    if (unsafe === "divergentDek") this.fabric.corruptNextDekImport = true;
    this.variants = new Set(unsafe && isShellVariant(unsafe) ? [unsafe] : []);
    this.world = this.netWorld();
    const voters = Array.from({ length: MEMBERS }, (_, i) => `n${i + 1}`);
    const hsmPrng = prng.split("hsm");
    const diskPrng = prng.split("disks");
    const memberPrng = prng.split("members");
    const memberHost = this.memberHost();
    const hsmModel = this.hsmModel();
    this.spawn = (id, config, rackId) => {
      const partition = new SimPartition(id, this.fabric, hsmPrng.split(id));
      const server = new SimServer(id, config.serverId, rackId, partition, this.world, hsmModel);
      const disk = new SimDiskFiles(this.world, id, diskPrng.split(id));
      const member = new PoolMember(id, server, disk, config, memberHost, memberPrng.split(id));
      this.members.set(id, member);
      this.memberNumber.set(id, Number(id.slice(1)));
      return member;
    };
    // With an HFC, the HFC launches the founders from the configs it writes.
    if (!plan.healing)
      voters.forEach((id, i) => {
        this.spawn(id, simNodeConfig(id, `rack${i + 1}-s1`, "bootstrap", voters, null), `rack${i + 1}`);
      });
    this.healing = plan.healing
      ? new PoolHealing(this.healingCluster(), prng.split("healing"), {
          poolId: POOL_ID,
          founders: voters,
          placementSeed: plan.placementSeed ?? 0,
          timing: DEFAULT_RAFT_TIMING,
          variant: unsafe && isHfcVariant(unsafe) ? unsafe : undefined,
          operator: plan.operator ?? true,
        })
      : null;
  }

  /** What the healing fabric may do to the world (healing-world.ts). */
  private healingCluster(): HealingCluster {
    return {
      members: this.members,
      world: this.world,
      after: (delayUs, fn) => this.queue.after(delayUs, { k: "actor", fn }),
      addMember: (id, config, rackId) => {
        const member = this.spawn(id, config, rackId);
        member.start();
        return member;
      },
      crash: (id, prng) => {
        const m = this.member(id);
        if (!m.crash(prng, 0)) return false;
        this.stats.crashes++;
        return true;
      },
      restart: (id, config) => this.restart(this.member(id), config),
      leader: () => this.leader(),
      firstCreateAckedSince: (us) => this.clients.firstCreateAckedSince(us),
      failed: (e) => this.violated(e),
      loggerFor: (name) => this.loggerFor(name),
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
    for (const member of this.members.values()) member.start();
    plan.faults.forEach((fault, id) => {
      if (fault.onGenesisProposed) this.armedOnGenesis.push({ fault, id });
      else if (fault.onAppendAcked) this.armedOnAppendAck.push({ fault, id });
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

  /**
   * Process events until simulated time passes durationUs; throws on a violated
   * invariant. After each event every promise continuation it caused runs (the
   * shipped node is async) before the next event: the order stays a function of the seed.
   */
  async run(): Promise<void> {
    const end = this.options.durationUs;
    for (;;) {
      const t = this.queue.peekTime();
      if (t === undefined || t > end) break;
      const ev = this.queue.pop()!;
      if (moot(ev)) continue;
      this.stats.events++;
      this.stats.eventsByKind[ev.k]++;
      this.handle(ev);
      await settled();
      if (this.violation) throw this.violation;
    }
    this.finalChecks();
  }

  /** Records the first violation (thrown inside the node, it may have been caught there). */
  private violated(e: unknown): void {
    if (this.violation) return;
    this.violation =
      e instanceof PoolInvariantViolation || e instanceof InvariantViolation
        ? e
        : new PoolInvariantViolation(
            "no-crash",
            `no-crash: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
          );
  }

  /** Runs a checker inside node code: a violation is recorded before the node can swallow it. */
  private check(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.violated(e);
      throw e;
    }
  }

  private handle(ev: PoolEvent): void {
    const tr = this.trace;
    tr.add(EVENT_CODES[ev.k]);
    tr.add(this.queue.now);
    switch (ev.k) {
      case "shell":
        tr.add(SHELL_CODES[ev.kind]);
        tr.add(this.num(ev.member));
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

  // ---- the world the node seams run in -----------------------------------------------

  private netWorld(): NetWorld {
    const at = (
      atUs: number,
      kind: ShellEventKind,
      member: string,
      fn: () => void,
      dropped?: () => boolean,
    ) => this.queue.at(atUs, { k: "shell", kind, member, fn, dropped });
    return {
      nowUs: () => this.queue.now,
      wallMs: () => simWallMs(this.queue.now),
      at,
      send: (from, to, code, arrive) => {
        if (code < 100) this.stats.raftMessagesSent++;
        else this.stats.ownershipMessagesSent++;
        if (!this.members.has(to)) return false;
        const arrivals = this.network.send(from, to, this.queue.now);
        for (const t of arrivals)
          at(t, "net", to, () => {
            this.trace.add(this.num(from));
            this.trace.add(code);
            if (!this.network.isCut(from, to)) arrive();
          });
        return arrivals.length > 0;
      },
      connected: (from, to) => !this.network.isCut(from, to) && (this.members.get(to)?.running ?? false),
      endpoint: (id) => {
        const ep = this.endpoints.get(id);
        return ep?.proc.alive ? ep : null;
      },
      setEndpoint: (id, ep) => {
        if (ep) this.endpoints.set(id, ep);
        else this.endpoints.delete(id);
      },
      setKeyService: (id: string, proc: SimProcess, keys: KeyService | null) => {
        const m = this.members.get(id);
        if (m?.process === proc) m.keys = keys;
      },
      raftCode: (m: Message) => MESSAGE_CODES[m.type],
      log: (make) => this.log(make),
    };
  }

  private hsmModel(): HsmModel {
    return {
      latencyUs: (call) => Math.round((HSM_LATENCY_US[call] ?? 2_000) * (0.5 + this.hsmPrng.float())),
      fault: () => {
        const p = this.healedAtUs === undefined ? this.options.plan.hsmFaultProbability : 0;
        if (!this.hsmPrng.chance(p)) return null;
        this.stats.hsmFaults++;
        return "injected transient device fault";
      },
      completed: (member, call) => {
        this.stats.hsmCalls++;
        this.trace.addString(call);
        this.log(() => `${member} HSM ${call} completes`);
      },
    };
  }

  // ---- hosts ----------------------------------------------------------------------------

  private member(id: NodeId): PoolMember {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  private memberHost(): MemberHost {
    return {
      world: this.world,
      variants: this.variants,
      observerFor: (member) => this.observerFor(member),
      loggerFor: (member) => this.loggerFor(member.id),
      fatal: (member, error) => {
        this.log(() => `${member.id} cannot continue: ${String(error)}`);
        this.violated(error);
        member.crash(this.hsmPrng, 0);
      },
      complete: (op, result) => this.clients.settle(op, "ok", result, null),
      refuse: (op, code, message) => this.clients.settle(op, "refused", null, `${code}: ${message}`),
      unknown: (op, why) => this.clients.settle(op, "unknown", null, why),
      log: (make) => this.log(make),
    };
  }

  /** The checkers' view into one member's node (facts reported by the shipped code as they happen). */
  private observerFor(member: PoolMember): NodeObserver {
    const id = member.id;
    const raft = this.raftChecker;
    let term = 0;
    return {
      raftRecovered: (storage, hardState) => {
        term = hardState.term;
        this.check(() => raft.observeRecovered(id, storage, hardState));
      },
      raftPersisted: (rd) =>
        this.check(() => {
          if (rd.snapshot) raft.observeSnapshotInstall(id, rd.snapshot);
          if (rd.entries.length > 0) raft.observeAppend(id, rd.entries);
          if (rd.hardState) {
            term = rd.hardState.term;
            raft.observeCommit(id, rd.hardState.commit, rd.hardState.term);
          }
          const role = rd.softState?.role;
          if (role && role !== this.roles.get(id)) {
            this.roles.set(id, role);
            if (role === "leader") raft.observeBecameLeader(id, term);
            this.onRoleChange(id, role, term);
          }
        }),
      raftSent: (messages) =>
        this.check(() => {
          for (const m of messages) {
            raft.observeSent(m);
            if (m.type === "MsgAppResp" && !m.reject) this.onAppendAcked(id);
          }
        }),
      applied: (entry, outcome) =>
        this.check(() => {
          if (entry.index > this.stats.highestCommit) this.stats.highestCommit = entry.index;
          this.checker.observeApplied(entry.index, outcome, this.queue.now);
          if (outcome.kind === "genesisAccepted" || outcome.kind === "genesisIgnored")
            this.log(() => `${id} applies ${describeGenesisOutcome(outcome)} at index ${entry.index}`);
        }),
      proposed: (command) => {
        if (command.kind === "genesis") this.check(() => this.onGenesisProposed(member, command));
      },
      ownershipChanged: () => this.check(() => this.checker.checkOwnership(this.views())),
      serving: (op) => this.check(() => this.checker.served(member, op)),
    };
  }

  private views(): MemberView[] {
    return [...this.members.values()];
  }

  private onRoleChange(id: string, role: Role, term: number): void {
    this.log(() => `${id} is now ${role} (term ${term})`);
    if (role !== "leader") return;
    this.stats.leaderChanges++;
    const armed = this.armedOnElection;
    this.armedOnElection = [];
    for (const { fault, id: faultId } of armed) {
      this.queue.after(fault.onElection?.delayUs ?? 0, { k: "fault-start", fault, id: faultId });
    }
  }

  /** Fire the armed "crash right after an append acknowledgement" faults whose time has come. */
  private onAppendAcked(id: string): void {
    const now = this.queue.now;
    if (this.healedAtUs !== undefined || !this.armedOnAppendAck.some((a) => a.fault.atUs <= now)) return;
    const due = this.armedOnAppendAck.filter((a) => a.fault.atUs <= now);
    this.armedOnAppendAck = this.armedOnAppendAck.filter((a) => a.fault.atUs > now);
    for (const { fault, id: faultId } of due) {
      const aimed: PoolFault = {
        ...fault,
        action: { ...fault.action, target: { node: id } } as Fault["action"],
      };
      this.queue.after(fault.onAppendAcked?.delayUs ?? 0, { k: "fault-start", fault: aimed, id: faultId });
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
    let bestTerm = -1;
    for (const m of this.members.values()) {
      if (m.state !== "up") continue;
      const v = m.view();
      if (v?.role === "leader" && v.term > bestTerm) {
        best = m;
        bestTerm = v.term;
      }
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
        this.log(() => `${id} process crashes (its HSM partition and disk survive)`);
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

  /** With `config`, the HFC restarts it; anyone else may not restart a member the HFC keeps down. */
  private restart(m: PoolMember, config?: NodeConfig): void {
    if (m.state !== "down") return;
    if (!config && this.healing?.staysDown(m.id)) return;
    this.stats.restarts++;
    const saved = m.savedCheckpoint();
    if (saved?.phase === "ownershipProposed") this.stats.provisionalResumes++;
    m.start(config);
  }

  /** A process's log, into the transcript when there is one. */
  private loggerFor(name: string) {
    return this.options.transcript
      ? pino(
          { level: "debug", base: null, timestamp: false },
          { write: (line: string) => this.log(() => `${name} log ${line.trim()}`) },
        )
      : SILENT;
  }

  private healAll(): void {
    this.log(
      () =>
        "all faults heal: partitions and link faults cleared, crashed members restart, paused ones resume",
    );
    this.healedAtUs = this.queue.now;
    this.armedOnElection = [];
    this.armedOnGenesis = [];
    this.armedOnAppendAck = [];
    this.nemesis.healAll();
    for (const m of this.members.values()) {
      // With an HFC, restarting crashed members is its job (the healed invariant checks it did).
      if (m.state === "down" && !this.healing) this.restart(m);
      else if (m.state === "paused") m.resume();
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
    const leaderStore = leader?.store;
    if (!leader || !leaderStore) {
      fail("no primary");
      return;
    }
    for (const m of this.members.values()) {
      if (!holdsOwnership(m.ownership)) {
        fail(`${m.id} does not hold the pool's ownership (phase ${m.ownership?.phase ?? "down"})`);
      }
    }
    const synced = new Set(leaderStore.syncedMembers().map((s) => s.memberId));
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

function describeGenesisOutcome(
  o: Extract<ApplyOutcome, { kind: "genesisAccepted" } | { kind: "genesisIgnored" }>,
): string {
  return o.kind === "genesisAccepted"
    ? `Genesis by ${o.genesis.proposer} (the pool's owner root)`
    : `a later Genesis by ${o.proposer} (ignored${o.sameRoot ? ", same owner root" : ""})`;
}

/**
 * An event that can no longer do anything — a cleared timer, a dead process's timer, the
 * timeout of an operation already answered — is skipped unseen: no trace, no turn of the run loop.
 */
function moot(ev: PoolEvent): boolean {
  if (ev.k === "shell") return ev.dropped?.() === true;
  return ev.k === "client-timeout" && ev.op.status !== "pending";
}

/**
 * Resolves once every promise continuation queued so far (and those they queue) has run:
 * the microtask queues a tick behind everything already queued, and Node runs ticks only
 * when the microtask queue is empty. (setImmediate did the same through a whole event-loop
 * turn, 30-45 us a simulated event on a loaded machine; this costs about 2.)
 */
function settled(): Promise<void> {
  return new Promise((resolve) => queueMicrotask(() => process.nextTick(resolve)));
}
