import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { isHsmPoolError } from "@hsmpool/errors";
import { Prng } from "@hsmpool/faults";
import { describe, expect, it, vi } from "vitest";
import { INTENSITIES } from "../faults.js";
import { US_PER_S } from "../scheduler.js";
import { PoolCluster } from "./cluster.js";
import { runPoolSim, shrinkPoolFailure } from "./run.js";
import { findPoolScenario } from "./scenarios.js";
import { runPoolSweep } from "./sweep.js";

// Each run boots the shipped node in virtual time: bounds are generous for a loaded machine (behaviour is checked, not speed).
vi.setConfig({ testTimeout: 1_200_000, hookTimeout: 1_200_000 });

describe("runPoolSim determinism and replay", () => {
  it("the same seed twice gives the same trace hash, stats and history", async () => {
    const a = await runPoolSim({ seed: 4242 });
    const b = await runPoolSim({ seed: 4242 });
    expect(a.ok, a.violation?.message).toBe(true);
    expect(a.traceHash).toMatch(/^[0-9a-f]{16}$/);
    expect(b.traceHash).toBe(a.traceHash);
    expect(b.stats).toEqual(a.stats);
    expect(b.genesis).toEqual(a.genesis);
  });

  it("different seeds give different trace hashes", async () => {
    const hashes = new Set(await seedsHashes([1, 2, 3, 4, 5]));
    expect(hashes.size).toBe(5);
  });

  it("turning the transcript on does not change the run, and the transcript tells the bootstrap story", async () => {
    const lines: string[] = [];
    const quiet = await runPoolSim({ seed: 77, durationUs: 8 * US_PER_S });
    const loud = await runPoolSim({ seed: 77, durationUs: 8 * US_PER_S, transcript: (l) => lines.push(l) });
    expect(loud.traceHash).toBe(quiet.traceHash);
    const has = (re: RegExp) => lines.some((l) => re.test(l));
    expect(has(/^t=\d+\.\d{3}s n\d proposes Genesis$/)).toBe(true);
    expect(has(/n\d applies Genesis by n\d \(the pool's owner root\) at index \d+/)).toBe(true);
    expect(has(/n\d -> n\d ownershipRequest \(\d+ bytes\)/)).toBe(true);
    expect(has(/n\d -> n\d dekResponse \(\d+ bytes\)/)).toBe(true);
    // The shipped node's own log: its ownership driver's phase changes, as JSON lines.
    expect(has(/^t=\S+ n\d log \{.*"from":"receivingDek","to":"synced","msg":"ownership phase"\}$/)).toBe(
      true,
    );
    expect(has(/client <- n\d op \d+ \(c\d\) create key-\d: v\d+/)).toBe(true);
  });

  it("bootstraps a pool where all three members hold ownership and clients are served", async () => {
    const r = await runPoolSim({ seed: 3, scenario: "random", durationUs: 30 * US_PER_S });
    expect(r.ok, r.violation?.message).toBe(true);
    expect(r.genesis.committedBy).toMatch(/^n[123]$/);
    expect(r.stats.writesAcked).toBeGreaterThan(50);
    expect(r.stats.readsChecked).toBeGreaterThan(50);
    expect(r.stats.opsLinearized).toBeGreaterThan(100);
    // Before the members synced, gets and signs were refused, not served.
    expect(r.stats.refusedOwnershipPending).toBeGreaterThan(0);
  });

  it("reports a replay command with seed, scenario and the non-default flags", async () => {
    const r = await runPoolSim({
      seed: 12,
      scenario: "bootstrap",
      durationUs: 15 * US_PER_S,
      intensity: "high",
    });
    expect(r.replayCommand).toBe(
      "npx hsmpool sim pool --seed 12 --scenario bootstrap --duration 15s --intensity high --transcript",
    );
    const d = await runPoolSim({
      seed: 5,
      durationUs: 30 * US_PER_S,
      unsafeMode: "readWithoutBarrier",
      keepFaults: [0, 2],
    });
    expect(d.replayCommand).toBe(
      "npx hsmpool sim pool --seed 5 --scenario random --keep-faults 0,2 --unsafe-mode readWithoutBarrier --transcript",
    );
  });

  it("refuses bad options with BadParameter and runs nothing", async () => {
    const bad = [
      { seed: -1 },
      { seed: 1.5 },
      { seed: 1, scenario: "nope" },
      { seed: 1, durationUs: 10 },
      { seed: 1, intensity: "extreme" as "high" },
      { seed: 1, unsafeMode: "yolo" as "readWithoutBarrier" },
      { seed: 1, keepFaults: [-2] },
    ];
    for (const o of bad) {
      let err: unknown;
      try {
        await runPoolSim(o);
      } catch (e) {
        err = e;
      }
      expect(isHsmPoolError(err, "BadParameter"), JSON.stringify(o)).toBe(true);
    }
  });

  it("keepFaults replays a subset of the schedule and 'none' runs without faults", async () => {
    const full = await runPoolSim({ seed: 9 });
    expect(full.faults.length).toBeGreaterThan(2);
    const none = await runPoolSim({ seed: 9, keepFaults: [] });
    expect(none.faults).toEqual([]);
    expect(none.scheduledFaults).toBe(full.faults.length);
    expect(none.stats.faultsApplied).toBe(0);
    expect(none.ok, none.violation?.message).toBe(true);
  });

  it("shrinking keeps the failure and drops faults that do not matter", async () => {
    const s = await runPoolSweep({
      from: 1,
      count: 20,
      unsafeMode: "readWithoutBarrier",
      stopAfterFailures: 1,
    });
    const failing = s.failures[0]!;
    expect(failing.faults.length).toBeGreaterThan(1);
    const shrunk = await shrinkPoolFailure(failing, { unsafeMode: "readWithoutBarrier" }, 40);
    expect(shrunk.result.violation?.invariant).toBe("linearizable-key-store");
    expect(shrunk.keepFaults.length).toBeLessThan(failing.faults.length);
    const replay = await runPoolSim({
      seed: failing.seed,
      unsafeMode: "readWithoutBarrier",
      keepFaults: shrunk.keepFaults,
    });
    expect(replay.traceHash).toBe(shrunk.result.traceHash);
  });
});

// The worker thread runs compiled JS, so this test uses dist/ (built by `npm test`
// before vitest runs); with no build it is skipped rather than testing stale code.
const distSweep = fileURLToPath(new URL("../../dist/raft/parallel-sweep.js", import.meta.url));

describe("parallel pool sweep", () => {
  it.runIf(existsSync(distSweep))(
    "gives the same failures, totals and combined hash as a sequential sweep",
    async () => {
      const { runPoolSweepParallel } = (await import(
        distSweep
      )) as typeof import("../raft/parallel-sweep.js");
      const options = {
        from: 30,
        count: 4,
        durationUs: 8 * US_PER_S,
        unsafeMode: "ackBeforeCommit" as const,
      };
      const parallel = await runPoolSweepParallel(options, 2);
      const sequential = await runPoolSweep(options);
      expect(parallel.traceHash).toBe(sequential.traceHash);
      expect(parallel.seedsRun).toBe(4);
      expect(parallel.failures.map((f) => f.seed)).toEqual(sequential.failures.map((f) => f.seed));
      expect(parallel.events).toBe(sequential.events);
    },
  );
});

describe("confidentiality in the simulated pool", () => {
  it("no HSM key material reaches a member's disk (WAL, ownership checkpoint) or a transfer blob's bytes", async () => {
    const plan = findPoolScenario("random")!.plan({
      prng: Prng.fromSeed(21).split("plan"),
      intensity: INTENSITIES.medium,
      fromUs: US_PER_S,
      untilUs: 12 * US_PER_S,
    });
    const cluster = new PoolCluster(Prng.fromSeed(21), {
      plan,
      intensity: INTENSITIES.medium,
      durationUs: 20 * US_PER_S,
      healAtUs: 12 * US_PER_S,
      livenessBoundUs: Number.POSITIVE_INFINITY,
      workloadStopUs: 19 * US_PER_S,
    });
    cluster.start();
    await cluster.run();
    const stored: Uint8Array[] = [];
    const secrets: Uint8Array[] = [];
    for (const m of cluster.members.values()) {
      stored.push(...m.disk.durableFiles());
      const keys = (m.partition as unknown as { keys: Map<string, { material: Uint8Array }> }).keys;
      for (const k of keys.values()) secrets.push(k.material);
    }
    expect(cluster.stats.writesAcked).toBeGreaterThan(20);
    // Enough keys in the partitions for the scan to mean something (their number follows the seed's trajectory).
    expect(secrets.length).toBeGreaterThan(10);
    const contains = (hay: Uint8Array, needle: Uint8Array) => {
      outer: for (let i = 0; i + needle.length <= hay.length; i++) {
        for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
        return true;
      }
      return false;
    };
    for (const secret of secrets) {
      const probe = secret.subarray(0, 12);
      expect(stored.some((bytes) => contains(bytes, probe))).toBe(false);
    }
  });
});

async function seedsHashes(seeds: number[]): Promise<string[]> {
  const out: string[] = [];
  for (const seed of seeds) out.push((await runPoolSim({ seed, durationUs: 8 * US_PER_S })).traceHash);
  return out;
}
