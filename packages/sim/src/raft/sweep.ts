import type { IntensityName } from "../faults.js";
import { TraceHash } from "../trace.js";
import { type RaftSimOptions, type RaftSimResult, runRaftSim } from "./run.js";

/**
 * Many seeds in a row (seeds from..from+count-1) with the same scenario, intensity
 * and duration. Progress goes to a callback so the CLI can print it at its own pace;
 * the sweep itself never reads a clock.
 */

export interface SweepOptions {
  from: number;
  count: number;
  scenario?: string;
  durationUs?: number;
  intensity?: IntensityName;
  unsafeVariant?: RaftSimOptions["unsafeVariant"];
  /** Stop after this many failing seeds (default: never). */
  stopAfterFailures?: number;
}

export interface SweepProgress {
  done: number;
  total: number;
  failures: number;
  simulatedUs: number;
  last: RaftSimResult;
}

export interface SweepSummary {
  seedsRun: number;
  /** One hash over every seed's trace hash, in seed order. */
  traceHash: string;
  failures: RaftSimResult[];
  simulatedUs: number;
  events: number;
  writesAcked: number;
  readsChecked: number;
  faultsApplied: number;
}

export function runSweep(options: SweepOptions, onSeed?: (p: SweepProgress) => void): SweepSummary {
  const combined = new TraceHash();
  const summary: SweepSummary = {
    seedsRun: 0,
    traceHash: combined.hex(),
    failures: [],
    simulatedUs: 0,
    events: 0,
    writesAcked: 0,
    readsChecked: 0,
    faultsApplied: 0,
  };
  for (let i = 0; i < options.count; i++) {
    const r = runRaftSim({
      seed: options.from + i,
      ...(options.scenario !== undefined ? { scenario: options.scenario } : {}),
      ...(options.durationUs !== undefined ? { durationUs: options.durationUs } : {}),
      ...(options.intensity !== undefined ? { intensity: options.intensity } : {}),
      ...(options.unsafeVariant !== undefined ? { unsafeVariant: options.unsafeVariant } : {}),
    });
    summary.seedsRun++;
    combined.add(r.seed);
    combined.addString(r.traceHash);
    summary.traceHash = combined.hex();
    summary.simulatedUs += r.simulatedUs;
    summary.events += r.stats.events;
    summary.writesAcked += r.stats.writesAcked;
    summary.readsChecked += r.stats.readsChecked;
    summary.faultsApplied += r.stats.faultsApplied;
    if (!r.ok) summary.failures.push(r);
    onSeed?.({
      done: summary.seedsRun,
      total: options.count,
      failures: summary.failures.length,
      simulatedUs: summary.simulatedUs,
      last: r,
    });
    if (options.stopAfterFailures !== undefined && summary.failures.length >= options.stopAfterFailures)
      break;
  }
  return summary;
}
