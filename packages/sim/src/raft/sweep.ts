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

/** What a sweep folds from one seed's run (Raft runs and pool runs both provide it). */
export interface SeedResult {
  seed: number;
  ok: boolean;
  traceHash: string;
  simulatedUs: number;
  stats: { events: number; writesAcked: number; readsChecked: number; faultsApplied: number };
}

export interface SweepProgress<R extends SeedResult = RaftSimResult> {
  done: number;
  total: number;
  failures: number;
  simulatedUs: number;
  last: R;
}

export interface SweepSummary<R extends SeedResult = RaftSimResult> {
  seedsRun: number;
  /** One hash over every seed's trace hash, in seed order. */
  traceHash: string;
  failures: R[];
  simulatedUs: number;
  events: number;
  writesAcked: number;
  readsChecked: number;
  faultsApplied: number;
}

/** Folds per-seed results (in seed order) into a summary and progress reports. */
export class SweepAccumulator<R extends SeedResult = RaftSimResult> {
  private readonly combined = new TraceHash();
  readonly summary: SweepSummary<R> = {
    seedsRun: 0,
    traceHash: "",
    failures: [],
    simulatedUs: 0,
    events: 0,
    writesAcked: 0,
    readsChecked: 0,
    faultsApplied: 0,
  };

  constructor(private readonly total: number) {
    this.summary.traceHash = this.combined.hex();
  }

  add(r: R): SweepProgress<R> {
    const s = this.summary;
    s.seedsRun++;
    this.combined.add(r.seed);
    this.combined.addString(r.traceHash);
    s.traceHash = this.combined.hex();
    s.simulatedUs += r.simulatedUs;
    s.events += r.stats.events;
    s.writesAcked += r.stats.writesAcked;
    s.readsChecked += r.stats.readsChecked;
    s.faultsApplied += r.stats.faultsApplied;
    if (!r.ok) s.failures.push(r);
    return {
      done: s.seedsRun,
      total: this.total,
      failures: s.failures.length,
      simulatedUs: s.simulatedUs,
      last: r,
    };
  }
}

export function runSweep(options: SweepOptions, onSeed?: (p: SweepProgress) => void): SweepSummary {
  const acc = new SweepAccumulator(options.count);
  for (let i = 0; i < options.count; i++) {
    const r = runRaftSim({
      seed: options.from + i,
      ...(options.scenario !== undefined ? { scenario: options.scenario } : {}),
      ...(options.durationUs !== undefined ? { durationUs: options.durationUs } : {}),
      ...(options.intensity !== undefined ? { intensity: options.intensity } : {}),
      ...(options.unsafeVariant !== undefined ? { unsafeVariant: options.unsafeVariant } : {}),
    });
    const p = acc.add(r);
    onSeed?.(p);
    if (options.stopAfterFailures !== undefined && p.failures >= options.stopAfterFailures) break;
  }
  return acc.summary;
}
