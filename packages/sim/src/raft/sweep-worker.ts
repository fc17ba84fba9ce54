/**
 * Worker-thread entry for parallel sweeps (see parallel-sweep.ts): runs the seeds
 * its parent hands it, one at a time, and posts each result back. Seeds are
 * independent pure runs, so where a seed runs cannot change its result.
 */
import { parentPort, workerData } from "node:worker_threads";
import { runRaftSim } from "./run.js";
import type { SweepOptions } from "./sweep.js";

const options = workerData as Omit<SweepOptions, "from" | "count">;
const port = parentPort;
if (!port) throw new Error("sweep-worker must run in a worker thread");

port.on("message", (seed: number | null) => {
  if (seed === null) {
    port.close();
    return;
  }
  const result = runRaftSim({
    seed,
    ...(options.scenario !== undefined ? { scenario: options.scenario } : {}),
    ...(options.durationUs !== undefined ? { durationUs: options.durationUs } : {}),
    ...(options.intensity !== undefined ? { intensity: options.intensity } : {}),
    ...(options.unsafeVariant !== undefined ? { unsafeVariant: options.unsafeVariant } : {}),
  });
  port.postMessage(result);
});
