/** The scenario's steady-state hypothesis, checked against the measurements. Pure. */
import type { Hypothesis } from "../scenario/schema.js";
import type { CheckerResult } from "./result.js";

export interface Measurements {
  availability: number;
  p99LatencyMs: number;
  /** Slowest healing of any observed fault (null: none observed). */
  maxHealingMs: number | null;
  /** Faults that were observed but never healed. */
  unhealedFaults: number;
  longestUnavailableMs: number;
}

export function checkHypothesis(h: Hypothesis, m: Measurements): CheckerResult {
  const checks: { what: string; expected: string; actual: string; holds: boolean }[] = [];
  if (h.minAvailability !== undefined) {
    checks.push({
      what: "availability",
      expected: `>= ${(h.minAvailability * 100).toFixed(1)}%`,
      actual: `${(m.availability * 100).toFixed(1)}%`,
      holds: m.availability >= h.minAvailability,
    });
  }
  if (h.maxP99LatencyMs !== undefined) {
    checks.push({
      what: "p99 latency",
      expected: `<= ${h.maxP99LatencyMs} ms`,
      actual: `${m.p99LatencyMs.toFixed(0)} ms`,
      holds: m.p99LatencyMs <= h.maxP99LatencyMs,
    });
  }
  if (h.maxHealingMs !== undefined) {
    const worst = m.maxHealingMs ?? 0;
    checks.push({
      what: "healing time",
      expected: `<= ${(h.maxHealingMs / 1000).toFixed(1)} s`,
      actual:
        m.unhealedFaults > 0 ? `${m.unhealedFaults} faults never healed` : `${(worst / 1000).toFixed(1)} s`,
      holds: m.unhealedFaults === 0 && worst <= h.maxHealingMs,
    });
  }
  if (h.maxUnavailableMs !== undefined) {
    checks.push({
      what: "longest unavailable window",
      expected: `<= ${(h.maxUnavailableMs / 1000).toFixed(1)} s`,
      actual: `${(m.longestUnavailableMs / 1000).toFixed(1)} s`,
      holds: m.longestUnavailableMs <= h.maxUnavailableMs,
    });
  }
  const broken = checks.filter((c) => !c.holds);
  return {
    name: "hypothesis",
    valid: broken.length === 0,
    summary:
      checks.length === 0
        ? "no steady-state hypothesis given"
        : broken.length === 0
          ? `holds: ${checks.map((c) => `${c.what} ${c.actual}`).join(", ")}`
          : `broken: ${broken.map((c) => `${c.what} ${c.actual} (wanted ${c.expected})`).join("; ")}`,
    details: { checks },
  };
}
