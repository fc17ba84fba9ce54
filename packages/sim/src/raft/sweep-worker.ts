/**
 * Worker-thread entry for parallel sweeps (see parallel-sweep.ts): runs the seeds
 * its parent hands it, one at a time, with the simulator its job names, and posts
 * each result back. Seeds are independent pure runs, so where a seed runs cannot
 * change its result.
 */
import { parentPort, workerData } from "node:worker_threads";
import { runPoolSim } from "../pool/run.js";
import type { WorkerJob } from "./parallel-sweep.js";
import { runRaftSim } from "./run.js";

const job = workerData as WorkerJob;
const port = parentPort;
if (!port) throw new Error("sweep-worker must run in a worker thread");

port.on("message", async (seed: number | null) => {
  if (seed === null) {
    port.close();
    return;
  }
  port.postMessage(
    job.simulator === "pool"
      ? await runPoolSim({ seed, ...job.options })
      : runRaftSim({ seed, ...job.options }),
  );
});
