import { isHsmPoolError } from "@hsmpool/errors";
import { Prng } from "@hsmpool/faults";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type InventoryRack, placeMembers } from "./placement.js";

/** Inventories of 0..8 racks with 0..4 servers each, plus a random subset of busy servers. */
const inventoryArb = fc.array(fc.nat({ max: 4 }), { maxLength: 8 }).chain((serverCounts) => {
  const racks: InventoryRack[] = serverCounts.map((n, r) => ({
    id: `rack-${r + 1}`,
    servers: Array.from({ length: n }, (_, s) => ({ id: `r${r + 1}-s${s + 1}` })),
  }));
  const allServers = racks.flatMap((r) => r.servers.map((s) => s.id));
  return fc.record({
    racks: fc.constant(racks),
    busy: fc.subarray(allServers),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    count: fc.integer({ min: 1, max: 4 }),
  });
});

function racksWithFreeServer(racks: InventoryRack[], busy: Set<string>): number {
  return racks.filter((r) => r.servers.some((s) => !busy.has(s.id))).length;
}

describe("placeMembers", () => {
  it("never puts two members in one rack and only uses free servers of the inventory", () => {
    fc.assert(
      fc.property(inventoryArb, ({ racks, busy, seed, count }) => {
        const busySet = new Set(busy);
        fc.pre(racksWithFreeServer(racks, busySet) >= count);
        const placed = placeMembers({ racks, count, busyServers: busySet, seed });
        expect(placed).toHaveLength(count);
        expect(new Set(placed.map((p) => p.rackId)).size).toBe(count);
        for (const p of placed) {
          const rack = racks.find((r) => r.id === p.rackId);
          expect(rack?.servers.some((s) => s.id === p.serverId)).toBe(true);
          expect(busySet.has(p.serverId)).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("is a function of the inventory as a set, the busy servers and the seed (listing order does not matter)", () => {
    fc.assert(
      fc.property(inventoryArb, fc.integer(), ({ racks, busy, seed, count }, shuffleSeed) => {
        const busySet = new Set(busy);
        fc.pre(racksWithFreeServer(racks, busySet) >= count);
        const prng = Prng.fromSeed(shuffleSeed);
        const reordered = prng.shuffled(racks).map((r) => ({
          id: r.id,
          servers: prng.shuffled(r.servers),
        }));
        const a = placeMembers({ racks, count, busyServers: busySet, seed });
        const b = placeMembers({ racks, count, busyServers: busySet, seed });
        const c = placeMembers({ racks: reordered, count, busyServers: busySet, seed });
        expect(b).toEqual(a);
        expect(c).toEqual(a);
      }),
      { numRuns: 200 },
    );
  });

  it("fails with ServiceUnavailable exactly when fewer racks than members have a free server", () => {
    fc.assert(
      fc.property(inventoryArb, ({ racks, busy, seed, count }) => {
        const busySet = new Set(busy);
        const possible = racksWithFreeServer(racks, busySet) >= count;
        let error: unknown;
        try {
          placeMembers({ racks, count, busyServers: busySet, seed });
        } catch (e) {
          error = e;
        }
        expect(error === undefined).toBe(possible);
        if (!possible) {
          expect(isHsmPoolError(error, "ServiceUnavailable")).toBe(true);
          expect((error as Error).message).toContain(`cannot place ${count} members in distinct racks`);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("keeps out of racks it is told to avoid (healing: the racks of live members)", () => {
    const racks = [1, 2, 3, 4].map((r) => ({
      id: `rack-${r}`,
      servers: [{ id: `r${r}-s1` }, { id: `r${r}-s2` }],
    }));
    for (let seed = 0; seed < 50; seed++) {
      const [p] = placeMembers({ racks, count: 1, busyRacks: new Set(["rack-1", "rack-2", "rack-3"]), seed });
      expect(p?.rackId).toBe("rack-4");
    }
    expect(() =>
      placeMembers({ racks, count: 2, busyRacks: new Set(["rack-1", "rack-2", "rack-3"]), seed: 1 }),
    ).toThrow(/only 1 \(rack-4\) have a free server/);
  });

  it("spreads over the fabric as the seed changes", () => {
    const racks = [1, 2, 3, 4, 5].map((r) => ({
      id: `rack-${r}`,
      servers: [{ id: `r${r}-s1` }, { id: `r${r}-s2` }],
    }));
    const seen = new Set<string>();
    for (let seed = 0; seed < 40; seed++) {
      seen.add(
        placeMembers({ racks, count: 3, seed })
          .map((p) => p.serverId)
          .sort()
          .join(","),
      );
    }
    expect(seen.size).toBeGreaterThan(10);
  });

  it("rejects an inventory that lists a server twice and a non-positive count", () => {
    const dup = [
      { id: "rack-1", servers: [{ id: "s" }] },
      { id: "rack-2", servers: [{ id: "s" }] },
    ];
    expect(() => placeMembers({ racks: dup, count: 1, seed: 0 })).toThrow(/server s twice/);
    expect(() => placeMembers({ racks: dup.slice(0, 1), count: 0, seed: 0 })).toThrow(/positive integer/);
  });
});
