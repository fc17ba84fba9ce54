import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EventQueue, formatSimTime } from "./scheduler.js";

describe("EventQueue", () => {
  it("pops events in time order, ties in scheduling order, and advances the clock", () => {
    const q = new EventQueue<string>();
    q.at(30, "c");
    q.at(10, "a1");
    q.at(20, "b");
    q.at(10, "a2");
    const out: [string, number][] = [];
    for (let e = q.pop(); e !== undefined; e = q.pop()) out.push([e, q.now]);
    expect(out).toEqual([
      ["a1", 10],
      ["a2", 10],
      ["b", 20],
      ["c", 30],
    ]);
  });

  it("refuses events in the past and non-integer times", () => {
    const q = new EventQueue<number>();
    q.at(100, 1);
    q.pop();
    expect(() => q.at(99, 2)).toThrow(RangeError);
    expect(() => q.at(100.5, 2)).toThrow(RangeError);
    q.after(0.4, 3);
    expect(q.peekTime()).toBe(100);
  });

  it("orders any batch of events by (time, insertion) — property", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 200 }), (times) => {
        const q = new EventQueue<number>();
        times.forEach((t, i) => {
          q.at(t, i);
        });
        const popped: number[] = [];
        for (let e = q.pop(); e !== undefined; e = q.pop()) popped.push(e);
        const expected = times.map((t, i) => [t, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        expect(popped).toEqual(expected.map(([, i]) => i));
      }),
    );
  });

  it("formats simulated time for transcripts", () => {
    expect(formatSimTime(1_250_000)).toBe("1.250s");
  });
});
