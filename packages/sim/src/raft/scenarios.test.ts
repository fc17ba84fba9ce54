import { describe, expect, it } from "vitest";
import { runRaftSim } from "./run.js";
import { SCENARIO_NAMES } from "./scenarios.js";

/**
 * Every scripted scenario passes all invariants for a few seeds, and actually
 * produces the trouble it is named after (so a scenario cannot silently degrade
 * into a quiet cluster).
 */
const SEEDS = [1, 2, 3];

describe.each(SCENARIO_NAMES.filter((n) => n !== "random"))("scenario %s", (scenario) => {
  it.each(SEEDS)(`passes every invariant for seed %i`, (seed) => {
    const r = runRaftSim({ seed, scenario });
    expect(r.violation?.message ?? "ok", r.replayCommand).toBe("ok");
    expect(r.stats.writesAcked).toBeGreaterThan(50);
    expect(r.stats.faultsApplied + r.stats.confChangesApplied + r.stats.leaderChanges).toBeGreaterThan(3);
  });
});

describe("scenarios do what their names say", () => {
  const total = (scenario: string, pick: (r: ReturnType<typeof runRaftSim>) => number) =>
    SEEDS.reduce((s, seed) => s + pick(runRaftSim({ seed, scenario })), 0);

  it("crash-loop crashes and restarts nodes", () => {
    expect(total("crash-loop", (r) => r.stats.restarts)).toBeGreaterThan(20);
  });

  it("membership-churn adds, promotes and removes members", () => {
    expect(total("membership-churn", (r) => r.stats.confChangesApplied)).toBeGreaterThan(20);
  });

  it("snapshot-catchup ships snapshots to lagging or new members", () => {
    expect(total("snapshot-catchup", (r) => r.stats.snapshotsDelivered)).toBeGreaterThan(3);
  });

  it("leader-transfer and isolate-leader change leaders many times", () => {
    expect(total("leader-transfer", (r) => r.stats.leaderChanges)).toBeGreaterThan(30);
    expect(total("isolate-leader", (r) => r.stats.leaderChanges)).toBeGreaterThan(15);
  });
});
