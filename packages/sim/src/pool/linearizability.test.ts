import { linearizeSingleKey, type SingleKeyEvent, type SingleKeyResult } from "@hsmpool/pool";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkKeyHistory, segmentsOf } from "./linearizability.js";

const ev = (
  op: SingleKeyEvent["op"],
  callMs: number,
  returnMs: number,
  result: SingleKeyResult,
): SingleKeyEvent => ({
  op,
  callMs,
  returnMs,
  result,
});

const event = fc
  .record({
    op: fc.constantFrom<SingleKeyEvent["op"]>("create", "delete", "get"),
    callMs: fc.integer({ min: 0, max: 40 }),
    lengthMs: fc.integer({ min: 0, max: 12 }),
    result: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.constantFrom<SingleKeyResult>("ok", "notFound")),
  })
  .map(({ op, callMs, lengthMs, result }) => ev(op, callMs, callMs + lengthMs, result));

/** A history that is linearizable by construction: ops applied in a random order inside their windows. */
const validHistory = fc
  .array(
    fc.record({
      op: fc.constantFrom<SingleKeyEvent["op"]>("create", "delete", "get"),
      before: fc.integer({ min: 0, max: 6 }),
      after: fc.integer({ min: 0, max: 6 }),
    }),
    { maxLength: 9 },
  )
  .map((specs) => {
    let latest = 0;
    return specs.map(({ op, before, after }, i) => {
      const at = i * 4;
      const result: SingleKeyResult =
        op === "create"
          ? latest + 1
          : op === "delete"
            ? latest === 0
              ? "notFound"
              : "ok"
            : latest === 0
              ? "notFound"
              : latest;
      latest = op === "create" ? latest + 1 : op === "delete" ? 0 : latest;
      return ev(op, at - before, at + after, result);
    });
  });

describe("segmented key-history checker", () => {
  it("agrees with the pool's linearizeSingleKey on random histories", async () => {
    fc.assert(
      fc.property(fc.array(event, { maxLength: 7 }), (history) => {
        expect(checkKeyHistory(history).ok).toBe(linearizeSingleKey(history) !== null);
      }),
      { numRuns: 3000 },
    );
  });

  it("accepts every history produced by a real sequential execution", async () => {
    fc.assert(
      fc.property(validHistory, (history) => {
        expect(checkKeyHistory(history)).toEqual({ ok: true });
      }),
      { numRuns: 1000 },
    );
  });

  it("splits only where nothing is in flight", async () => {
    const h = [ev("create", 0, 5, 1), ev("get", 3, 9, 1), ev("get", 10, 11, 1), ev("delete", 11, 12, "ok")];
    expect(segmentsOf(h)).toEqual([
      [0, 1],
      [2, 3],
    ]);
  });

  it("starts each segment from the states the previous one can end in", async () => {
    // create v2 and delete overlap; the delete saw a key, so the create came first: the key ends absent.
    const base = [ev("create", 0, 2, 1), ev("create", 3, 6, 2), ev("delete", 4, 6, "ok")];
    expect(checkKeyHistory([...base, ev("get", 7, 8, "notFound")]).ok).toBe(true);
    expect(checkKeyHistory([...base, ev("get", 7, 8, 2)])).toEqual({
      ok: false,
      reason: "none",
      segment: [3],
    });
    expect(checkKeyHistory([...base, ev("get", 7, 8, 1)])).toEqual({
      ok: false,
      reason: "none",
      segment: [3],
    });
  });

  it("handles long histories quickly (thousands of operations)", async () => {
    const h: SingleKeyEvent[] = [];
    let latest = 0;
    for (let i = 0; i < 5000; i++) {
      const op = i % 7 === 6 ? "delete" : i % 2 === 0 ? "create" : "get";
      const result: SingleKeyResult =
        op === "create"
          ? latest + 1
          : op === "delete"
            ? latest === 0
              ? "notFound"
              : "ok"
            : latest === 0
              ? "notFound"
              : latest;
      latest = op === "create" ? latest + 1 : op === "delete" ? 0 : latest;
      h.push(ev(op, i * 10, i * 10 + 8 + (i % 3) * 5, result));
    }
    expect(checkKeyHistory(h)).toEqual({ ok: true });
    h[4000] = { ...(h[4000] as SingleKeyEvent), result: 999 };
    expect(checkKeyHistory(h).ok).toBe(false);
  });
});
