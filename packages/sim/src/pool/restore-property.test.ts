import { describe, expect, it } from "vitest";
import { runRestoreProperty } from "./restore-property.js";

const SEEDS = Array.from({ length: 10 }, (_, i) => i + 1);

describe("simulator property: a restore yields exactly the backup's key set (shipped nodes, seeded faults)", () => {
  it("holds on every member for 10 seeds, and the restores really undid writes made after the backup", async () => {
    const results = [];
    for (const seed of SEEDS) results.push(await runRestoreProperty({ seed }));
    for (const r of results) {
      expect({ seed: r.seed, ok: r.ok, violation: r.violation }).toEqual({
        seed: r.seed,
        ok: true,
        violation: undefined,
      });
      expect(r.membersChecked).toBe(3);
      expect(r.backupKeys).toBeGreaterThan(0);
    }
    // Not vacuous: in most runs the clients changed the key set between the backup and the restore.
    expect(results.filter((r) => r.changedSinceBackup).length).toBeGreaterThanOrEqual(8);
    expect(results.some((r) => r.keysDroppedByRestore > 0)).toBe(true);
  }, 240_000);

  it("is a pure function of the seed (same trace hash twice)", async () => {
    const a = await runRestoreProperty({ seed: 4 });
    const b = await runRestoreProperty({ seed: 4 });
    expect(a.traceHash).toBe(b.traceHash);
    expect(a.traceHash).toMatch(/^[0-9a-f]{16,}$/);
  }, 120_000);

  it("catches a broken restore that brings back only one key of the backup", async () => {
    let caught: Awaited<ReturnType<typeof runRestoreProperty>> | undefined;
    for (const seed of SEEDS.slice(0, 5)) {
      const r = await runRestoreProperty({ seed, unsafeMode: "oneKeyOnly" });
      if (!r.ok) {
        caught = r;
        break;
      }
    }
    expect(caught?.violation).toMatch(
      /^restore-exact: n\d's key store after the restore is not the backup's key set/,
    );
  }, 120_000);
});
