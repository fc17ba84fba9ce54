import { isHsmPoolError } from "@hsmpool/errors";
import { Prng } from "@hsmpool/faults";
import { describe, expect, it } from "vitest";
import { INTENSITIES } from "../faults.js";
import { US_PER_S } from "../scheduler.js";
import { RaftCluster } from "./cluster.js";
import { InvariantViolation } from "./invariants.js";
import { runRaftSim, shrinkFailure } from "./run.js";
import { findScenario } from "./scenarios.js";

describe("runRaftSim determinism and replay", () => {
  it("the same seed twice gives the same trace hash and the same outcome", () => {
    const a = runRaftSim({ seed: 4242 });
    const b = runRaftSim({ seed: 4242 });
    expect(a.ok).toBe(true);
    expect(a.traceHash).toMatch(/^[0-9a-f]{16}$/);
    expect(b.traceHash).toBe(a.traceHash);
    expect(b.stats).toEqual(a.stats);
  });

  it("different seeds give different trace hashes", () => {
    const hashes = new Set(
      [1, 2, 3, 4, 5].map((seed) => runRaftSim({ seed, durationUs: 20 * US_PER_S }).traceHash),
    );
    expect(hashes.size).toBe(5);
  });

  it("turning the transcript on does not change the run", () => {
    const lines: string[] = [];
    const quiet = runRaftSim({ seed: 77, durationUs: 20 * US_PER_S });
    const loud = runRaftSim({ seed: 77, durationUs: 20 * US_PER_S, transcript: (l) => lines.push(l) });
    expect(loud.traceHash).toBe(quiet.traceHash);
    expect(lines.length).toBeGreaterThan(1000);
    expect(
      lines.some((l) => /^t=\d+\.\d{3}s n\d -> n\d AppendEntries\(term \d+, idx \d+\.\.\d+/.test(l)),
    ).toBe(true);
    expect(lines.some((l) => /is now leader \(term \d+\)/.test(l))).toBe(true);
  });

  it("reports a replay command with the seed and scenario", () => {
    const r = runRaftSim({ seed: 12, scenario: "crash-loop", durationUs: 15 * US_PER_S, intensity: "high" });
    expect(r.replayCommand).toBe(
      "npx hsmpool sim raft --seed 12 --scenario crash-loop --duration 15s --intensity high --transcript",
    );
  });

  it("refuses bad options with BadParameter and runs nothing", () => {
    const bad = [
      { seed: -1 },
      { seed: 1.5 },
      { seed: 1, scenario: "nope" },
      { seed: 1, durationUs: 10 },
      { seed: 1, intensity: "extreme" as "high" },
    ];
    for (const o of bad) {
      let err: unknown;
      try {
        runRaftSim(o);
      } catch (e) {
        err = e;
      }
      expect(isHsmPoolError(err, "BadParameter")).toBe(true);
    }
  });

  it("runs too short for a liveness window still check safety, and say so by passing", () => {
    const r = runRaftSim({ seed: 3, durationUs: 5 * US_PER_S });
    expect(r.ok).toBe(true);
    expect(r.simulatedUs).toBe(5 * US_PER_S);
  });
});

describe("liveness checker", () => {
  it("fails a run whose cluster cannot show progress within the bound", () => {
    // A bound of 1 µs after the heal: no write can possibly commit that fast.
    const prng = Prng.fromSeed(8);
    const plan = findScenario("isolate-leader")!.plan({
      prng: prng.split("scenario"),
      intensity: INTENSITIES.medium,
      fromUs: US_PER_S,
      untilUs: 10 * US_PER_S,
    });
    const cluster = new RaftCluster(prng.split("cluster"), {
      plan,
      intensity: INTENSITIES.medium,
      durationUs: 20 * US_PER_S,
      healAtUs: 10 * US_PER_S,
      livenessBoundUs: 1,
    });
    cluster.start();
    let err: unknown;
    try {
      cluster.run();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvariantViolation);
    expect((err as InvariantViolation).invariant).toBe("liveness");
  });
});

describe("shrinking a failing schedule", () => {
  it("keeps a failing subset of the faults whose replay command reproduces the failure", () => {
    // voteTwiceInTerm fails fast; find a failing seed, then shrink its faults.
    let failing = runRaftSim({ seed: 1, unsafeVariant: "voteTwiceInTerm", durationUs: 20 * US_PER_S });
    for (let seed = 2; failing.ok && seed < 50; seed++) {
      failing = runRaftSim({ seed, unsafeVariant: "voteTwiceInTerm", durationUs: 20 * US_PER_S });
    }
    expect(failing.ok).toBe(false);
    const shrunk = shrinkFailure(
      failing,
      { unsafeVariant: "voteTwiceInTerm", durationUs: 20 * US_PER_S },
      40,
    );
    expect(shrunk.keepFaults.length).toBeLessThanOrEqual(failing.faults.length);
    expect(shrunk.result.violation?.invariant).toBe(failing.violation?.invariant);
    const replay = runRaftSim({
      seed: failing.seed,
      unsafeVariant: "voteTwiceInTerm",
      durationUs: 20 * US_PER_S,
      keepFaults: shrunk.keepFaults,
    });
    expect(replay.traceHash).toBe(shrunk.result.traceHash);
    expect(replay.replayCommand).toContain("--keep-faults");
  });
});
