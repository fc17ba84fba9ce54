import { isHsmPoolError } from "@hsmpool/errors";
import { describe, expect, it } from "vitest";
import {
  parseChoiceFlag,
  parseCountFlag,
  parseDurationFlag,
  parseFaultListFlag,
  parseSeedFlag,
} from "./cli-args.js";

function badParameter(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isHsmPoolError(e, "BadParameter")) return e.message;
    throw e;
  }
  throw new Error("expected a BadParameter error");
}

describe("simulator CLI flags", () => {
  it("durations accept s, ms, m, h and bare seconds", () => {
    expect(parseDurationFlag("--duration", "60s")).toBe(60_000_000);
    expect(parseDurationFlag("--duration", "1.5s")).toBe(1_500_000);
    expect(parseDurationFlag("--duration", "2500ms")).toBe(2_500_000);
    expect(parseDurationFlag("--duration", "2m")).toBe(120_000_000);
    expect(parseDurationFlag("--duration", "90")).toBe(90_000_000);
  });

  it("durations refuse junk and values below 1s, naming the flag", () => {
    for (const v of ["", "abc", "10x", "-5s", "500ms", "0", "25h"]) {
      expect(badParameter(() => parseDurationFlag("--duration", v))).toMatch(/^--duration must be/);
    }
  });

  it("seeds and counts are whole numbers in range", () => {
    expect(parseSeedFlag("--seed", "0")).toBe(0);
    expect(parseSeedFlag("--seed", "1234")).toBe(1234);
    expect(badParameter(() => parseSeedFlag("--seed", "-1"))).toContain("--seed");
    expect(badParameter(() => parseSeedFlag("--seed", "1e3"))).toContain("--seed");
    expect(parseCountFlag("--seeds", "200", 1_000_000)).toBe(200);
    expect(badParameter(() => parseCountFlag("--seeds", "0", 10))).toContain("from 1 to 10");
  });

  it("fault lists and choices", () => {
    expect(parseFaultListFlag("--keep-faults", "3, 7,12")).toEqual([3, 7, 12]);
    expect(parseFaultListFlag("--keep-faults", "none")).toEqual([]);
    expect(badParameter(() => parseFaultListFlag("--keep-faults", "3;7"))).toContain("--keep-faults");
    expect(parseChoiceFlag("--intensity", "high", ["low", "medium", "high"])).toBe("high");
    expect(badParameter(() => parseChoiceFlag("--intensity", "max", ["low", "high"]))).toBe(
      '--intensity must be one of low, high, got "max"',
    );
  });
});
