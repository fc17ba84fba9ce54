import { beforeAll, describe, expect, it } from "vitest";
import { type PoolSimResult, runPoolSim } from "./run.js";

/**
 * Scripted: the primary crashes right after proposing Genesis — at once (a third of the
 * seeds: the entry never leaves it) or within 6 ms (before or after the entry commits) —
 * and stays down 3-5 s. Whatever the timing, the pool must never hold two owner roots
 * or two DEKs, and (after the heal) must be fully synced and serving.
 */
const SEEDS = Array.from({ length: 45 }, (_, i) => i + 1);
let runs: PoolSimResult[] = [];

/** The crashed primary's own Genesis won, so its partition holds the only copy of the owner root. */
const ownGenesisWon = (r: PoolSimResult) => r.genesis.committedBy === r.genesis.proposers[0];

describe("genesis-crash: the primary crashes right after proposing Genesis", () => {
  beforeAll(() => {
    runs = SEEDS.map((seed) => runPoolSim({ seed, scenario: "genesis-crash" }));
  });

  it("crashes the proposer in every run, both before and after its Genesis commits", () => {
    for (const r of runs) {
      expect(r.stats.crashes, r.replayCommand).toBe(1);
      expect(r.genesis.proposers.length, r.replayCommand).toBeGreaterThanOrEqual(1);
    }
    // Both timings occur: the proposal lost (another member's Genesis wins) and committed.
    expect(runs.filter((r) => r.genesis.committedBy !== null && !ownGenesisWon(r)).length).toBeGreaterThan(5);
    expect(runs.filter(ownGenesisWon).length).toBeGreaterThan(5);
  });

  it("never shows two owner roots, two DEKs, a key operation without ownership or a lost create", () => {
    const safetyViolations = runs
      .filter((r) => !r.ok && r.violation?.invariant !== "liveness")
      .map((r) => `${r.violation?.message.split("\n")[0]} (${r.replayCommand})`);
    expect(safetyViolations).toEqual([]);
  });

  it("heals completely when the crash lost the proposal (a second Genesis, by another member, commits)", () => {
    const lost = runs.filter((r) => r.genesis.committedBy !== null && !ownGenesisWon(r));
    for (const r of lost) {
      expect(r.violation?.message ?? "ok", r.replayCommand).toBe("ok");
      expect(r.genesis.proposers.length).toBeGreaterThanOrEqual(2);
    }
  });

  /**
   * KNOWN BUG in @hsmpool/pool (and packages/node, which drives it the same way): the
   * primary records no ownership checkpoint until it has *applied* its committed
   * Genesis. If it crashes after the entry reached a majority but before it applied it,
   * it restarts as a blank member and zeroizes its partition — the only place the
   * committed owner root, DEK and pool key exist. Every member then asks for the owner
   * root forever (refused: OwnershipPending) and the pool never serves. Fix belongs in
   * the pool protocol (e.g. checkpoint the proposed material before proposing Genesis,
   * or check the partition for the Genesis keys before zeroizing). When it is fixed,
   * this test starts failing: turn `it.fails` into `it`.
   */
  it.fails("heals when the primary's own Genesis committed (whether or not it applied it before the crash)", () => {
    const own = runs.filter(ownGenesisWon);
    const stuck = own.filter((r) => !r.ok).map((r) => `${r.violation?.message} (${r.replayCommand})`);
    expect(stuck).toEqual([]);
  });

  it("the stuck runs are exactly the ones where the crashed primary's own Genesis committed", () => {
    for (const r of runs.filter((x) => !x.ok)) {
      expect(r.violation?.invariant).toBe("liveness");
      expect(ownGenesisWon(r), r.replayCommand).toBe(true);
      expect(r.violation?.message).toMatch(
        /does not hold the pool's ownership \(phase requestingOwnerRoot\)/,
      );
    }
  });
});
