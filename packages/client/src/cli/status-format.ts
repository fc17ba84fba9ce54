/** How pool status is shown: the `--json` document (a stable shape scripts read) and the table. */
import type { PoolStatus } from "@hsmpool/hfc";

/** `hsmpool status --json`: exactly these fields; `primary` is null when there is none. */
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
  }[];
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
    })),
  };
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
  return `${head}\n${table(rows)}\n`;
}

/** One line per member, for progress output. */
export function memberLine(m: PoolStatus["members"][number]): string {
  return `${m.id} on ${m.server} (${m.rack}): ${m.health}, ${m.role}, ownership ${m.ownership}`;
}
