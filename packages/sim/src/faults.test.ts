import { linksCut, Prng } from "@hsmpool/faults";
import { describe, expect, it } from "vitest";
import {
  describeFault,
  INTENSITIES,
  linksOf,
  randomSchedule,
  resolveShape,
  resolveTarget,
  shrinkList,
} from "./faults.js";

const N5 = ["n1", "n2", "n3", "n4", "n5"];

describe("fault schedules", () => {
  it("are a pure function of the seed and stay inside the fault window", () => {
    const a = randomSchedule(Prng.fromSeed(9), INTENSITIES.medium, 1_000_000, 48_000_000);
    const b = randomSchedule(Prng.fromSeed(9), INTENSITIES.medium, 1_000_000, 48_000_000);
    expect(a).toEqual(b);
    expect(a.length).toBeGreaterThan(5);
    for (const f of a) {
      expect(f.atUs).toBeGreaterThanOrEqual(1_000_000);
      expect(f.atUs + f.durationUs).toBeLessThanOrEqual(48_000_000);
    }
    expect(randomSchedule(Prng.fromSeed(10), INTENSITIES.medium, 1_000_000, 48_000_000)).not.toEqual(a);
  });

  it("higher intensity means more faults", () => {
    const count = (name: "low" | "high") => {
      let n = 0;
      for (let s = 0; s < 20; s++)
        n += randomSchedule(Prng.fromSeed(s), INTENSITIES[name], 0, 48_000_000).length;
      return n;
    };
    expect(count("high")).toBeGreaterThan(3 * count("low"));
  });

  it("resolve symbolic targets: the leader, a follower, or a named node", () => {
    const p = Prng.fromSeed(1);
    expect(resolveTarget("leader", N5, "n3", p)).toBe("n3");
    for (let i = 0; i < 20; i++) expect(resolveTarget("follower", N5, "n3", p)).not.toBe("n3");
    expect(resolveTarget({ node: "n4" }, N5, "n3", p)).toBe("n4");
    expect(N5).toContain(resolveTarget("leader", N5, null, p));
  });

  it("partition shapes are built around the focus node", () => {
    const p = Prng.fromSeed(2);
    const halves = resolveShape("halves", N5, "n2", p);
    expect(halves.kind === "halves" && halves.sides[0].includes("n2") && halves.sides[0].length === 2).toBe(
      true,
    );
    const bridge = resolveShape("bridge", N5, "n1", p);
    expect(bridge.kind).toBe("bridge");
    // The bridge node talks to everyone; the two sides cannot talk to each other.
    if (bridge.kind === "bridge") {
      const cut = linksCut(bridge, N5).map((l) => `${l.from}>${l.to}`);
      expect(cut.some((k) => k.includes(bridge.bridge))).toBe(false);
      expect(cut.length).toBe(2 * bridge.left.length * bridge.right.length);
    }
    expect(resolveShape("isolate", N5, "n5", p)).toEqual({ kind: "isolate", node: "n5" });
    expect(linksOf("n1", ["n1", "n2", "n3"]).length).toBe(4);
  });

  it("describe themselves for transcripts", () => {
    expect(
      describeFault({ atUs: 0, durationUs: 1_500_000, salt: 1, action: { kind: "crash", target: "leader" } }),
    ).toBe("crash leader for 1.500s");
  });
});

describe("shrinkList", () => {
  it("drops everything the failure does not need", () => {
    const items = Array.from({ length: 40 }, (_, i) => i);
    const fails = (xs: number[]) => xs.includes(7) && xs.includes(31);
    const { items: kept, runs } = shrinkList(items, fails);
    expect(kept).toEqual([7, 31]);
    expect(runs).toBeLessThan(100);
  });

  it("keeps the whole list when every item is needed, and respects the run budget", () => {
    expect(shrinkList([1, 2, 3], (xs) => xs.length === 3).items).toEqual([1, 2, 3]);
    expect(shrinkList([1, 2, 3, 4], () => true, 2).runs).toBe(2);
  });
});
