import type { IntensityName } from "../faults.js";
import { SweepAccumulator, type SweepProgress, type SweepSummary } from "../raft/sweep.js";
import { type PoolSimResult, runPoolSim } from "./run.js";
import type { PoolUnsafeMode } from "./unsafe.js";

/**
 * Many pool seeds in a row (from..from+count-1) with one scenario, intensity and
 * duration, folded by the Raft sweep's accumulator (combined trace hash, totals,
 * failures). Progress goes to a callback; the sweep never reads a clock.
 */

export interface PoolSweepOptions {
  from: number;
  count: number;
  scenario?: string | undefined;
  durationUs?: number | undefined;
  intensity?: IntensityName | undefined;
  unsafeMode?: PoolUnsafeMode | undefined;
  /** Stop after this many failing seeds (default: never). */
  stopAfterFailures?: number | undefined;
}

export async function runPoolSweep(
  options: PoolSweepOptions,
  onSeed?: (p: SweepProgress<PoolSimResult>) => void,
): Promise<SweepSummary<PoolSimResult>> {
  const { from, count, stopAfterFailures, ...rest } = options;
  const acc = new SweepAccumulator<PoolSimResult>(count);
  for (let i = 0; i < count; i++) {
    const p = acc.add(await runPoolSim({ seed: from + i, ...rest }));
    onSeed?.(p);
    if (stopAfterFailures !== undefined && p.failures >= stopAfterFailures) break;
  }
  return acc.summary;
}
