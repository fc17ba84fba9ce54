import { describe, expect, it } from "vitest";
import { Prng, splitmix64 } from "./prng.js";

describe("splitmix64", () => {
  it("matches the published sequence for seed 1234567 (Rosetta Code, checked against the C reference)", () => {
    expect(splitmix64(1234567n, 5)).toEqual([
      6457827717110365317n,
      3203168211198807973n,
      9817491932198370423n,
      4593380528125082431n,
      16408922859458223821n,
    ]);
  });
});

describe("xoshiro128**", () => {
  it("matches the reference implementation from state (1, 2, 3, 4)", () => {
    const p = Prng.fromState(1, 2, 3, 4);
    const out = Array.from({ length: 6 }, () => p.nextU32());
    expect(out).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
  });

  it("seeds through SplitMix64 exactly like the C reference (seed 42)", () => {
    // C: x=42; a=sm(); b=sm(); s = {lo(a), hi(a), lo(b), hi(b)}; then next() x8.
    const p = Prng.fromSeed(42);
    const out = Array.from({ length: 8 }, () => p.nextU32());
    expect(out).toEqual([
      1776835114, 4165204688, 17111135, 2317295270, 2792088233, 2554630222, 2940343271, 2244566231,
    ]);
  });
});

describe("Prng", () => {
  const draw = (p: Prng, n = 32) => Array.from({ length: n }, () => p.nextU32());

  it("gives the same stream for the same seed and different streams for different seeds", () => {
    expect(draw(Prng.fromSeed(7))).toEqual(draw(Prng.fromSeed(7)));
    expect(draw(Prng.fromSeed(7))).not.toEqual(draw(Prng.fromSeed(8)));
  });

  it("split children do not move when the parent or a sibling draws more", () => {
    const quiet = Prng.fromSeed(99);
    const expected = draw(quiet.split("network"));

    const busy = Prng.fromSeed(99);
    draw(busy, 1000); // the parent consumed randomness...
    draw(busy.split("disk"), 1000); // ...and so did a sibling
    busy.split("new-subsystem"); // and a subsystem was added
    expect(draw(busy.split("network"))).toEqual(expected);
  });

  it("split children with different labels (and nested splits) are different streams", () => {
    const root = Prng.fromSeed(5);
    const a = draw(root.split("a"));
    expect(draw(root.split("b"))).not.toEqual(a);
    expect(draw(root.split("a").split("a"))).not.toEqual(a);
    expect(draw(root)).not.toEqual(a);
  });

  it("split streams are statistically independent (no correlation between siblings)", () => {
    const root = Prng.fromSeed(1);
    const x = root.split("x");
    const y = root.split("y");
    const n = 20000;
    let sx = 0;
    let sy = 0;
    let sxy = 0;
    let sxx = 0;
    let syy = 0;
    for (let i = 0; i < n; i++) {
      const a = x.float();
      const b = y.float();
      sx += a;
      sy += b;
      sxy += a * b;
      sxx += a * a;
      syy += b * b;
    }
    const cov = sxy / n - (sx / n) * (sy / n);
    const corr = cov / Math.sqrt((sxx / n - (sx / n) ** 2) * (syy / n - (sy / n) ** 2));
    expect(Math.abs(corr)).toBeLessThan(0.03);
  });

  it("int(n) stays in range and is roughly uniform", () => {
    const p = Prng.fromSeed(3);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60000; i++) counts[p.int(6)]++;
    for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(500);
    expect(() => p.int(0)).toThrow(RangeError);
  });

  it("between is inclusive, float is in [0, 1), chance(0) never draws", () => {
    const p = Prng.fromSeed(11);
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) seen.add(p.between(2, 4));
    expect([...seen].sort()).toEqual([2, 3, 4]);
    for (let i = 0; i < 1000; i++) {
      const f = p.float();
      expect(f >= 0 && f < 1).toBe(true);
    }
    const before = Prng.fromSeed(11);
    const after = Prng.fromSeed(11);
    expect(after.chance(0)).toBe(false);
    expect(after.nextU32()).toBe(before.nextU32());
  });

  it("rejects seeds that are not safe integers", () => {
    expect(() => Prng.fromSeed(1.5)).toThrow(RangeError);
    expect(draw(Prng.fromSeed(0), 4)).not.toEqual([0, 0, 0, 0]);
  });
});
