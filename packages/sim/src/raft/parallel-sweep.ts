import { Worker } from "node:worker_threads";
import type { PoolSimResult } from "../pool/run.js";
import type { PoolSweepOptions } from "../pool/sweep.js";
import type { RaftSimResult } from "./run.js";
import {
  type SeedResult,
  SweepAccumulator,
  type SweepOptions,
  type SweepProgress,
  type SweepSummary,
} from "./sweep.js";

/**
 * Sweeps on several worker threads (an imperative shell around the pure runs:
 * results are folded in seed order, so the summary and the combined trace hash are
 * the same as a sequential sweep's). Needs the compiled dist/ (the worker is a .js
 * file); the CLI uses it for `--jobs`.
 */

/** What a worker runs for each seed it is handed: which simulator, with which options. */
export type WorkerJob =
  | { simulator: "raft"; options: Omit<SweepOptions, "from" | "count" | "stopAfterFailures"> }
  | { simulator: "pool"; options: Omit<PoolSweepOptions, "from" | "count" | "stopAfterFailures"> };

export function runSweepParallel(
  options: SweepOptions,
  jobs: number,
  onSeed?: (p: SweepProgress) => void,
): Promise<SweepSummary> {
  const { from, count, stopAfterFailures, ...rest } = options;
  return runSeedsParallel<RaftSimResult>({ simulator: "raft", options: rest }, options, jobs, onSeed);
}

export function runPoolSweepParallel(
  options: PoolSweepOptions,
  jobs: number,
  onSeed?: (p: SweepProgress<PoolSimResult>) => void,
): Promise<SweepSummary<PoolSimResult>> {
  const { from, count, stopAfterFailures, ...rest } = options;
  return runSeedsParallel<PoolSimResult>({ simulator: "pool", options: rest }, options, jobs, onSeed);
}

async function runSeedsParallel<R extends SeedResult>(
  job: WorkerJob,
  range: { from: number; count: number; stopAfterFailures?: number | undefined },
  jobs: number,
  onSeed?: (p: SweepProgress<R>) => void,
): Promise<SweepSummary<R>> {
  const acc = new SweepAccumulator<R>(range.count);
  const pending = new Map<number, R>();
  let nextToRun = range.from;
  let nextToFold = range.from;
  const end = range.from + range.count;
  let stopped = false;
  const workers = Array.from(
    { length: Math.max(1, Math.min(jobs, range.count)) },
    () => new Worker(new URL("./sweep-worker.js", import.meta.url), { workerData: job }),
  );

  await new Promise<void>((resolve, reject) => {
    let live = workers.length;
    const feed = (w: Worker) => {
      if (stopped || nextToRun >= end) {
        w.postMessage(null);
        return;
      }
      w.postMessage(nextToRun++);
    };
    for (const w of workers) {
      w.on("message", (r: R) => {
        pending.set(r.seed, r);
        // Fold finished seeds in order, so progress and hashes match a sequential sweep.
        for (let next = pending.get(nextToFold); next && !stopped; next = pending.get(nextToFold)) {
          pending.delete(nextToFold++);
          const p = acc.add(next);
          onSeed?.(p);
          if (range.stopAfterFailures !== undefined && p.failures >= range.stopAfterFailures) stopped = true;
        }
        feed(w);
      });
      w.on("error", (e) => {
        for (const other of workers) void other.terminate();
        reject(e);
      });
      w.on("exit", () => {
        if (--live === 0) resolve();
      });
      feed(w);
    }
  });
  return acc.summary;
}
