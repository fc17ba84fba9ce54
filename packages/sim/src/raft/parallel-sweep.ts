import { Worker } from "node:worker_threads";
import type { RaftSimResult } from "./run.js";
import { SweepAccumulator, type SweepOptions, type SweepProgress, type SweepSummary } from "./sweep.js";

/**
 * runSweep on several worker threads (an imperative shell around the pure runs:
 * results are folded in seed order, so the summary and the combined trace hash are
 * the same as a sequential sweep's). Needs the compiled dist/ (the worker is a .js
 * file); the CLI uses it for `--jobs`.
 */
export async function runSweepParallel(
  options: SweepOptions,
  jobs: number,
  onSeed?: (p: SweepProgress) => void,
): Promise<SweepSummary> {
  const acc = new SweepAccumulator(options.count);
  const pending = new Map<number, RaftSimResult>();
  let nextToRun = options.from;
  let nextToFold = options.from;
  const end = options.from + options.count;
  let stopped = false;
  const { from: _from, count: _count, ...workerOptions } = options;
  const workers = Array.from(
    { length: Math.max(1, Math.min(jobs, options.count)) },
    () => new Worker(new URL("./sweep-worker.js", import.meta.url), { workerData: workerOptions }),
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
      w.on("message", (r: RaftSimResult) => {
        pending.set(r.seed, r);
        // Fold finished seeds in order, so progress and hashes match a sequential sweep.
        for (let next = pending.get(nextToFold); next && !stopped; next = pending.get(nextToFold)) {
          pending.delete(nextToFold++);
          const p = acc.add(next);
          onSeed?.(p);
          if (options.stopAfterFailures !== undefined && p.failures >= options.stopAfterFailures)
            stopped = true;
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
