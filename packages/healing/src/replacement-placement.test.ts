import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { placeReplacement } from "./replacement-placement.js";
import { config, Driver } from "./testing/healing.js";

describe("placeReplacement", () => {
  it("never picks a lost server, a server a member holds, or a rack a live member uses; prefers racks that lost nothing", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.nat(40), { maxLength: 4 }),
        fc.boolean(),
        (racks, perRack, lostPicks, upgrade) => {
          const cfg = config(racks, perRack);
          const d = new Driver(cfg).boot();
          const servers = cfg.inventory.flatMap((r) => r.servers.map((s) => s.id));
          const lost = [...new Set(lostPicks.map((i) => servers[i % servers.length] as string))];
          d.state.lostServers = lost.map((serverId) => ({ serverId, atMs: 0 }));
          const leaving = upgrade ? "n1" : null;
          const r = placeReplacement(cfg, d.state, leaving);
          const live = d.state.members.filter((m) => m.id !== leaving);
          const blockedRacks = new Set(live.map((m) => m.rackId));
          const blockedServers = new Set([...lost, ...d.state.members.map((m) => m.serverId)]);
          const candidates = cfg.inventory.filter(
            (rack) => !blockedRacks.has(rack.id) && rack.servers.some((s) => !blockedServers.has(s.id)),
          );
          if (!r.ok) {
            expect(candidates).toEqual([]);
            expect(r.reason).toMatch(/^no spare server/);
            return;
          }
          expect(blockedServers.has(r.placed.serverId)).toBe(false);
          expect(blockedRacks.has(r.placed.rackId)).toBe(false);
          const scarred = (rackId: string) =>
            cfg.inventory.find((x) => x.id === rackId)?.servers.some((s) => lost.includes(s.id)) ?? false;
          if (candidates.some((c) => !scarred(c.id))) expect(scarred(r.placed.rackId)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("is deterministic for a given state", () => {
    const d = new Driver(config(6, 3)).boot();
    const a = placeReplacement(d.cfg, d.state, null);
    const b = placeReplacement(d.cfg, structuredClone(d.state), null);
    expect(a).toEqual(b);
  });
});
