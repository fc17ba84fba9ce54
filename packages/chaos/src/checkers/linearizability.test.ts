import {
  type LinOp,
  linearizeSingleKey,
  type Model,
  type SingleKeyEvent,
  searchLinearization,
} from "@hsmpool/pool";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HistoryBuilder } from "../testing/history-builder.js";
import {
  checkLinearizability,
  KEY_MODEL,
  type KeyInput,
  type KeyOutput,
  type KeyState,
} from "./linearizability.js";

const K = ["k"];
const check = (h: HistoryBuilder, maxSteps = 100_000) => checkLinearizability(h.events, K, maxSteps);

describe("linearizability checker on hand-built histories", () => {
  it("accepts the lifecycle: create, rotate, delete (soft), recover with the versions, delete, purge, create anew", () => {
    const h = new HistoryBuilder()
      .invoke(0, "create", "k")
      .ok(0, { version: 1 })
      .invoke(0, "rotate", "k")
      .ok(0, { version: 2 })
      .invoke(1, "delete", "k")
      .ok(1)
      .invoke(0, "get", "k")
      .notFound(0)
      .invoke(1, "recover", "k")
      .ok(1, { version: 2 })
      .invoke(0, "update", "k")
      .ok(0, { version: 2 })
      .invoke(1, "delete", "k")
      .ok(1)
      .invoke(1, "purge", "k")
      .ok(1)
      .invoke(0, "restore", "k", { backupVersion: 2 })
      .ok(0, { version: 2, backupVersion: 2 })
      .invoke(0, "get", "k")
      .ok(0, { version: 2 });
    expect(check(h).valid).toBe(true);
  });

  it("flags a read of a soft-deleted key, a recover that lost versions, and a create acknowledged on a deleted name", () => {
    const deleted = () =>
      new HistoryBuilder()
        .invoke(0, "create", "k")
        .ok(0, { version: 1 })
        .invoke(0, "rotate", "k")
        .ok(0, { version: 2 })
        .invoke(1, "delete", "k")
        .ok(1);
    expect(check(deleted().invoke(0, "get", "k").ok(0, { version: 2 })).valid).toBe(false);
    expect(check(deleted().invoke(0, "recover", "k").ok(0, { version: 1 })).valid).toBe(false);
    expect(check(deleted().invoke(0, "create", "k").ok(0, { version: 1 })).valid).toBe(false);
    expect(
      check(deleted().invoke(0, "purge", "k").ok(0).invoke(1, "get", "k").ok(1, { version: 2 })).valid,
    ).toBe(false);
  });

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

/** linearizeSingleKey's hard delete (the simulator purges right after each delete) as KEY_MODEL's delete then purge. */
const HARD_DELETE_MODEL: Model<KeyState, KeyInput, KeyOutput> = {
  ...KEY_MODEL,
  step(s, input, out) {
    const r = KEY_MODEL.step(s, input, out);
    if (input.f !== "delete") return r;
    return { ok: r.ok, next: KEY_MODEL.step(r.next, { f: "purge" }, undefined).next };
  },
};

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
        const got = searchLinearization(HARD_DELETE_MODEL, lin, 1_000_000);
        expect(got.verdict).toBe(expected);
      }),
      { numRuns: 400, seed: 8 },
    );
  });
});

/** The key lifecycle as plain sequential code (the pool's KeyStore semantics), independent of KEY_MODEL's encoding. */
type LifeOp = "create" | "get" | "delete" | "rotate" | "recover" | "purge";
type LifeResult = number | "ok" | "notFound" | "conflict";
function lifeStep(st: { latest: number; deleted: boolean }, op: LifeOp): LifeResult {
  const present = st.latest > 0 && !st.deleted;
  switch (op) {
    case "create":
      if (st.deleted) return "conflict";
      st.latest++;
      return st.latest;
    case "rotate":
      if (!present) return "notFound";
      st.latest++;
      return st.latest;
    case "get":
      return present ? st.latest : "notFound";
    case "delete":
      if (!present) return "notFound";
      st.deleted = true;
      return "ok";
    case "recover":
      if (!st.deleted) return "notFound";
      st.deleted = false;
      return st.latest;
    case "purge":
      if (!st.deleted) return "notFound";
      st.deleted = false;
      st.latest = 0;
      return "ok";
  }
}

/** Brute force: some real-time-respecting order (unknown ops may be left out) replays every answer. */
function bruteForce(
  ops: { op: LifeOp; call: number; ret: number | null; result: LifeResult | null }[],
): boolean {
  const n = ops.length;
  const search = (done: boolean[], st: { latest: number; deleted: boolean }): boolean => {
    const pending = ops.map((_, i) => i).filter((i) => !done[i]);
    if (pending.every((i) => ops[i]?.ret === null)) return true; // unknown ones may never take effect
    for (const i of pending) {
      const o = ops[i] as (typeof ops)[number];
      // i may go next only if no other pending op returned before i was called.
      if (pending.some((j) => j !== i && ops[j]?.ret !== null && (ops[j]?.ret as number) < o.call)) continue;
      const next = { ...st };
      const r = lifeStep(next, o.op);
      if (o.result !== null && r !== o.result) continue;
      const d = [...done];
      d[i] = true;
      if (search(d, next)) return true;
    }
    return false;
  };
  return search(new Array<boolean>(n).fill(false), { latest: 0, deleted: false });
}

describe("the lifecycle model (soft delete, rotate, recover, purge) agrees with a brute-force check of the sequential spec", () => {
  const LIFE_OPS: LifeOp[] = ["create", "get", "delete", "rotate", "recover", "purge"];
  it("on random small histories (valid and corrupted)", () => {
    const arb = fc
      .array(
        fc.record({
          op: fc.constantFrom(...LIFE_OPS),
          before: fc.integer({ min: 0, max: 25 }),
          after: fc.integer({ min: 0, max: 25 }),
          unknown: fc.integer({ min: 0, max: 99 }).map((x) => x < 15),
          corrupt: fc.integer({ min: 0, max: 99 }).map((x) => x < 10),
        }),
        { minLength: 1, maxLength: 7 },
      )
      .map((xs) => {
        const st = { latest: 0, deleted: false };
        return (
          xs
            .map((x, i) => {
              let r = lifeStep(st, x.op);
              if (x.corrupt && r !== "conflict")
                r = typeof r === "number" ? r + 1 : r === "ok" ? "notFound" : x.op === "get" ? 1 : "ok";
              const unknown = x.unknown && x.op !== "get";
              return {
                op: x.op,
                call: (i * 10 - x.before) * 2,
                ret: unknown ? null : (i * 10 + 1 + x.after) * 2 + 1,
                result: unknown ? null : r,
              };
            })
            // The checker skips a Conflict (a definite refusal: nothing happened); so does this property.
            .filter((o) => o.result !== "conflict")
        );
      });
    fc.assert(
      fc.property(arb, (ops) => {
        const expected = bruteForce(ops);
        const lin: LinOp<KeyInput, KeyOutput>[] = ops.map((o) => ({
          input: o.op === "get" ? { f: "read", via: "get" } : { f: o.op },
          output:
            o.result === null
              ? undefined
              : o.result === "notFound"
                ? { found: false }
                : o.result === "ok"
                  ? { found: true }
                  : { found: true, version: o.result as number },
          callIndex: o.call,
          returnIndex: o.ret ?? Number.POSITIVE_INFINITY,
        }));
        expect(searchLinearization(KEY_MODEL, lin, 1_000_000).verdict).toBe(expected);
      }),
      { numRuns: 400, seed: 11 },
    );
  });
});
