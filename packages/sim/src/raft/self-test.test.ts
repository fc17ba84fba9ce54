import { describe, expect, it } from "vitest";
import { US_PER_S } from "../scheduler.js";
import { runRaftSim } from "./run.js";
import { runSweep } from "./sweep.js";

/**
 * Checker self-test: with the Raft core's deliberately wrong variants switched on,
 * the simulator must find a violation within 200 seeds — proof that the invariants
 * can fail. Each variant is paired with the scenario built to provoke it; the same
 * scenarios pass with the correct core (scenarios.test.ts and the sweeps).
 */
const MAX_SEEDS = 200;

describe("the simulator catches deliberately broken Raft", () => {
  it("voteTwiceInTerm (a node votes for two candidates in one term) under random faults", () => {
    const s = runSweep({ from: 1, count: MAX_SEEDS, unsafeVariant: "voteTwiceInTerm", stopAfterFailures: 1 });
    expect(s.failures.length).toBe(1);
    expect(s.failures[0]?.violation?.invariant).toBe("election-safety");
  });

  it("commitOldTermEntries (Figure 8: committing old-term entries by counting) in the figure-8 scenario", () => {
    const s = runSweep({
      from: 1,
      count: MAX_SEEDS,
      scenario: "figure-8",
      unsafeVariant: "commitOldTermEntries",
      stopAfterFailures: 1,
    });
    expect(s.failures.length).toBe(1);
    expect(["leader-completeness", "state-machine-safety", "durability"]).toContain(
      s.failures[0]?.violation?.invariant,
    );
  });

  it("acceptStaleTermAppend (a follower takes appends from a deposed leader) under leader transfers and stalled links", () => {
    const s = runSweep({
      from: 1,
      count: MAX_SEEDS,
      scenario: "leader-transfer",
      intensity: "high",
      unsafeVariant: "acceptStaleTermAppend",
      stopAfterFailures: 1,
    });
    expect(s.failures.length).toBe(1);
    expect(["state-machine-safety", "log-matching", "leader-completeness", "no-crash"]).toContain(
      s.failures[0]?.violation?.invariant,
    );
  });

  it("a failing seed replays to the same violation and trace hash", () => {
    const s = runSweep({ from: 1, count: MAX_SEEDS, unsafeVariant: "voteTwiceInTerm", stopAfterFailures: 1 });
    const f = s.failures[0]!;
    const again = runRaftSim({ seed: f.seed, unsafeVariant: "voteTwiceInTerm" });
    expect(again.traceHash).toBe(f.traceHash);
    expect(again.violation).toEqual(f.violation);
    expect(f.replayCommand).toBe(
      `npx hsmpool sim raft --seed ${f.seed} --scenario random --unsafe-variant voteTwiceInTerm --transcript`,
    );
    expect(f.simulatedUs).toBeLessThan(60 * US_PER_S);
  });
});
