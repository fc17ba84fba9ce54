import { describe, expect, it } from "vitest";
import { runSweep } from "./sweep.js";

/**
 * CI sweep, part a: random fault schedules, 60 simulated seconds per seed,
 * every invariant checked after every event. Seeds 1..250 (the other part runs the rest
 * of 1..500 in a parallel vitest worker).
 */
const FROM = 1;
const CHUNK = 50;

describe("random fault schedules, 60 s each (seeds 1..250)", () => {
  for (let i = 0; i < 5; i++) {
    const from = FROM + i * CHUNK;
    it(`seeds ${from}..${from + CHUNK - 1} pass every invariant`, () => {
      const s = runSweep({ from, count: CHUNK });
      const failures = s.failures.map(
        (f) => `${f.violation?.message.split("\n")[0]}\n  replay: ${f.replayCommand}`,
      );
      expect(failures).toEqual([]);
      expect(s.seedsRun).toBe(CHUNK);
      expect(s.simulatedUs).toBe(CHUNK * 60_000_000);
      expect(s.writesAcked).toBeGreaterThan(CHUNK * 100);
    });
  }
});
