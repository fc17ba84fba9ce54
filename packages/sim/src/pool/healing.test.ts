import { describe, expect, it, vi } from "vitest";
import { runPoolSim } from "./run.js";

// Each run boots the shipped node in virtual time: bounds are generous for a loaded machine (behaviour is checked, not speed).
vi.setConfig({ testTimeout: 1_200_000, hookTimeout: 1_200_000 });

/**
 * The healing scenario: the HFC's pure controller (@hsmpool/healing) runs as a sim
 * actor while processes are killed, servers lost and the HFC itself crashes; 30 s after
 * the last fault heals the pool must have three running, synced voters with one DEK in
 * three distinct racks (and every other pool invariant held throughout).
 */
describe("healing scenario", () => {
  it("is deterministic: the same seed gives the same trace hash", async () => {
    const a = await runPoolSim({ seed: 7, scenario: "healing" });
    const b = await runPoolSim({ seed: 7, scenario: "healing" });
    const c = await runPoolSim({ seed: 8, scenario: "healing" });
    expect(a.traceHash).toBe(b.traceHash);
    expect(a.traceHash).not.toBe(c.traceHash);
    expect(a.stats).toEqual(b.stats);
  });

  it("replaces a lost server through a join on a fresh member and restarts killed ones", async () => {
    const lines: string[] = [];
    const r = await runPoolSim({ seed: 3, scenario: "healing", transcript: (l) => lines.push(l) });
    expect(r.violation?.message).toBeUndefined();
    expect(lines.some((l) => /server \S+ \(n\d\) is lost/.test(l))).toBe(true);
    expect(lines.some((l) => /HFC fences n\d/.test(l))).toBe(true);
    expect(lines.some((l) => /"change":{"type":"addLearner","node":"n[4-9]"}/.test(l))).toBe(true);
    expect(lines.some((l) => /"change":{"type":"addVoter","node":"n[4-9]"}/.test(l))).toBe(true);
    expect(lines.some((l) => /"change":{"type":"removeNode","node":"n\d"}/.test(l))).toBe(true);
    expect(lines.some((l) => /process is killed/.test(l))).toBe(true);
    expect(lines.some((l) => /healed ok: voters/.test(l))).toBe(true);
  });

  it("self-test: a controller that never replaces lost servers breaks the healed invariant", async () => {
    const failing = [];
    for (const seed of [1, 2, 3])
      failing.push(await runPoolSim({ seed, scenario: "healing", healingUnsafeMode: "neverReplace" }));
    for (const r of failing) expect(r.violation?.message).toMatch(/healed: .*(not running|voters)/);
  });

  it("self-test: a controller that replaces into a used rack breaks the healed invariant", async () => {
    const failing: number[] = [];
    for (const seed of [1, 2, 3, 4, 5]) {
      const r = await runPoolSim({ seed, scenario: "healing", healingUnsafeMode: "sameRackReplacement" });
      if (r.violation?.message.includes("share a rack")) failing.push(seed);
    }
    expect(failing.length).toBeGreaterThanOrEqual(3);
  });
});
