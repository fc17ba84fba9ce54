/** Latency percentiles of answered operations, overall and per operation type. Pure. */
import { type HistoryEvent, pairOperations } from "../history.js";
import type { CheckerResult } from "./result.js";

export interface LatencyStats {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Nearest-rank percentile of sorted values (0 for none). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

export function latencyStats(values: readonly number[]): LatencyStats {
  const s = [...values].sort((a, b) => a - b);
  return {
    count: s.length,
    p50Ms: percentile(s, 50),
    p90Ms: percentile(s, 90),
    p99Ms: percentile(s, 99),
    maxMs: s.at(-1) ?? 0,
  };
}

export function checkLatency(events: readonly HistoryEvent[]): CheckerResult {
  const byOp = new Map<string, number[]>();
  const all: number[] = [];
  for (const o of pairOperations(events)) {
    const c = o.complete;
    if (!c || o.invoke.final || c.latencyMs === undefined) continue;
    if (c.type !== "ok" && !(c.type === "fail" && c.error?.code === "KeyNotFound")) continue;
    all.push(c.latencyMs);
    const list = byOp.get(o.invoke.f) ?? [];
    list.push(c.latencyMs);
    byOp.set(o.invoke.f, list);
  }
  const overall = latencyStats(all);
  const perOp = Object.fromEntries([...byOp].map(([f, v]) => [f, latencyStats(v)]));
  return {
    name: "latency",
    valid: true,
    summary: `p50 ${overall.p50Ms.toFixed(0)} ms, p99 ${overall.p99Ms.toFixed(0)} ms, max ${overall.maxMs.toFixed(0)} ms over ${overall.count} answered operations`,
    details: { overall, perOp },
  };
}
