import { Prng } from "@hsmpool/faults";
import { describe, expect, it } from "vitest";
import { type Fault, INTENSITIES } from "./faults.js";
import { Nemesis, type NemesisHost } from "./nemesis.js";
import { Network } from "./network.js";

/** A host of plain in-memory "nodes" that records what the nemesis did to them. */
function recordingHost(members: string[], leader: string | null) {
  const state = new Map(members.map((m) => [m, "up" as "up" | "down" | "paused"]));
  const calls: string[] = [];
  const host: NemesisHost = {
    members: () => members,
    leader: () => leader,
    crash: (n) => {
      if (state.get(n) !== "up") return false;
      state.set(n, "down");
      calls.push(`crash ${n}`);
      return true;
    },
    restart: (n) => {
      state.set(n, "up");
      calls.push(`restart ${n}`);
    },
    pause: (n) => {
      if (state.get(n) !== "up") return false;
      state.set(n, "paused");
      calls.push(`pause ${n}`);
      return true;
    },
    resume: (n) => {
      state.set(n, "up");
      calls.push(`resume ${n}`);
    },
  };
  return { host, calls, state };
}

const fault = (action: Fault["action"], salt = 1): Fault => ({ atUs: 0, durationUs: 1, salt, action });
const N3 = ["n1", "n2", "n3"];

describe("Nemesis", () => {
  it("crashes the current leader and restarts it when the fault ends", () => {
    const { host, calls } = recordingHost(N3, "n2");
    const nemesis = new Nemesis(new Network(Prng.fromSeed(1)), Prng.fromSeed(1), INTENSITIES.medium, host);
    expect(nemesis.start(fault({ kind: "crash", target: "leader" }), 0)).toBe("crash n2");
    expect(nemesis.start(fault({ kind: "crash", target: { node: "n2" } }), 1)).toBeNull(); // already down
    nemesis.end(0);
    nemesis.end(0); // idempotent
    expect(calls).toEqual(["crash n2", "restart n2"]);
  });

  it("partitions cut the network until the fault ends; healAll undoes everything", () => {
    const { host, calls } = recordingHost(N3, "n1");
    const net = new Network(Prng.fromSeed(1));
    const nemesis = new Nemesis(net, Prng.fromSeed(2), INTENSITIES.medium, host);
    expect(nemesis.start(fault({ kind: "partition", shape: "isolate", target: "leader" }), 0)).toMatch(
      /isolate n1/,
    );
    expect(net.isCut("n1", "n2") && net.isCut("n3", "n1")).toBe(true);
    expect(net.isCut("n2", "n3")).toBe(false);
    nemesis.start(fault({ kind: "pause", target: { node: "n3" } }), 1);
    nemesis.start(fault({ kind: "link", effect: "loss", target: "all" }), 2);
    expect(net.activeLinkFaults).toBe(1);
    nemesis.healAll();
    expect(net.isCut("n1", "n2")).toBe(false);
    expect(net.activeLinkFaults).toBe(0);
    expect(nemesis.activeFaults).toBe(0);
    expect(calls).toEqual(["pause n3", "resume n3"]);
  });

  it("resolves the same symbolic target the same way for the same salt", () => {
    const pick = (salt: number) => {
      const { host } = recordingHost(["n1", "n2", "n3", "n4", "n5"], "n1");
      const nemesis = new Nemesis(new Network(Prng.fromSeed(1)), Prng.fromSeed(7), INTENSITIES.medium, host);
      return nemesis.start(fault({ kind: "crash", target: "follower" }, salt), 0);
    };
    expect(pick(5)).toBe(pick(5));
    const seen = new Set(Array.from({ length: 20 }, (_, i) => pick(i)));
    expect(seen.size).toBeGreaterThan(1);
    expect(seen.has("crash n1")).toBe(false);
  });
});
