import { fail, isHsmPoolError } from "@hsmpool/errors";
import type { Prng } from "@hsmpool/faults";
import type { InventoryRack } from "@hsmpool/healing";
import {
  ControlApi,
  type ControllerOptions,
  type HfcVariant,
  loadHealingState,
  Supervision,
} from "@hsmpool/hfc";
import { type NodeConfig, parseConfig } from "@hsmpool/node";
import { type MemberSpec, parsePoolSpec, runPaths } from "@hsmpool/wire";
import type { Logger } from "pino";
import { formatSimTime } from "../scheduler.js";
import { holdsOwnership, PoolInvariantViolation } from "./checker.js";
import type { PoolMember } from "./member.js";
import { SimPidTable, SimRunDir, simHfcSeams, simNodeAddresses } from "./shell/hfc.js";
import { type ShellWorld, SimProcess } from "./shell/process.js";
import { SIM_MRSIGNER, SIM_SVN } from "./shell/server.js";

/**
 * The fabric around a healing pool in the sim: servers in racks, which member runs
 * where, which servers are lost, and the SHIPPED HFC supervision and healing loop
 * (@hsmpool/hfc Supervision: supervisor, health poller, healing loop, healing store)
 * running as a simulated process through its seams (shell/hfc.ts). It launches the
 * founders, restarts killed processes, fences members of lost servers and launches
 * joiners (shipped nodes in join mode) on spare servers; it crashes and restarts from
 * its run dir. The cluster owns the members and the event queue; this class owns
 * everything healing adds, and the "healed" invariant.
 */

/** What the healing fabric needs from the cluster. */
export interface HealingCluster {
  readonly members: ReadonlyMap<string, PoolMember>;
  readonly world: ShellWorld;
  /** Run `fn` after `delayUs` (an actor event in the cluster's queue). */
  after(delayUs: number, fn: () => void): void;
  /** A blank member on a new server with its own fresh HSM partition and disk, started at once. */
  addMember(id: string, config: NodeConfig, rackId: string): PoolMember;
  crash(id: string, prng: Prng): boolean;
  /** Starts a down member again with `config`. */
  restart(id: string, config: NodeConfig): void;
  leader(): PoolMember | null;
  firstCreateAckedSince(us: number): number | undefined;
  /** The HFC failed in a way no fault explains (reported as a violation). */
  failed(error: unknown): void;
  loggerFor(name: string): Logger;
  log(make: () => string): void;
}

const RACKS = 6;
const SERVERS_PER_RACK = 2;
export const HEALING_INVENTORY: InventoryRack[] = Array.from({ length: RACKS }, (_, r) => ({
  id: `rack${r + 1}`,
  servers: Array.from({ length: SERVERS_PER_RACK }, (_, s) => ({ id: `rack${r + 1}-s${s + 1}` })),
}));
const RUN_DIR = "/sim/run";
const BUNDLE_DIR = "/sim/bundle";
/**
 * The HFC's health polling: its defaults, but a server counts as lost after 6 s of
 * silence instead of 30 s, so a loss late in the fault window heals within the run
 * (the healing scenario keeps pauses shorter: a longer one would be a second lost server).
 */
export const HEALING_HEALTH = { healthIntervalMs: 250, failureThreshold: 3, serverLostAfterMs: 6_000 };
/** The simulated fabric's CA issues nothing: its network is not TLS (the simulated control API never issues). */
const NO_CA = {
  issueNodeCert: () => fail("OperationNotAllowed", "the simulated fabric issues no certificates"),
  issueClientCert: () => fail("OperationNotAllowed", "the simulated fabric issues no certificates"),
};

/** One HFC process: the shipped supervision loop once booted, and its control API's operations (the operator's CLI). */
interface SimHfc {
  proc: SimProcess;
  supervision: Supervision | null;
  operator: ReturnType<ControlApi["handlers"]> | null;
}

/** The operator reports a lost server (`hsmpool kill --server`) this long after it went, at most (the HFC may notice first). */
const REPORT_DELAY_MAX_US = 12_000_000;

function founder(id: string, rack: number): MemberSpec {
  return {
    id,
    serverId: `rack${rack}-s1`,
    rackId: `rack${rack}`,
    partition: 0,
    ...simNodeAddresses(id),
    bundleDir: BUNDLE_DIR,
    lifecycle: "active",
    mode: "bootstrap",
    replaces: null,
    joinPeers: [],
    minPeerSvn: null,
    svn: SIM_SVN,
    mrsigner: SIM_MRSIGNER,
    replacedBy: null,
    wasVoter: true,
  };
}

const rackOf = (serverId: string) =>
  HEALING_INVENTORY.find((r) => r.servers.some((s) => s.id === serverId))?.id;

export interface HealingStats {
  kills: number;
  serversLost: number;
  hfcCrashes: number;
  launches: number;
  joinersStarted: number;
}

export interface PoolHealingOptions {
  poolId: string;
  founders: readonly string[];
  placementSeed: number;
  /** Raft timing the HFC writes into node configs. */
  timing: ControllerOptions["timing"];
  /** A deliberately broken HFC shell (self-tests). */
  variant: HfcVariant | undefined;
  /** Whether an operator runs `hsmpool kill` and reports lost servers (else the HFC notices everything itself). */
  operator: boolean;
}

export class PoolHealing {
  private hfc: SimHfc | null = null;
  private hfcIncarnation = 0;
  private readonly runDir = new SimRunDir();
  private readonly pids = new SimPidTable();
  /** Where each member runs (from its launch config): the racks invariant reads this, not the HFC's book. */
  private readonly placement = new Map<string, { serverId: string; rackId: string }>();
  private readonly lost: string[] = [];
  /** Lost servers the operator has reported (again to every HFC that boots). */
  private readonly reported: string[] = [];
  /** Members the HFC stopped or fenced: faults leave them alone. */
  private readonly stopped = new Set<string>();
  readonly stats: HealingStats = { kills: 0, serversLost: 0, hfcCrashes: 0, launches: 0, joinersStarted: 0 };

  constructor(
    private readonly cluster: HealingCluster,
    private readonly prng: Prng,
    private readonly options: PoolHealingOptions,
  ) {}

  /** The HFC's healing book (null while it is down or booting). */
  get book() {
    return this.hfc?.supervision?.ctx.healing ?? null;
  }

  start(): void {
    this.bootHfc();
  }

  // ---- Nemesis host parts ------------------------------------------------------------

  /** Members faults may hit: running members the HFC still looks after. */
  faultable(id: string): boolean {
    return !this.stopped.has(id) && !this.isLost(id);
  }

  /** With an HFC, only the HFC restarts node processes (a crash's end restarts nothing). */
  staysDown(_id: string): boolean {
    return true;
  }

  /** The process dies: half the time by the operator's `hsmpool kill` (the HFC's control API), else on its own. */
  kill(id: string, prng: Prng): boolean {
    const operator = this.options.operator ? this.hfc?.operator : undefined;
    if (operator && prng.chance(0.5)) {
      const proc = this.cluster.members.get(id)?.process;
      if (!proc) return false;
      this.cluster.log(() => `operator runs hsmpool kill ${id} --signal SIGKILL`);
      operator
        .kill(id, "SIGKILL")
        .catch((e: unknown) => this.cluster.log(() => `hsmpool kill refused: ${e}`));
      if (proc.alive) return false;
    } else if (!this.cluster.crash(id, prng)) return false;
    this.stats.kills++;
    this.cluster.log(() => `${id} process is killed (its supervisor must restart it)`);
    return true;
  }

  /**
   * Lose `id`'s server for good. The fault model keeps one server failure at a time:
   * a loss is skipped unless the pool has three running voters and no earlier loss
   * pending (two voters lost at once would leave no quorum to heal with). The HFC
   * notices by itself (missed health checks) or when the operator reports it.
   */
  loseServer(id: string): boolean {
    const leader = this.cluster.leader();
    if (!leader) return false;
    const conf = leader.view()?.conf;
    if (!conf) return false;
    const healthy =
      conf.voters.length === 3 &&
      conf.learners.length === 0 &&
      conf.voters.every((v) => this.cluster.members.get(v)?.running && !this.isLost(v));
    if (!healthy || !conf.voters.includes(id)) return false;
    const where = this.placement.get(id);
    if (!where) return false;
    this.lost.push(where.serverId);
    this.stats.serversLost++;
    this.cluster.crash(id, this.prng);
    this.cluster.log(() => `server ${where.serverId} (${id}) is lost with its disk`);
    if (this.options.operator)
      this.cluster.after(this.prng.int(REPORT_DELAY_MAX_US), () => {
        this.reported.push(where.serverId);
        this.reportLostServers();
      });
    return true;
  }

  crashSupervisor(): boolean {
    if (!this.hfc) return false;
    this.hfc.proc.kill();
    this.hfc = null;
    this.stats.hfcCrashes++;
    this.cluster.log(() => "HFC crashes (its nodes keep running; its run dir survives)");
    return true;
  }

  restartSupervisor(): void {
    if (this.hfc) return;
    this.cluster.log(() => "HFC restarts from its run dir");
    this.bootHfc();
  }

  private isLost(id: string): boolean {
    const where = this.placement.get(id);
    return where !== undefined && this.lost.includes(where.serverId);
  }

  // ---- the HFC process ---------------------------------------------------------------

  /** Starts an HFC process: the shipped Supervision, resumed from the run dir (a new pool's the first time). */
  private bootHfc(): void {
    this.hfcIncarnation++;
    const proc = new SimProcess("hfc", this.hfcIncarnation);
    const hfc: SimHfc = { proc, supervision: null, operator: null };
    this.hfc = hfc;
    const seams = simHfcSeams(this.cluster.world, proc, this.runDir, this.pids, this.nodeHost());
    const paths = runPaths(RUN_DIR);
    const log = this.cluster.loggerFor("hfc");
    const saved = this.runDir.read(paths.poolJson);
    const members = saved
      ? parsePoolSpec(RUN_DIR, JSON.parse(saved)).members
      : this.options.founders.map((id, i) => founder(id, i + 1));
    const boot = async () => {
      const { healing } = await loadHealingState(paths, seams.files, members);
      const supervision = new Supervision({
        opts: {
          runDir: RUN_DIR,
          fabricDir: "/sim/fabric",
          nodeMain: "/sim/node/main.js",
          bundleDir: BUNDLE_DIR,
          health: HEALING_HEALTH,
          timing: this.options.timing,
          logger: log,
        },
        paths,
        fabricDir: "/sim/fabric",
        pool: { poolId: this.options.poolId, placementSeed: this.options.placementSeed, createdMs: 0 },
        healing,
        inventory: HEALING_INVENTORY,
        log,
        seams,
        ...(this.options.variant ? { variants: new Set([this.options.variant]) } : {}),
      });
      // The address its control API would listen on (the nodes' configs name it).
      supervision.ctx.controlAddress = "hfc.sim:7000";
      hfc.supervision = supervision;
      hfc.operator = new ControlApi(supervision.ctx, NO_CA, () => {}).handlers();
      await supervision.takeOver();
      supervision.startPolling();
      this.reportLostServers();
    };
    proc.deliver(() => {
      boot().catch((e: unknown) => {
        if (proc.alive) this.cluster.failed(e);
      });
    });
  }

  /** The operator's `hsmpool kill --server` for every lost server the HFC does not know yet (as its control API does). */
  private reportLostServers(): void {
    const ctx = this.hfc?.supervision?.ctx;
    const operator = this.hfc?.operator;
    if (!ctx || !operator || !this.hfc?.proc.alive) return;
    for (const serverId of this.reported) {
      if (ctx.healing.lostServers.some((s) => s.serverId === serverId)) continue;
      this.cluster.log(() => `operator runs hsmpool kill --server ${serverId}`);
      operator.loseServer(serverId).catch((e: unknown) => {
        // The HFC may have declared it lost by itself a moment earlier: the CLI then says so.
        if (isHsmPoolError(e, "Conflict")) this.cluster.log(() => `hsmpool kill --server: ${e.message}`);
        else this.cluster.failed(e);
      });
    }
  }

  /** The simulated servers as the HFC's launcher and signals reach them. */
  private nodeHost() {
    const c = this.cluster;
    return {
      start: (nodeId: string, configText: string | undefined) => this.launch(nodeId, configText),
      signal: (nodeId: string, proc: SimProcess, signal: NodeJS.Signals) => {
        if (signal !== "SIGKILL" && signal !== "SIGTERM") return;
        const m = c.members.get(nodeId);
        if (m?.process !== proc) return;
        this.stopped.add(nodeId);
        c.crash(nodeId, this.prng);
      },
      reachable: (nodeId: string) => !this.isLost(nodeId),
      dataPlane: (nodeId: string) => {
        const m = c.members.get(nodeId);
        const proc = m?.process;
        return m && proc ? { proc, status: () => m.statusAnswer() } : null;
      },
    };
  }

  /** The launcher's side: the node config the HFC wrote, started on its server (restart in place or a new member). */
  private launch(nodeId: string, configText: string | undefined): SimProcess {
    if (configText === undefined) fail("LaunchRefused", `no config for ${nodeId}`);
    // The HFC's config as the node reads it; the simulator keeps the whole log (no compaction), as before.
    const config: NodeConfig = {
      ...parseConfig(JSON.parse(configText)),
      snapshotEveryEntries: 1_000_000_000,
    };
    const rackId = rackOf(config.serverId);
    if (!rackId) fail("LaunchRefused", `the fabric has no server ${config.serverId}`);
    if (this.lost.includes(config.serverId)) fail("LaunchRefused", `server ${config.serverId} is lost`);
    this.stats.launches++;
    this.stopped.delete(nodeId);
    this.placement.set(nodeId, { serverId: config.serverId, rackId: rackId as string });
    const existing = this.cluster.members.get(nodeId);
    if (existing) this.cluster.restart(nodeId, config);
    else {
      this.cluster.addMember(nodeId, config, rackId as string);
      if (config.mode === "join") this.stats.joinersStarted++;
    }
    const proc = this.cluster.members.get(nodeId)?.process;
    if (!proc) fail("LaunchRefused", `${nodeId} did not start`);
    return proc as SimProcess;
  }

  // ---- the healed invariant ---------------------------------------------------------

  /**
   * `boundUs` after the last fault healed: three voters, each running, holding the
   * pool's ownership and recorded as synced with the same DEK, in three distinct
   * racks, none on a lost server; and a create issued after the heal was acknowledged.
   */
  checkHealed(healedAtUs: number, boundUs: number): string {
    const fail = (message: string): never => {
      throw new PoolInvariantViolation(
        "liveness",
        `healed: ${message} ${formatSimTime(boundUs)} after the last fault healed`,
      );
    };
    const leader = this.cluster.leader();
    const lv = leader?.view();
    if (!leader || !lv) return fail("no primary");
    const voters = lv.conf.voters;
    if (voters.length !== 3)
      return fail(`the pool has ${voters.length} voters (${voters.join(", ")}), not 3`);
    const synced = new Map(lv.keyStore.syncedMembers().map((s) => [s.memberId, s.dekFingerprint]));
    const racks = new Set<string>();
    const deks = new Set<string>();
    for (const id of voters) {
      const m = this.cluster.members.get(id);
      if (m?.state !== "up") fail(`voter ${id} is not running`);
      if (this.isLost(id)) fail(`voter ${id} sits on a lost server`);
      if (!holdsOwnership(m?.ownership ?? null)) fail(`voter ${id} does not hold the pool's ownership`);
      const dek = synced.get(id);
      if (dek === undefined) fail(`the key store does not record voter ${id} as synced`);
      deks.add(dek ?? "");
      racks.add(this.placement.get(id)?.rackId ?? "?");
    }
    if (deks.size !== 1) fail(`voters are synced with ${deks.size} different DEKs`);
    if (racks.size !== 3) fail(`voters ${voters.join(", ")} share a rack (${[...racks].join(", ")})`);
    if (this.cluster.firstCreateAckedSince(healedAtUs) === undefined)
      fail("no create issued after the heal was acknowledged");
    return `healed ok: voters ${voters.join(", ")} in ${[...racks].join(", ")}, all synced`;
  }
}
