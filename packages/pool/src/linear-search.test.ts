import { describe, expect, it } from "vitest";
import { type LinOp, type Model, searchLinearization } from "./linear-search.js";

/** State: the set of bits set so far. "set i" sets bit i; "read" observes the whole mask. */
const BITS: Model<number, { set: number } | { read: true }, number> = {
  init: 0,
  step: (mask, input, observed) => {
    if ("set" in input) return { ok: true, next: mask | (1 << input.set) };
    return { ok: observed === undefined || observed === mask, next: mask };
  },
  stateKey: String,
  inputKey: (input) => JSON.stringify(input),
};

/** `n` concurrent sets, then a read that sees a mask no order can produce: the search must visit 2^n states. */
function impossibleHistory(n: number): LinOp<{ set: number } | { read: true }, number>[] {
  const sets = Array.from({ length: n }, (_, i) => ({
    input: { set: i },
    output: 0,
    callIndex: i,
    returnIndex: n + i,
  }));
  return [...sets, { input: { read: true }, output: -1, callIndex: 2 * n, returnIndex: 2 * n + 1 }];
}

describe("the linearizability search's bounds", () => {
  it("answers false when it may memoise every state it needs", () => {
    const r = searchLinearization(BITS, impossibleHistory(10), 10_000_000);
    expect(r.verdict).toBe(false);
  });

  it("answers unknown with the reason, instead of crashing, once its memo is full", () => {
    const r = searchLinearization(BITS, impossibleHistory(10), 10_000_000, 500);
    expect(r.verdict).toBe("unknown");
    if (r.verdict === "unknown") expect(r.reason).toMatch(/memo full \(500 states\)/);
  });

  it("answers unknown with the reason when the step bound is hit", () => {
    const r = searchLinearization(BITS, impossibleHistory(10), 50);
    expect(r.verdict).toBe("unknown");
    if (r.verdict === "unknown") expect(r.reason).toMatch(/search bound of 50 steps/);
  });
});
