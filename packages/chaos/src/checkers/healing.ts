/**
 * Healing: for each injected fault, how long until the pool was back to three
 * healthy, synced members with a primary — measured from the fault's start to the
 * first fully healthy status sample after the pool was seen unhealthy (the HFC needs
 * a few polls to notice; a fault the pool never showed is reported as unobserved).
 * For faults that hit the primary, also the time to a new primary. Pure.
 */
import { type Fault, isFullyHealthy, type StatusSample } from "../timeline.js";
import type { CheckerResult } from "./result.js";

export interface FaultHealing {
  faultId: number;
  kind: string;
  targets: string[];
  startMs: number;
  healMs?: number;
  /** First sample after the start that was not fully healthy. */
  degradedAtMs?: number;
  /** First fully healthy sample after that. */
  healthyAtMs?: number;
  /** healthyAtMs - startMs. */
  healingMs?: number;
  /** Faults that hit the primary: time until another member was primary. */
  failoverMs?: number;
  outcome: "healed" | "not-healed" | "unobserved" | "not-injected";
}

export interface HealingInput {
  faults: readonly Fault[];
  samples: readonly StatusSample[];
  /** When the harness finished healing everything and waiting (end of observation). */
  endMs: number;
  /** The primary at each fault's start, from the samples before it (for failover). */
}

function primaryBefore(samples: readonly StatusSample[], t: number): string {
  let p = "";
  for (const s of samples) {
    if (s.timeMs > t) break;
    if (s.primary !== "") p = s.primary;
  }
  return p;
}

export function healingOf(fault: Fault, samples: readonly StatusSample[]): FaultHealing {
  const base = { faultId: fault.id, kind: fault.kind, targets: fault.targets, startMs: fault.startMs };
  const withHeal = fault.healMs !== undefined ? { ...base, healMs: fault.healMs } : base;
  if (fault.error !== undefined) return { ...withHeal, outcome: "not-injected" };
  const after = samples.filter((s) => s.timeMs >= fault.startMs);
  const degraded = after.find((s) => !isFullyHealthy(s));
  const out: FaultHealing = { ...withHeal, outcome: "unobserved" };
  const oldPrimary = primaryBefore(samples, fault.startMs);
  if (oldPrimary !== "" && fault.targets.includes(oldPrimary)) {
    const next = after.find((s) => s.primary !== "" && s.primary !== oldPrimary);
    if (next) out.failoverMs = next.timeMs - fault.startMs;
  }
  if (!degraded) return out;
  out.degradedAtMs = degraded.timeMs;
  const healthy = after.find((s) => s.timeMs > degraded.timeMs && isFullyHealthy(s));
  if (!healthy) return { ...out, outcome: "not-healed" };
  return {
    ...out,
    healthyAtMs: healthy.timeMs,
    healingMs: healthy.timeMs - fault.startMs,
    outcome: "healed",
  };
}

export function checkHealing(input: HealingInput): CheckerResult {
  const per = input.faults.map((f) => healingOf(f, input.samples));
  const last = input.samples.at(-1);
  const healthyAtEnd = last !== undefined && isFullyHealthy(last);
  const healed = per.filter((h) => h.healingMs !== undefined).map((h) => h.healingMs as number);
  const maxMs = healed.length > 0 ? Math.max(...healed) : undefined;
  const valid = healthyAtEnd;
  const summary = healthyAtEnd
    ? `${per.length} faults; ${healed.length} observed and healed${maxMs !== undefined ? `, slowest in ${(maxMs / 1000).toFixed(1)} s` : ""}; healthy at the end`
    : `the pool was not back to three healthy, synced members at the end (last state ${last?.state ?? "never sampled"}, primary ${last?.primary || "none"})`;
  return {
    name: "healing",
    valid,
    summary,
    details: { faults: per, healthyAtEnd, maxHealingMs: maxMs ?? null },
  };
}
