/**
 * Pool status from the members' own Status answers (pure), following the contract:
 * - "healthy": every member up, one primary, every ownership "synced";
 * - "degraded": a primary exists and at least one member is down, pending or a learner;
 * - "unavailable": no primary is reachable.
 * The primary is the up member that says "primary" at the highest term, unless an
 * up member already reports a higher term (then that primary has been deposed).
 */

import type { MemberRole, MemberSpec, MemberStatus, NodeStatus, PoolState, PoolStatus } from "@hsmpool/wire";
import type { MemberHealth } from "./health.js";

/** The `upgrade` field of a PoolStatus when no upgrade ever ran. */
export const NO_UPGRADE: PoolStatus["upgrade"] = Object.freeze({
  bundleDir: "",
  svn: 0,
  state: "",
  reason: "",
  launched: [],
}) as PoolStatus["upgrade"];

export interface MemberObservation {
  spec: MemberSpec;
  health: MemberHealth;
  /** Process id of the member's current (or last) process; 0 when never launched. */
  pid: number;
  /** Set while the member's process keeps exiting soon after launch: the last error line it logged. */
  crashLoop?: { lastError: string } | null;
}

export interface PoolObservation {
  poolId: string;
  /** The pool size the HFC maintains (3). */
  memberCount: number;
  members: readonly MemberObservation[];
  fabricDir: string;
  runDir: string;
  observedMs: number;
  /** The HFC's Prometheus endpoint ("" when none). */
  metricsUrl?: string;
  /** The healing controller's view (none: nothing healing). */
  healing?: Pick<PoolStatus, "healing" | "healingPaused" | "lostServers" | "upgrade">;
}

/**
 * Why a Status answer cannot be counted as this member's (wrong node, wrong pool),
 * or null when it can. A node answering for someone else is as good as down.
 */
export function statusMismatch(spec: MemberSpec, poolId: string, status: NodeStatus): string | null {
  if (status.nodeId !== spec.id) return `answered as node "${status.nodeId}", expected "${spec.id}"`;
  if (status.poolId !== poolId) return `answered for pool "${status.poolId}", expected "${poolId}"`;
  return null;
}

function findPrimary(members: readonly MemberObservation[]): string {
  let highestTerm = 0;
  for (const m of members) {
    if (m.health.health === "up" && m.health.lastStatus)
      highestTerm = Math.max(highestTerm, m.health.lastStatus.term);
  }
  const claimants = members
    .filter((m) => m.health.health === "up" && m.health.lastStatus?.role === "primary")
    .sort(
      (a, b) =>
        (b.health.lastStatus?.term ?? 0) - (a.health.lastStatus?.term ?? 0) ||
        (a.spec.id < b.spec.id ? -1 : 1),
    );
  const best = claimants[0];
  if (!best || (best.health.lastStatus?.term ?? 0) < highestTerm) return "";
  return best.spec.id;
}

function roleOf(m: MemberObservation, primary: string): MemberRole {
  if (m.spec.id === primary) return "primary";
  return m.health.lastStatus?.role === "learner" ? "learner" : "secondary";
}

function memberStatus(m: MemberObservation, primary: string): MemberStatus {
  const last = m.health.lastStatus;
  const crashLooping = m.health.health !== "up" && m.crashLoop;
  const metricsAddress = last?.metricsAddress ?? "";
  return {
    id: m.spec.id,
    role: roleOf(m, primary),
    server: m.spec.serverId,
    rack: m.spec.rackId,
    pid: m.pid,
    health: crashLooping ? "crash-looping" : m.health.health,
    measurement: last?.mrenclave ?? "",
    ownership: last?.ownership === "synced" ? "synced" : "pending",
    peerAddress: m.spec.peerAddress,
    dataAddress: m.spec.dataAddress,
    term: last?.term ?? 0,
    appliedIndex: last?.appliedIndex ?? 0,
    metricsUrl: metricsAddress === "" ? "" : `http://${metricsAddress}/metrics`,
    healthDetail: crashLooping
      ? m.crashLoop?.lastError || ""
      : m.health.health === "up"
        ? ""
        : (m.health.lastError ?? ""),
    svn: m.spec.svn,
  };
}

function poolState(members: readonly MemberStatus[], primary: string, memberCount: number): PoolState {
  if (primary === "") return "unavailable";
  const allWell =
    members.length === memberCount &&
    members.every((m) => m.health === "up" && m.ownership === "synced" && m.role !== "learner");
  return allWell ? "healthy" : "degraded";
}

export function aggregatePoolStatus(obs: PoolObservation): PoolStatus {
  const primary = findPrimary(obs.members);
  const members = [...obs.members]
    .sort((a, b) => (a.spec.id < b.spec.id ? -1 : a.spec.id > b.spec.id ? 1 : 0))
    .map((m) => memberStatus(m, primary));
  const upTerms = members.filter((m) => m.health === "up").map((m) => m.term);
  const term = Math.max(0, ...(upTerms.length > 0 ? upTerms : members.map((m) => m.term)));
  return {
    poolId: obs.poolId,
    state: poolState(members, primary, obs.memberCount),
    term,
    primary,
    members,
    fabricDir: obs.fabricDir,
    runDir: obs.runDir,
    observedMs: obs.observedMs,
    healing: obs.healing?.healing ?? [],
    healingPaused: obs.healing?.healingPaused ?? false,
    lostServers: obs.healing?.lostServers ?? [],
    upgrade: obs.healing?.upgrade ?? NO_UPGRADE,
    metricsUrl: obs.metricsUrl ?? "",
  };
}
