import { Prng } from "@hsmpool/faults";
import { describe, expect, it } from "vitest";
import { DEFAULT_LINK, type LinkConfig, Network } from "./network.js";

const FIXED: LinkConfig = { ...DEFAULT_LINK, delayMinUs: 1000, delayMeanUs: 1000 };

/** Send `n` messages 1 µs apart; return arrival times in send order (copies flattened). */
function arrivals(net: Network, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(...net.send("a", "b", i));
  return out;
}

function inversions(xs: number[]): number {
  let count = 0;
  for (let i = 1; i < xs.length; i++) if ((xs[i] as number) < (xs[i - 1] as number)) count++;
  return count;
}

describe("Network link model", () => {
  it("FIFO links deliver in send order, once, none lost, even with delay jitter", () => {
    const net = new Network(Prng.fromSeed(1), { ...DEFAULT_LINK, delayMinUs: 100, delayMeanUs: 5000 });
    const xs = arrivals(net, 1000);
    expect(xs.length).toBe(1000);
    expect(inversions(xs)).toBe(0);
  });

  it("non-FIFO links with jitter reorder on their own", () => {
    const net = new Network(Prng.fromSeed(1), {
      ...DEFAULT_LINK,
      delayMinUs: 100,
      delayMeanUs: 5000,
      fifo: false,
    });
    expect(inversions(arrivals(net, 1000))).toBeGreaterThan(100);
  });

  it("the reorder knob makes later messages overtake earlier ones", () => {
    const net = new Network(Prng.fromSeed(1), { ...FIXED, reorderProbability: 0.2, reorderDelayUs: 50 });
    const xs = arrivals(net, 2000);
    expect(inversions(xs)).toBeGreaterThan(100);
    expect(net.stats.reordered).toBeGreaterThan(300);
    expect(net.stats.reordered).toBeLessThan(500);
  });

  it("duplicates about the configured fraction of messages, and none when the knob is 0", () => {
    const net = new Network(Prng.fromSeed(2), { ...FIXED, duplicateProbability: 0.3 });
    const xs = arrivals(net, 10000);
    expect(xs.length - 10000).toBeGreaterThan(2800);
    expect(xs.length - 10000).toBeLessThan(3200);
    expect(net.stats.duplicated).toBe(xs.length - 10000);
    expect(arrivals(new Network(Prng.fromSeed(2), FIXED), 10000).length).toBe(10000);
  });

  it("loses about the configured fraction of messages", () => {
    const net = new Network(Prng.fromSeed(3), { ...FIXED, lossProbability: 0.25 });
    const delivered = arrivals(net, 10000).length;
    expect(delivered).toBeGreaterThan(7300);
    expect(delivered).toBeLessThan(7700);
    expect(net.stats.lostToLinkFault).toBe(10000 - delivered);
  });

  it("delays are at least the minimum and average near the configured mean", () => {
    const net2 = new Network(Prng.fromSeed(4), {
      ...DEFAULT_LINK,
      delayMinUs: 200,
      delayMeanUs: 1000,
      fifo: false,
    });
    const ds = Array.from({ length: 20000 }, () => net2.send("a", "b", 0)[0] as number);
    expect(Math.min(...ds)).toBeGreaterThanOrEqual(200);
    const mean = ds.reduce((s, d) => s + d, 0) / ds.length;
    expect(Math.abs(mean - 1000)).toBeLessThan(40);
  });

  it("link faults override the defaults on chosen links only, and clear", () => {
    const net = new Network(Prng.fromSeed(5), FIXED);
    net.addLinkFault("f", [{ from: "a", to: "b" }], { lossProbability: 1 });
    expect(net.send("a", "b", 0)).toEqual([]);
    expect(net.send("b", "a", 0)).toEqual([1000]);
    net.clearLinkFault("f");
    expect(net.send("a", "b", 5)).toEqual([1005]);
    expect(() => net.addLinkFault("g", "all", { lossProbability: 2 })).toThrow(RangeError);
  });
});
