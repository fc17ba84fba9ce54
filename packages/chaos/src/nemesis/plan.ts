/**
 * The nemesis schedule made concrete (pure): every `at` and `every` entry becomes
 * firing times with their seeded jitter, and `random` faults become the choice the
 * seed picks. Same seed, same plan.
 */
import type { Prng } from "@hsmpool/faults";
import type { FaultSpec, NemesisEntry } from "../scenario/schema.js";

export type ConcreteFault = Exclude<FaultSpec, { kind: "random" }>;

export interface PlannedFault {
  /** Since the workload started. */
  atMs: number;
  /** The scenario line it comes from. */
  line: number;
  fault: ConcreteFault;
  healAfterMs?: number;
}

export interface FaultPlan {
  faults: PlannedFault[];
  /** Entries that cannot fire inside the (possibly shortened) run, with why. */
  skipped: { line: number; why: string }[];
}

export function planFaults(entries: readonly NemesisEntry[], durationMs: number, prng: Prng): FaultPlan {
  const faults: PlannedFault[] = [];
  const skipped: FaultPlan["skipped"] = [];
  entries.forEach((entry, i) => {
    const rng = prng.split(`entry-${i}`);
    const times: number[] = [];
    if (entry.atMs !== undefined) times.push(entry.atMs);
    if (entry.everyMs !== undefined) {
      const until = Math.min(entry.untilMs ?? durationMs, durationMs);
      for (let t = entry.fromMs; t < until; t += entry.everyMs) times.push(t);
    }
    let fired = 0;
    for (const t of times) {
      const atMs = t + (entry.jitterMs > 0 ? rng.float() * entry.jitterMs : 0);
      const fault = concrete(entry.fault, rng);
      if (atMs >= durationMs) continue;
      fired++;
      faults.push({
        atMs: Math.round(atMs),
        line: entry.line,
        fault,
        ...(entry.healAfterMs !== undefined ? { healAfterMs: entry.healAfterMs } : {}),
      });
    }
    if (fired === 0)
      skipped.push({ line: entry.line, why: `no firing before the end of the workload (${durationMs} ms)` });
  });
  faults.sort((a, b) => a.atMs - b.atMs || a.line - b.line);
  return { faults, skipped };
}

function concrete(f: FaultSpec, rng: Prng): ConcreteFault {
  if (f.kind !== "random") return f;
  const choice = rng.pick(f.choices);
  return concrete(choice, rng);
}
