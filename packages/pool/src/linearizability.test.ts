import { describe, expect, it } from "vitest";
import { linearizeSingleKey, type SingleKeyEvent } from "./index.js";

const ev = (
  op: SingleKeyEvent["op"],
  callMs: number,
  returnMs: number | null,
  result: SingleKeyEvent["result"],
): SingleKeyEvent => ({ op, callMs, returnMs, result });

describe("single-key linearizability checker", () => {
  it("accepts a sequential history and returns its order", () => {
    const h = [
      ev("create", 0, 1, 1),
      ev("get", 2, 3, 1),
      ev("create", 4, 5, 2),
      ev("delete", 6, 7, "ok"),
      ev("get", 8, 9, "notFound"),
    ];
    expect(linearizeSingleKey(h)).toEqual([0, 1, 2, 3, 4]);
  });

  it("accepts concurrent operations in whichever order explains the results", () => {
    // The get overlaps the create and saw it: the create must be placed first.
    const h = [ev("get", 0, 10, 1), ev("create", 1, 5, 1)];
    expect(linearizeSingleKey(h)).toEqual([1, 0]);
  });

  it("rejects a stale read after an acknowledged write (the bug ReadIndex prevents)", () => {
    const h = [ev("create", 0, 1, 1), ev("create", 2, 3, 2), ev("get", 4, 5, 1)];
    expect(linearizeSingleKey(h)).toBeNull();
  });

  it("rejects a lost acknowledged create", () => {
    const h = [ev("create", 0, 1, 1), ev("get", 2, 3, "notFound")];
    expect(linearizeSingleKey(h)).toBeNull();
  });

  it("lets an operation without a response take effect late, or never", () => {
    const late = [ev("create", 0, null, null), ev("get", 1, 2, "notFound"), ev("get", 3, 4, 1)];
    expect(linearizeSingleKey(late)).toEqual([1, 0, 2]);
    const never = [ev("delete", 0, null, null), ev("get", 1, 2, 3)];
    expect(linearizeSingleKey(never, 3)).toEqual([1]);
  });
});
