import type { Prng } from "@hsmpool/faults";
import type { InventoryRack, MemberRecord, NodeObservation } from "@hsmpool/healing";
import type { NodeConfig } from "@hsmpool/node";
import { formatSimTime } from "../scheduler.js";
import { holdsOwnership, PoolInvariantViolation } from "./checker.js";
import { simNodeConfig } from "./cluster.js";
import { HealingActor, type HealingUnsafeMode } from "./healing-actor.js";
import type { PoolMember } from "./member.js";
import { SIM_MRSIGNER, SIM_SVN } from "./shell/server.js";

/**
 * The fabric around a healing pool in the sim: servers in racks, which member runs
 * where, which servers are lost, and the HFC actor. Joiners are shipped nodes started
 * in join mode: their own joiner calls Membership.Join and the primary's membership
 * driver admits them. The cluster owns the members and the event queue; this class
 * owns everything healing adds, and the "healed" invariant.
 */

/** What the healing fabric needs from the cluster. */
export interface HealingCluster {
  readonly members: ReadonlyMap<string, PoolMember>;
  nowUs(): number;
  /** Run `fn` after `delayUs` (an actor event in the cluster's queue). */
  after(delayUs: number, fn: () => void): void;
  /** A blank member on a new server with its own fresh HSM partition and disk, started at once. */
  addMember(id: string, config: NodeConfig, rackId: string): PoolMember;
  crash(id: string, prng: Prng): boolean;
  restart(id: string): void;
  leader(): PoolMember | null;
  firstCreateAckedSince(us: number): number | undefined;
  trace(n: number): void;
  log(make: () => string): void;
}

const RACKS = 6;
const SERVERS_PER_RACK = 2;
export const HEALING_INVENTORY: readonly InventoryRack[] = Array.from({ length: RACKS }, (_, r) => ({
  id: `rack${r + 1}`,
  servers: Array.from({ length: SERVERS_PER_RACK }, (_, s) => ({ id: `rack${r + 1}-s${s + 1}` })),
}));
/** The health polling of the HFC (its defaults: 250 ms, 3 missed polls). */
const HEALTH_INTERVAL_MS = 250;
const FAILURE_THRESHOLD = 3;

function founder(id: string, rack: number): MemberRecord {
  return {
    id,
    serverId: `rack${rack}-s1`,
    rackId: `rack${rack}`,
    partition: 0,
    peerAddress: `${id}.sim:7001`,
    dataAddress: `${id}.sim:7002`,
    bundleDir: "sim-bundle",
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

export interface HealingStats {
  kills: number;
  serversLost: number;
  hfcCrashes: number;
  launches: number;
  joinersStarted: number;
  fences: number;
}

export class PoolHealing {
  readonly hfc: HealingActor;
  /** Where each member runs (from its launch): the racks invariant reads this, not the HFC's book. */
  private readonly placement = new Map<string, { serverId: string; rackId: string }>();
  private readonly lost: string[] = [];
  /** Members nobody but the HFC may start again (killed on purpose, lost, fenced, stopped). */
  private readonly stopped = new Set<string>();
  readonly stats: HealingStats = {
    kills: 0,
    serversLost: 0,
    hfcCrashes: 0,
    launches: 0,
    joinersStarted: 0,
    fences: 0,
  };

  constructor(
    private readonly cluster: HealingCluster,
    private readonly prng: Prng,
    founders: readonly string[],
    placementSeed: number,
    unsafeMode: HealingUnsafeMode | undefined,
  ) {
    const members = founders.map((id, i) => founder(id, i + 1));
    for (const m of members) this.placement.set(m.id, { serverId: m.serverId, rackId: m.rackId });
    this.hfc = new HealingActor(this.world(), {
      inventory: HEALING_INVENTORY,
      members,
      placementSeed,
      healthIntervalMs: HEALTH_INTERVAL_MS,
      failureThreshold: FAILURE_THRESHOLD,
      unsafeMode,
    });
  }

  start(): void {
    this.hfc.start();
  }

  // ---- Nemesis host parts ------------------------------------------------------------

  /** Members faults may hit: running members the HFC still looks after. */
  faultable(id: string): boolean {
    return !this.stopped.has(id) && !this.isLost(id);
  }

  /** Only the HFC restarts these (Nemesis crash ends and the heal leave them down). */
  staysDown(id: string): boolean {
    return this.stopped.has(id) || this.isLost(id);
  }

  kill(id: string, prng: Prng): boolean {
    if (!this.cluster.crash(id, prng)) return false;
    this.stats.kills++;
    this.cluster.log(() => `${id} process is killed (its supervisor must restart it)`);
    return true;
  }

  /**
   * Lose `id`'s server for good. The fault model keeps one server failure at a time:
   * a loss is skipped unless the pool has three running voters and no earlier loss
   * pending (two voters lost at once would leave no quorum to heal with).
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
    return true;
  }

  crashSupervisor(): boolean {
    if (!this.hfc.crash()) return false;
    this.stats.hfcCrashes++;
    return true;
  }

  restartSupervisor(): void {
    this.hfc.restart();
  }

  private isLost(id: string): boolean {
    const where = this.placement.get(id);
    return where !== undefined && this.lost.includes(where.serverId);
  }

  // ---- the HFC's world --------------------------------------------------------------

  private world() {
    const c = this.cluster;
    return {
      nowUs: () => c.nowUs(),
      after: (delayUs: number, fn: () => void) => c.after(delayUs, fn),
      processOf: (id: string) => {
        const m = c.members.get(id);
        return m?.running ? m.incarnation : null;
      },
      probe: (id: string) => this.probe(id),
      lostServers: () => this.lost,
      launch: (record: MemberRecord) => this.launch(record),
      kill: (id: string) => {
        this.stopped.add(id);
        c.crash(id, this.prng);
      },
      trace: (n: number) => c.trace(n),
      log: (make: () => string) => c.log(make),
    };
  }

  /** A member's Status as the HFC maps it (docs/healing-contract.md, "Status phases"). */
  private probe(id: string): NodeObservation | null {
    const m = this.cluster.members.get(id);
    const v = m?.state === "up" ? m.view() : null;
    if (!v) return null;
    const conf = v.conf;
    const membership = v.membership;
    const role = membership !== "voter" ? "learner" : v.role === "leader" ? "primary" : "secondary";
    return {
      role,
      membership,
      ownership: holdsOwnership(v.ownership) ? "synced" : "pending",
      members: [
        ...conf.voters.map((v) => ({ id: v, role: "voter" })),
        ...conf.learners.map((l) => ({ id: l, role: "learner" })),
      ],
      svn: SIM_SVN,
      mrsigner: SIM_MRSIGNER,
    };
  }

  private launch(record: MemberRecord): { ok: true; pid: number } | { ok: false; reason: string } {
    if (this.lost.includes(record.serverId))
      return { ok: false, reason: `server ${record.serverId} is lost` };
    this.stats.launches++;
    this.stopped.delete(record.id);
    const existing = this.cluster.members.get(record.id);
    if (existing) {
      this.cluster.restart(record.id);
      return existing.running
        ? { ok: true, pid: existing.incarnation }
        : { ok: false, reason: `${record.id} did not start` };
    }
    // A blank joiner: new server, partition and disk; it asks the listed members to admit it.
    this.placement.set(record.id, { serverId: record.serverId, rackId: record.rackId });
    const config = simNodeConfig(record.id, record.serverId, "join", record.joinPeers, record.replaces);
    const member = this.cluster.addMember(record.id, config, record.rackId);
    this.stats.joinersStarted++;
    return { ok: true, pid: member.incarnation };
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
