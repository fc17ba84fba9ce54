import { Prng } from "@hsmpool/faults";
import { describe, expect, it } from "vitest";
import { DEFAULT_WORKLOAD, OP_NAMES, type OpName } from "../scenario/schema.js";
import { type HeldBackup, type HeldSignature, WorkloadGenerator } from "./generator.js";

const NO_OPS = Object.fromEntries(OP_NAMES.map((op) => [op, 0])) as Record<OpName, number>;

describe("workload generator", () => {
  it("follows the mix, stays in the key space and replays from its seed", () => {
    const settings = {
      ...DEFAULT_WORKLOAD,
      keys: 3,
      mix: { ...NO_OPS, create: 1, get: 3 },
    };
    const run = (seed: number) => {
      const g = new WorkloadGenerator(Prng.fromSeed(seed), settings);
      return Array.from({ length: 2000 }, () => g.next(new Map()));
    };
    const ops = run(5);
    expect(run(5)).toEqual(ops);
    expect(run(6)).not.toEqual(ops);
    const creates = ops.filter((o) => o.f === "create").length;
    expect(creates / ops.length).toBeGreaterThan(0.2);
    expect(creates / ops.length).toBeLessThan(0.3);
    expect(new Set(ops.map((o) => ("key" in o ? o.key : "")))).toEqual(
      new Set(["chaos-k0", "chaos-k1", "chaos-k2"]),
    );
    expect(ops.some((o) => o.f === "list" || o.f === "delete")).toBe(false);
  });

  it("verifies only signatures the client holds, and signs instead when it holds none", () => {
    const settings = {
      ...DEFAULT_WORKLOAD,
      mix: { ...NO_OPS, verify: 1 },
    };
    const g = new WorkloadGenerator(Prng.fromSeed(1), settings);
    expect(g.next(new Map()).f).toBe("sign");
    const held: HeldSignature = {
      key: "chaos-k4",
      version: 2,
      data: new Uint8Array([1]),
      signature: new Uint8Array([2]),
      signIndex: 9,
    };
    const op = g.next(new Map([["chaos-k4", held]]));
    expect(op).toEqual({ f: "verify", key: "chaos-k4", held });
  });

  it("restores only backups the client holds, and backs up instead when it holds none", () => {
    const g = new WorkloadGenerator(Prng.fromSeed(1), {
      ...DEFAULT_WORKLOAD,
      mix: { ...NO_OPS, restore: 1 },
    });
    const first = g.next(new Map());
    expect(first.f).toBe("backup");
    const held: HeldBackup = { key: "chaos-k2", version: 3, blob: new Uint8Array([7]) };
    expect(g.next(new Map(), new Map([["chaos-k2", held]]))).toEqual({ f: "restore", key: "chaos-k2", held });
  });

  it("the default mix runs every lifecycle operation", () => {
    const g = new WorkloadGenerator(Prng.fromSeed(3), DEFAULT_WORKLOAD);
    const seen = new Set(Array.from({ length: 3000 }, () => g.next(new Map()).f));
    for (const f of ["create", "rotate", "update", "delete", "recover", "purge", "backup"])
      expect(seen).toContain(f);
  });

  it("paces clients so that together they make the configured rate", () => {
    const g = new WorkloadGenerator(Prng.fromSeed(2), { ...DEFAULT_WORKLOAD, clients: 4, rateOpsPerS: 20 });
    const n = 5000;
    let total = 0;
    for (let i = 0; i < n; i++) total += g.nextDelayMs();
    // Mean gap per client = clients / rate = 200 ms (the cap at 10x the mean trims a sliver of the tail).
    expect(total / n).toBeGreaterThan(180);
    expect(total / n).toBeLessThan(215);
  });
});
