import { type LinOp, linearizeSingleKey, type SingleKeyEvent, searchLinearization } from "@hsmpool/pool";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HistoryBuilder } from "../testing/history-builder.js";
import { checkLinearizability, KEY_MODEL, type KeyInput, type KeyOutput } from "./linearizability.js";

const K = ["k"];
const check = (h: HistoryBuilder, maxSteps = 100_000) => checkLinearizability(h.events, K, maxSteps);

describe("linearizability checker on hand-built histories", () => {
  it("accepts a sequential create, get, delete, get", () => {
    const h = new HistoryBuilder()
      .invoke(0, "create", "k")
      .ok(0, { version: 1 })
      .invoke(0, "get", "k")
      .ok(0, { version: 1 })
      .invoke(1, "delete", "k")
      .ok(1)
      .invoke(0, "get", "k")
      .notFound(0);
    expect(check(h).valid).toBe(true);
  });

  it("flags a read that misses an acknowledged create (stale read)", () => {
    const h = new HistoryBuilder()
      .invoke(0, "create", "k")
      .ok(0, { version: 1 })
      .invoke(1, "get", "k")
      .notFound(1);
    const r = check(h);
    expect(r.valid).toBe(false);
    expect(r.summary).toMatch(/not linearizable/);
    expect(r.summary).toMatch(
      /places 1 \(ending with create → version 1 \(process 0, [^)]*\), leaving latest version 1\), then get → KeyNotFound \(process 1, [^)]*\) cannot take effect$/,
    );
  });

  it("accepts either answer for a read concurrent with the create", () => {
    for (const seen of ["absent", "v1"] as const) {
      const h = new HistoryBuilder().invoke(0, "create", "k").invoke(1, "get", "k");
      if (seen === "absent") h.notFound(1);
      else h.ok(1, { version: 1 });
      h.ok(0, { version: 1 });
      expect(check(h).valid).toBe(true);
    }
  });

  it("flags two reads that see the key appear and then vanish with no delete", () => {
    const h = new HistoryBuilder()
      .invoke(0, "create", "k")
      .invoke(1, "get", "k")
      .ok(1, { version: 1 })
      .invoke(1, "get", "k")
      .notFound(1)
      .ok(0, { version: 1 });
    expect(check(h).valid).toBe(false);
  });

  it("flags two acknowledged creates that both got version 1 (a lost update)", () => {
    const h = new HistoryBuilder()
      .invoke(0, "create", "k")
      .invoke(1, "create", "k")
      .ok(0, { version: 1 })
      .ok(1, { version: 1 });
    expect(check(h).valid).toBe(false);
  });

  it("lets a create with an unknown outcome take effect later, or never", () => {
    const later = new HistoryBuilder()
      .invoke(0, "create", "k")
      .unknown(0)
      .invoke(1, "get", "k")
      .notFound(1)
      .invoke(1, "get", "k")
      .ok(1, { version: 1 });
    expect(check(later).valid).toBe(true);
    const never = new HistoryBuilder().invoke(0, "create", "k").unknown(0).invoke(1, "get", "k").notFound(1);
    expect(check(never).valid).toBe(true);
  });

  it("does not let an unknown create explain a version that came and went", () => {
    const h = new HistoryBuilder()
      .invoke(0, "create", "k")
      .unknown(0)
      .invoke(1, "get", "k")
      .ok(1, { version: 1 })
      .invoke(1, "get", "k")
      .notFound(1);
    expect(check(h).valid).toBe(false);
  });

  it("treats a definitely failed create as never having happened", () => {
    const h = new HistoryBuilder()
      .invoke(0, "create", "k")
      .fail(0, "BadParameter")
      .invoke(1, "get", "k")
      .ok(1, { version: 1 });
    expect(check(h).valid).toBe(false);
  });

  it("treats a create that failed with NoQuorum as unknown (it may still commit)", () => {
    const h = new HistoryBuilder()
      .invoke(0, "create", "k")
      .fail(0, "NoQuorum")
      .invoke(1, "get", "k")
      .ok(1, { version: 1 });
    expect(check(h).valid).toBe(true);
  });

  it("projects a list onto each key: a list that misses an acknowledged key is flagged", () => {
    const h = new HistoryBuilder()
      .invoke(0, "create", "k")
      .ok(0, { version: 1 })
      .invoke(1, "list")
      .ok(1, { keys: {} });
    expect(check(h).valid).toBe(false);
    const good = new HistoryBuilder()
      .invoke(0, "create", "k")
      .ok(0, { version: 1 })
      .invoke(1, "list")
      .ok(1, { keys: { k: 1 } });
    expect(check(good).valid).toBe(true);
  });

  it("checks sign against the latest version and verify of version v against existence", () => {
    const ok = new HistoryBuilder()
      .invoke(0, "create", "k")
      .ok(0, { version: 1 })
      .invoke(0, "sign", "k")
      .ok(0, { version: 1 })
      .invoke(0, "verify", "k", { signedVersion: 1 })
      .ok(0, { valid: true, signedVersion: 1 });
    expect(check(ok).valid).toBe(true);
    const badVerify = new HistoryBuilder()
      .invoke(0, "create", "k")
      .ok(0, { version: 1 })
      .invoke(0, "verify", "k", { signedVersion: 2 })
      .ok(0, { valid: true, signedVersion: 2 });
    expect(check(badVerify).valid).toBe(false);
    const signOld = new HistoryBuilder()
      .invoke(0, "create", "k")
      .ok(0, { version: 1 })
      .invoke(0, "create", "k")
      .ok(0, { version: 2 })
      .invoke(1, "sign", "k")
      .ok(1, { version: 1 });
    expect(check(signOld).valid).toBe(false);
  });

  it("says unknown, not valid, when the search bound is hit", () => {
    // Many concurrent unknown deletes and creates interleaved with reads: a wide search.
    const h = new HistoryBuilder();
    for (let p = 0; p < 8; p++) h.invoke(p, p % 2 === 0 ? "create" : "delete", "k");
    for (let p = 0; p < 8; p++) h.unknown(p);
    for (let i = 0; i < 6; i++) h.invoke(9, "get", "k").ok(9, { version: 1 + (i % 3) });
    const bounded = check(h, 5);
    expect(bounded.valid).toBe("unknown");
    expect(bounded.summary).toMatch(/search bound of 5 steps/);
    expect(check(h, 10_000_000).valid).not.toBe("unknown");
  });

  it("keeps keys apart: a bad key fails the history even when other keys are fine", () => {
    const h = new HistoryBuilder()
      .invoke(0, "create", "a")
      .ok(0, { version: 1 })
      .invoke(1, "create", "b")
      .ok(1, { version: 1 })
      .invoke(0, "get", "a")
      .ok(0, { version: 1 })
      .invoke(1, "get", "b")
      .notFound(1);
    const r = checkLinearizability(h.events, ["a", "b"], 1000);
    expect(r.valid).toBe(false);
    const keys = (r.details as { keys: { key: string; verdict: unknown }[] }).keys;
    expect(keys.map((k) => [k.key, k.verdict])).toEqual([
      ["a", true],
      ["b", false],
    ]);
  });
});

// ---------------------------------------------------------------- cross-check with @hsmpool/pool's single-key checker

type PoolOp = "create" | "delete" | "get";
interface GenOp {
  op: PoolOp;
  /** Linearization point, call and return as distinct integers. */
  call: number;
  ret: number;
  unknown: boolean;
  corrupt: boolean;
}

/** Histories from a sequential run at random linearization points, then maybe corrupted. */
const arbHistory = fc
  .array(
    fc.record({
      op: fc.constantFrom<PoolOp>("create", "delete", "get"),
      before: fc.integer({ min: 0, max: 6 }),
      after: fc.integer({ min: 0, max: 6 }),
      unknown: fc.integer({ min: 0, max: 99 }).map((x) => x < 15),
      corrupt: fc.integer({ min: 0, max: 99 }).map((x) => x < 10),
    }),
    { minLength: 1, maxLength: 9 },
  )
  .map((xs) =>
    xs.map<GenOp>((x, i) => ({
      op: x.op,
      call: i * 10 - x.before,
      ret: i * 10 + 1 + x.after,
      unknown: x.unknown && x.op !== "get",
      corrupt: x.corrupt,
    })),
  );

function results(ops: GenOp[]): (number | "ok" | "notFound")[] {
  let latest = 0;
  return ops.map((o) => {
    let r: number | "ok" | "notFound";
    if (o.op === "create") r = ++latest;
    else if (o.op === "delete") {
      r = latest === 0 ? "notFound" : "ok";
      latest = 0;
    } else r = latest === 0 ? "notFound" : latest;
    if (!o.corrupt) return r;
    return typeof r === "number" ? r + 1 : r === "ok" ? "notFound" : o.op === "get" ? 1 : "ok";
  });
}

describe("the bounded search agrees with @hsmpool/pool's linearizeSingleKey", () => {
  it("on random small histories (valid and corrupted), with a generous bound", () => {
    fc.assert(
      fc.property(arbHistory, (ops) => {
        const res = results(ops);
        // Distinct time points: calls at even, returns at odd offsets keep every pair ordered.
        const events: SingleKeyEvent[] = ops.map((o, i) => ({
          op: o.op,
          callMs: o.call * 2,
          returnMs: o.unknown ? null : o.ret * 2 + 1,
          result: o.unknown ? null : (res[i] ?? null),
        }));
        const expected = linearizeSingleKey(events) !== null;
        const lin: LinOp<KeyInput, KeyOutput>[] = events.map((e) => ({
          input: e.op === "get" ? { f: "read", via: "get" } : { f: e.op },
          output:
            e.result === null
              ? undefined
              : e.result === "notFound"
                ? { found: false }
                : e.result === "ok"
                  ? { found: true }
                  : { found: true, version: e.result },
          callIndex: e.callMs,
          returnIndex: e.returnMs ?? Number.POSITIVE_INFINITY,
        }));
        const got = searchLinearization(KEY_MODEL, lin, 1_000_000);
        expect(got.verdict).toBe(expected);
      }),
      { numRuns: 400, seed: 8 },
    );
  });
});
