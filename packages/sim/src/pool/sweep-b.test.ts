import { describe, expect, it, vi } from "vitest";
import { runPoolSweep } from "./sweep.js";

// Each run boots the shipped node in virtual time: bounds are generous for a loaded machine (behaviour is checked, not speed).
vi.setConfig({ testTimeout: 1_200_000, hookTimeout: 1_200_000 });

/**
 * CI sweep, part b: random fault schedules (crash/restart with torn WAL tails, pauses,
 * partitions, link faults, transient HSM faults), 30 simulated seconds per seed, every
 * pool and Raft invariant checked as the run goes and at its end. Seeds 51..100
 * (the other part runs the rest of 1..100 in a parallel vitest worker).
 */
const FROM = 51;
const CHUNK = 25;

describe("pool under random faults, 30 s each (seeds 51..100)", () => {
  for (let i = 0; i < 2; i++) {
    const from = FROM + i * CHUNK;
    it(`seeds ${from}..${from + CHUNK - 1} keep every pool invariant`, async () => {
      let crashes = 0;
      let pauses = 0;
      const s = await runPoolSweep({ from, count: CHUNK }, (p) => {
        crashes += p.last.stats.crashes;
        pauses += p.last.stats.pauses;
      });
      const failures = s.failures.map(
        (f) => `${f.violation?.message.split("\n")[0]}\n  replay: ${f.replayCommand}`,
      );
      expect(failures).toEqual([]);
      expect(s.seedsRun).toBe(CHUNK);
      expect(s.simulatedUs).toBe(CHUNK * 30_000_000);
      expect(s.faultsApplied).toBeGreaterThan(CHUNK * 3);
      expect(crashes).toBeGreaterThan(CHUNK / 2);
      expect(pauses).toBeGreaterThan(CHUNK / 4);
      expect(s.writesAcked).toBeGreaterThan(CHUNK * 50);
      expect(s.readsChecked).toBeGreaterThan(CHUNK * 50);
    });
  }
});
