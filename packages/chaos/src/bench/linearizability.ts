/**
 * Benchmark: the bounded per-key linearizability search (Porcupine-style linked list,
 * bitset memo, symmetry cut for unknown writes) against the baseline measured in the
 * same run — @hsmpool/pool's linearizeSingleKey, the small unbounded checker it
 * generalises — on the same single-key histories: 4 clients, overlapping operations,
 * 10% of writes with an unknown outcome. Prints milliseconds per history and the
 * ratio. Sizes stop growing once the baseline needs more than ~5 s.
 */

import { Prng } from "@hsmpool/faults";
import { type LinOp, linearizeSingleKey, type SingleKeyEvent, searchLinearization } from "@hsmpool/pool";
import { KEY_MODEL, type KeyInput, type KeyOutput } from "../checkers/linearizability.js";

/** A history from a sequential execution at random points inside each operation's interval, as 4 concurrent clients see it. */
function history(n: number, prng: Prng): SingleKeyEvent[] {
  const raw: {
    op: "create" | "delete" | "get";
    call: number;
    point: number;
    ret: number;
    unknown: boolean;
  }[] = [];
  const busyUntil = [0, 0, 0, 0];
  let t = 0;
  for (let i = 0; i < n; i++) {
    const p = prng.int(4);
    t += 1 + prng.int(3);
    const call = Math.max(t * 10, (busyUntil[p] ?? 0) + 1);
    const point = call + 1 + prng.int(8);
    const ret = point + 1 + prng.int(40);
    busyUntil[p] = ret;
    const roll = prng.int(10);
    const op = roll < 4 ? "create" : roll < 6 ? "delete" : "get";
    raw.push({ op, call, point, ret, unknown: op !== "get" && prng.int(10) === 0 });
  }
  raw.sort((a, b) => a.point - b.point);
  let latest = 0;
  return raw.map((r) => {
    let result: number | "ok" | "notFound";
    if (r.op === "create") result = ++latest;
    else if (r.op === "delete") {
      result = latest === 0 ? "notFound" : "ok";
      latest = 0;
    } else result = latest === 0 ? "notFound" : latest;
    // Calls on even, returns on odd instants: no two events at the same time.
    return {
      op: r.op,
      callMs: r.call * 2,
      returnMs: r.unknown ? null : r.ret * 2 + 1,
      result: r.unknown ? null : result,
    };
  });
}

function toLinOps(events: readonly SingleKeyEvent[]): LinOp<KeyInput, KeyOutput>[] {
  return events.map((e) => ({
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
    returnIndex: e.returnMs === null ? Number.POSITIVE_INFINITY : e.returnMs,
  }));
}

function timeMs(fn: () => void, minMs = 300): number {
  let runs = 0;
  const start = performance.now();
  while (performance.now() - start < minMs || runs < 3) {
    fn();
    runs++;
  }
  return (performance.now() - start) / runs;
}

/** The same history with its last read of a version changed to a version that never existed then: no linearization. */
function corrupted(events: SingleKeyEvent[]): SingleKeyEvent[] {
  const out = events.map((e) => ({ ...e }));
  for (let i = out.length - 1; i >= 0; i--) {
    const e = out[i] as SingleKeyEvent;
    if (e.op === "get" && typeof e.result === "number") {
      e.result += 7;
      break;
    }
  }
  return out;
}

function table(title: string, sizes: number[], make: (n: number, rng: Prng) => SingleKeyEvent[]): void {
  const prng = Prng.fromSeed(2026);
  console.log(`\n${title}`);
  console.log("ops/key  bounded search  linearizeSingleKey (baseline)  ratio   verdict");
  for (const n of sizes) {
    const events = make(n, prng.split(`n${n}`));
    const ops = toLinOps(events);
    let verdict: unknown;
    const ours = timeMs(() => {
      verdict = searchLinearization(KEY_MODEL, ops, 10_000_000).verdict;
    });
    const baseStart = performance.now();
    const baseVerdict = linearizeSingleKey(events) !== null;
    const once = performance.now() - baseStart;
    const base = once < 5_000 ? timeMs(() => void linearizeSingleKey(events)) : once;
    console.log(
      `${String(n).padStart(7)}  ${ours.toFixed(3).padStart(11)} ms  ${base.toFixed(3).padStart(24)} ms  ${(base / ours).toFixed(1).padStart(6)}x  ${verdict}${verdict === baseVerdict ? "" : ` (baseline says ${baseVerdict})`}`,
    );
    if (once > 5_000) break;
  }
}

table(
  "linearizable histories (4 clients, 10% of writes with unknown outcome)",
  [25, 50, 100, 200, 400, 800],
  history,
);
// Beyond ~400 operations an impossible history takes minutes for both (the space is exponential; the chaos
// checker's step bound turns that into the verdict "unknown").
table(
  "the same histories with one impossible read at the end (the whole space is searched)",
  [25, 50, 100, 200, 400],
  (n, rng) => corrupted(history(n, rng)),
);
