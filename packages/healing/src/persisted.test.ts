import { isHsmPoolError } from "@hsmpool/errors";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { freshRuntime } from "./controller.js";
import { parseFabricStateFile, parseHealingFile, restoreHealingState, toHealingFile } from "./persisted.js";
import { Driver } from "./testing/healing.js";

/** A state reached by a random mix of crashes, losses and upgrades. */
const stateArb = fc
  .array(fc.oneof(fc.constant("crash"), fc.constant("lose"), fc.constant("pause"), fc.constant("upgrade")), {
    maxLength: 6,
  })
  .map((steps) => {
    const d = new Driver().boot();
    let t = 0;
    for (const s of steps) {
      t += 100;
      if (s === "crash") d.exited("n2", t);
      if (s === "lose" && !d.state.lostServers.length)
        d.feed({ type: "server-lost", serverId: "r3-s1", atMs: t });
      if (s === "pause") d.feed({ type: "set-paused", paused: !d.state.paused, atMs: t });
      if (s === "upgrade")
        d.feed({ type: "upgrade-requested", bundleDir: "/v2", svn: 2, mrsigner: "bb".repeat(32), atMs: t });
    }
    return d.state;
  });

describe("healing state on disk", () => {
  it("round-trips through JSON: a restarted HFC starts from the same records, members and lost servers", () => {
    fc.assert(
      fc.property(stateArb, fc.integer({ min: 1, max: 65535 }), (state, port) => {
        const file = parseHealingFile("h.json", JSON.parse(JSON.stringify(toHealingFile(state, port))));
        const fabric = parseFabricStateFile(
          "f.json",
          JSON.parse(JSON.stringify({ version: 1, lostServers: state.lostServers })),
        );
        const restored = restoreHealingState(JSON.parse(JSON.stringify(state.members)), file, fabric);
        expect(file.controlPort).toBe(port);
        expect({ ...restored, runtime: {} }).toEqual({ ...state, runtime: {} });
        for (const id of Object.keys(restored.runtime)) expect(restored.runtime[id]).toEqual(freshRuntime());
      }),
      { numRuns: 100 },
    );
  });

  it("never reuses a member id, even when healing.json lags behind pool.json", () => {
    const d = new Driver().boot();
    const members = [
      ...d.state.members,
      { ...d.state.members[0], id: "n7" } as (typeof d.state.members)[number],
    ];
    const restored = restoreHealingState(
      members,
      { ...toHealingFile(d.state, 1), nextMemberNumber: 4 },
      undefined,
    );
    expect(restored.nextMemberNumber).toBe(8);
  });

  it.each([
    ["not an object", 42],
    ["wrong version", { version: 2 }],
    [
      "a phase that does not exist",
      {
        ...toHealingFile(new Driver().state, 1),
        healings: [
          {
            id: "h1",
            kind: "restart",
            memberId: "n1",
            replacementId: "",
            phase: "rebooting",
            phases: [],
            reason: "",
          },
        ],
      },
    ],
    ["a port out of range", { ...toHealingFile(new Driver().state, 1), controlPort: 70000 }],
  ])("a healing.json with %s is an IntegrityError naming the file", (_what, raw) => {
    const e = (() => {
      try {
        return parseHealingFile("/run/healing.json", raw);
      } catch (err) {
        return err;
      }
    })();
    expect(isHsmPoolError(e, "IntegrityError")).toBe(true);
    expect((e as Error).message).toMatch(/\/run\/healing.json is malformed/);
  });

  it("a fabric-state.json with a bad entry is an IntegrityError", () => {
    expect(() =>
      parseFabricStateFile("/run/fabric-state.json", { version: 1, lostServers: [{ serverId: 3 }] }),
    ).toThrow(/fabric-state.json is malformed/);
  });
});
