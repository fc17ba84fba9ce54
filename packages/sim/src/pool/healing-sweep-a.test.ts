import { describe, expect, it, vi } from "vitest";
import { runPoolSweep } from "./sweep.js";

// Each run boots the shipped node in virtual time: bounds are generous for a loaded machine (behaviour is checked, not speed).
vi.setConfig({ testTimeout: 1_200_000, hookTimeout: 1_200_000 });

/**
 * Healing sweep, part a (seeds 1..25; the other part runs in a parallel
 * vitest worker): kills, server losses, HFC crashes and light random faults, 60
 * simulated seconds per seed, every pool invariant plus "healed within 30 s".
 */
const FROM = 1;
const COUNT = 25;

describe("pool healing sweep (seeds 1..25)", () => {
  it(`seeds ${FROM}..${FROM + COUNT - 1} heal to three synced voters in three racks`, async () => {
    let kills = 0;
    const s = await runPoolSweep({ from: FROM, count: COUNT, scenario: "healing" }, (p) => {
      kills += p.last.stats.crashes;
    });
    const failures = s.failures.map(
      (f) => `${f.violation?.message.split("\n")[0]}\n  replay: ${f.replayCommand}`,
    );
    expect(failures).toEqual([]);
    expect(s.seedsRun).toBe(COUNT);
    expect(s.faultsApplied).toBeGreaterThan(COUNT * 2);
    expect(kills).toBeGreaterThan(COUNT);
  });
});
