/** How pool status is shown: the `--json` document (a stable shape scripts read), the table and healing lines. */
import type { HealingEvent, PoolStatus } from "@hsmpool/wire";

/**
 * `hsmpool status --json`: exactly these fields; `primary` is null when there is none;
 * `healing` lists open healings and the latest finished ones, oldest first.
 */
export interface StatusJson {
  poolId: string;
  state: PoolStatus["state"];
  term: number;
  primary: string | null;
  members: {
    id: string;
    role: string;
    server: string;
    rack: string;
    pid: number;
    health: string;
    measurement: string;
    ownership: string;
    peerAddress: string;
    dataAddress: string;
    /** The node's Prometheus endpoint ("" until it has answered the HFC). */
    metricsUrl: string;
    /** Why it is not up (the last error line while crash-looping); "" when up. */
    healthDetail: string;
    term: number;
  }[];
  healing: HealingEvent[];
  healingPaused: boolean;
  lostServers: string[];
  upgrade: { state: string; bundleDir: string; svn: number; reason: string; launched: string[] } | null;
  /** The HFC's Prometheus endpoint. */
  metricsUrl: string;
}

export function statusJson(s: PoolStatus): StatusJson {
  return {
    poolId: s.poolId,
    state: s.state,
    term: s.term,
    primary: s.primary === "" ? null : s.primary,
    members: s.members.map((m) => ({
      id: m.id,
      role: m.role,
      server: m.server,
      rack: m.rack,
      pid: m.pid,
      health: m.health,
      measurement: m.measurement,
      ownership: m.ownership,
      peerAddress: m.peerAddress,
      dataAddress: m.dataAddress,
      metricsUrl: m.metricsUrl,
      healthDetail: m.healthDetail,
      term: m.term,
    })),
    healing: s.healing.map((h) => ({
      id: h.id,
      kind: h.kind,
      memberId: h.memberId,
      replacementId: h.replacementId,
      phase: h.phase,
      phases: h.phases.map((p) => ({ phase: p.phase, atMs: p.atMs })),
      reason: h.reason,
    })),
    healingPaused: s.healingPaused,
    lostServers: [...s.lostServers],
    upgrade:
      s.upgrade && s.upgrade.state !== ""
        ? {
            state: s.upgrade.state,
            bundleDir: s.upgrade.bundleDir,
            svn: s.upgrade.svn,
            reason: s.upgrade.reason,
            launched: [...s.upgrade.launched],
          }
        : null,
    metricsUrl: s.metricsUrl,
  };
}

/** Whether a healing still runs (not ready, not failed). */
export const isHealing = (h: HealingEvent): boolean => h.phase !== "ready" && h.phase !== "failed";

/** Healthy and nothing healing: what `status --watch --until healthy` waits for. */
export const isSettledHealthy = (s: PoolStatus): boolean =>
  s.state === "healthy" && !s.healing.some(isHealing);

const clock = (ms: number) => new Date(ms).toISOString().slice(11, 23);
const delta = (ms: number) => (ms < 1000 ? `+${ms} ms` : `+${(ms / 1000).toFixed(2)} s`);

/** "replace n3 -> n4" / "restart n2" / "upgrade n1 -> n5". */
export function healingTitle(h: HealingEvent): string {
  return `${h.kind} ${h.memberId}${h.replacementId ? ` -> ${h.replacementId}` : ""}`;
}

/** One line per healing: its phases with the time since detection. */
export function healingLine(h: HealingEvent): string {
  const start = h.phases[0]?.atMs ?? 0;
  const phases = h.phases
    .map((p, i) => (i === 0 ? `${p.phase} ${clock(p.atMs)}` : `${p.phase} ${delta(p.atMs - start)}`))
    .join(", ");
  const reason = h.reason ? ` (${h.reason})` : "";
  return `${h.id} ${healingTitle(h)}: ${h.phase.toUpperCase()}${reason} | ${phases}`;
}

/** The healing section under the member table ("" when there is nothing to say). */
export function healingSection(s: PoolStatus): string {
  const lines: string[] = [];
  if (s.healingPaused) lines.push("healing is PAUSED: nothing is relaunched (`hsmpool healing resume`)");
  if (s.lostServers.length > 0) lines.push(`lost servers (never used again): ${s.lostServers.join(", ")}`);
  if (s.upgrade && s.upgrade.state !== "") {
    const reason = s.upgrade.reason ? ` (${s.upgrade.reason})` : "";
    lines.push(`upgrade to svn ${s.upgrade.svn} from ${s.upgrade.bundleDir}: ${s.upgrade.state}${reason}`);
  }
  if (s.healing.length > 0) lines.push("HEALING", ...s.healing.map(healingLine));
  return lines.length > 0 ? `${lines.join("\n")}\n` : "";
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function statusTable(s: PoolStatus): string {
  const head = `pool ${s.poolId}  ${s.state}  term ${s.term}  primary ${s.primary || "(none)"}`;
  const rows = [
    ["MEMBER", "ROLE", "HEALTH", "OWNERSHIP", "SERVER", "RACK", "PID", "DATA", "MEASUREMENT"],
    ...s.members.map((m) => [
      m.id,
      m.role,
      m.health,
      m.ownership,
      m.server,
      m.rack,
      String(m.pid || "-"),
      m.dataAddress,
      m.measurement ? `${m.measurement.slice(0, 16)}…` : "-",
    ]),
  ];
  const looping = s.members
    .filter((m) => m.health === "crash-looping")
    .map((m) => `${m.id} is crash-looping (relaunched with backoff): ${m.healthDetail || "no error line"}\n`)
    .join("");
  return `${head}\n${table(rows)}\n${looping}${healingSection(s)}`;
}

/** One line per member, for progress output. */
export function memberLine(m: PoolStatus["members"][number]): string {
  return `${m.id} on ${m.server} (${m.rack}): ${m.health}, ${m.role}, ownership ${m.ownership}`;
}
