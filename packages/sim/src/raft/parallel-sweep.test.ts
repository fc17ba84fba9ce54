import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runSweep } from "./sweep.js";

// The worker thread runs compiled JS, so this test uses dist/ (built by `npm test`
// before vitest runs); with no build it is skipped rather than testing stale code.
const distSweep = fileURLToPath(new URL("../../dist/raft/parallel-sweep.js", import.meta.url));

describe("parallel sweep", () => {
  it.runIf(existsSync(distSweep))(
    "gives the same failures, totals and combined hash as a sequential sweep",
    async () => {
      const { runSweepParallel } = (await import(distSweep)) as typeof import("./parallel-sweep.js");
      const options = {
        from: 40,
        count: 6,
        durationUs: 20_000_000,
        unsafeVariant: "voteTwiceInTerm" as const,
      };
      const parallel = await runSweepParallel(options, 2);
      const sequential = runSweep(options);
      expect(parallel.traceHash).toBe(sequential.traceHash);
      expect(parallel.seedsRun).toBe(6);
      expect(parallel.failures.map((f) => f.seed)).toEqual(sequential.failures.map((f) => f.seed));
      expect(parallel.events).toBe(sequential.events);
    },
  );
});
