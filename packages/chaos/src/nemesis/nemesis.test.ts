import { linksCut, Prng } from "@hsmpool/faults";
import { afterEach, describe, expect, it, vi } from "vitest";
import { HistoryRecorder, isNemesisEvent } from "../history.js";
import type { NemesisEntry } from "../scenario/schema.js";
import type { StatusSample } from "../timeline.js";
import { type FaultInjector, NemesisRunner } from "./nemesis.js";
import { partitionShape } from "./network-faults.js";
import { planFaults } from "./plan.js";
import { resolveTarget } from "./targets.js";

const member = (id: string, role: string, health = "up") => ({
  id,
  server: `s-${id}`,
  rack: `r-${id}`,
  role,
  health,
  ownership: "synced",
});
const STATUS: StatusSample = {
  timeMs: 0,
  state: "healthy",
  primary: "n2",
  term: 3,
  members: [member("n1", "secondary"), member("n2", "primary"), member("n3", "secondary", "down")],
};

describe("nemesis plan", () => {
  const entries: NemesisEntry[] = [
    {
      line: 3,
      fault: { kind: "kill", target: "primary" },
      atMs: 5000,
      fromMs: 0,
      jitterMs: 0,
      healAfterMs: 2000,
    },
    {
      line: 8,
      fault: {
        kind: "random",
        choices: [
          { kind: "kill", target: "random" },
          { kind: "pause", target: "secondary" },
        ],
      },
      everyMs: 4000,
      fromMs: 2000,
      untilMs: 15_000,
      jitterMs: 1000,
    },
  ];

  it("expands at and every entries with seeded jitter and random choices, the same for the same seed", () => {
    const a = planFaults(entries, 20_000, Prng.fromSeed(7));
    const b = planFaults(entries, 20_000, Prng.fromSeed(7));
    expect(a).toEqual(b);
    const fromEvery = a.faults.filter((f) => f.line === 8);
    expect(fromEvery).toHaveLength(4); // 2, 6, 10, 14 s (+ jitter)
    fromEvery.forEach((f, i) => {
      expect(f.atMs).toBeGreaterThanOrEqual(2000 + i * 4000);
      expect(f.atMs).toBeLessThanOrEqual(3000 + i * 4000);
      expect(["kill", "pause"]).toContain(f.fault.kind);
    });
    expect(a.faults.map((f) => f.atMs)).toEqual([...a.faults.map((f) => f.atMs)].sort((x, y) => x - y));
    const other = planFaults(entries, 20_000, Prng.fromSeed(8));
    expect(other.faults.map((f) => f.atMs)).not.toEqual(a.faults.map((f) => f.atMs));
  });

  it("a shortened run skips what cannot fire and says so", () => {
    const p = planFaults(entries, 4000, Prng.fromSeed(1));
    expect(p.skipped).toEqual([{ line: 3, why: "no firing before the end of the workload (4000 ms)" }]);
    expect(p.faults.every((f) => f.atMs < 4000)).toBe(true);
  });
});

describe("targets", () => {
  const prng = Prng.fromSeed(1);
  it("resolves primary, an up secondary, any up member, or a named node", () => {
    expect(resolveTarget("primary", STATUS, prng)).toEqual({ nodeId: "n2" });
    expect(resolveTarget("secondary", STATUS, prng)).toEqual({ nodeId: "n1" });
    for (let i = 0; i < 20; i++)
      expect(["n1", "n2"]).toContain((resolveTarget("random", STATUS, prng) as { nodeId: string }).nodeId);
    expect(resolveTarget("n3", STATUS, prng)).toEqual({ nodeId: "n3" });
    expect(resolveTarget("n7", STATUS, prng)).toEqual({
      error: "n7 is not a member of the pool (members: n1, n2, n3)",
    });
    expect(resolveTarget("primary", { ...STATUS, primary: "" }, prng)).toEqual({
      error: "the pool has no primary right now",
    });
  });
});

describe("partition shapes over the members that are up", () => {
  const up3: StatusSample = {
    ...STATUS,
    members: [member("n1", "secondary"), member("n2", "primary"), member("n3", "secondary")],
  };
  it("isolate-primary cuts every link to and from the primary", () => {
    const { shape, members } = partitionShape(
      { kind: "partition", shape: "isolate-primary", target: "primary" },
      up3,
      Prng.fromSeed(1),
    );
    expect(
      linksCut(shape, members)
        .map((l) => `${l.from}>${l.to}`)
        .sort(),
    ).toEqual(["n1>n2", "n2>n1", "n2>n3", "n3>n2"]);
  });
  it("a bridge keeps the bridge connected to both sides and cuts the sides apart", () => {
    const { shape, members } = partitionShape(
      { kind: "partition", shape: "bridge", target: "n1" },
      up3,
      Prng.fromSeed(1),
    );
    const cut = linksCut(shape, members)
      .map((l) => `${l.from}>${l.to}`)
      .sort();
    expect(cut).toEqual(["n2>n3", "n3>n2"]);
  });
  it("one-way cuts only what the target sends", () => {
    const { shape, members } = partitionShape(
      { kind: "partition", shape: "one-way", target: "n3" },
      up3,
      Prng.fromSeed(1),
    );
    expect(
      linksCut(shape, members)
        .map((l) => `${l.from}>${l.to}`)
        .sort(),
    ).toEqual(["n3>n1", "n3>n2"]);
  });
});

describe("nemesis runner", () => {
  // Fake timers: with real ones a loaded machine can run the 10 ms list (pause at 10, heal at 15)
  // before the 12 ms list (the n9 fault), which books the heal before the error; Node drains one
  // duration's list at a time. Fake timers fire strictly in expiry order.
  afterEach(() => {
    vi.useRealTimers();
  });
  it("fires at the planned time, heals after healAfter, heals the rest at the end, and books every step", async () => {
    const calls: string[] = [];
    const injector: FaultInjector = {
      async inject(fault) {
        const t = "target" in fault ? fault.target : "?";
        if (t === "n9") throw new Error("n9 is not a member");
        calls.push(`inject ${fault.kind} ${t}`);
        return {
          targets: [t],
          detail: `${fault.kind} ${t}`,
          heal: async () => {
            calls.push(`heal ${t}`);
            return `healed ${t}`;
          },
        };
      },
    };
    let now = 0;
    const history = new HistoryRecorder(() => now);
    const runner = new NemesisRunner(
      [
        { atMs: 5, line: 1, fault: { kind: "kill", target: "n1" }, healAfterMs: 10 },
        { atMs: 10, line: 2, fault: { kind: "pause", target: "n2" } },
        { atMs: 12, line: 3, fault: { kind: "kill", target: "n9" } },
        { atMs: 10_000, line: 4, fault: { kind: "kill", target: "n3" } },
      ],
      { kill: injector, pause: injector },
      history,
      () => STATUS,
      Prng.fromSeed(1),
      () => {},
    );
    vi.useFakeTimers();
    runner.start();
    await vi.advanceTimersByTimeAsync(60);
    now = 60;
    await runner.healEverything();
    expect(calls).toEqual(["inject kill n1", "inject pause n2", "heal n1", "heal n2"]);
    const booked = history.events
      .filter(isNemesisEvent)
      .map((e) => `${e.type} #${e.faultId} ${e.f} ${e.targets.join(",")}`);
    expect(booked).toEqual([
      "start #1 kill n1",
      "start #2 pause n2",
      "error #3 kill ",
      "heal #1 kill n1",
      "heal #2 pause n2",
    ]);
    expect(runner.activeCount).toBe(0);
  });
});
