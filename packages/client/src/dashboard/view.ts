/**
 * What the dashboard page shows, as one JSON document (pure): the pool status from the
 * HFC, the fabric's racks and servers, and each member's request-rate history. Only
 * public data goes in — ids, addresses, measurements, phases, counts — never anything
 * a node keeps secret (the status carries none).
 */
import type { PoolStatus } from "@hsmpool/wire";
import type { RatePoint } from "./request-rates.js";

export interface FabricRack {
  id: string;
  servers: string[];
}

export interface DashboardView {
  observedMs: number;
  /** null while the HFC does not answer (with `error` saying why). */
  pool: PoolStatus | null;
  error: string;
  racks: FabricRack[];
  rates: Record<string, RatePoint[]>;
  /** Members this dashboard cut off from their peers (the partition button) and has not healed yet. */
  partitioned: string[];
}

export function dashboardView(input: {
  nowMs: number;
  status: PoolStatus | null;
  error: string;
  racks: FabricRack[];
  rates: ReadonlyMap<string, readonly RatePoint[]>;
  partitioned?: readonly string[];
}): DashboardView {
  const live = new Set(input.status?.members.map((m) => m.id) ?? []);
  return {
    observedMs: input.nowMs,
    pool: input.status,
    error: input.error,
    racks: input.racks.map((r) => ({ id: r.id, servers: [...r.servers] })),
    rates: Object.fromEntries([...input.rates].filter(([id]) => live.has(id)).map(([id, p]) => [id, [...p]])),
    partitioned: (input.partitioned ?? []).filter((id) => live.has(id)),
  };
}

/** The racks and servers of `<fabric>/fabric.json` (public inventory); [] when unreadable. */
export function racksOf(fabricJson: unknown): FabricRack[] {
  const racks = (fabricJson as { racks?: unknown })?.racks;
  if (!Array.isArray(racks)) return [];
  return racks.flatMap((r) => {
    const id = (r as { id?: unknown }).id;
    const servers = (r as { servers?: unknown }).servers;
    if (typeof id !== "string" || !Array.isArray(servers)) return [];
    return [
      { id, servers: servers.map((s) => (s as { id?: unknown }).id).filter((s) => typeof s === "string") },
    ];
  });
}
