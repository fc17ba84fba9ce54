/**
 * A tiny linearizability checker for the history of ONE key (create / delete / get),
 * used by the chaos checker. Model: the key's latest version, 0 when absent;
 * create adds version latest+1 (1 after a delete), delete removes every version.
 *
 * Search: the project's one linearizability search (linear-search.ts, Wing & Gong
 * with memoisation, like Porcupine). An operation without a response (timeout,
 * crash) may take effect at any point after its call, or never.
 */

import { type LinOp, type Model, searchLinearization } from "./linear-search.js";

export type SingleKeyOp = "create" | "delete" | "get";
/** create: the new version; get: the latest version or "notFound"; delete: "ok" or "notFound". */
export type SingleKeyResult = number | "ok" | "notFound";

export interface SingleKeyEvent {
  op: SingleKeyOp;
  /** Invocation time (any monotonic unit). */
  callMs: number;
  /** Response time; null when the client never learned the outcome. */
  returnMs: number | null;
  /** null when unknown (returnMs null). */
  result: SingleKeyResult | null;
}

function step(latest: number, op: SingleKeyOp): { next: number; result: SingleKeyResult } {
  switch (op) {
    case "create":
      return { next: latest + 1, result: latest + 1 };
    case "delete":
      return latest === 0 ? { next: 0, result: "notFound" } : { next: 0, result: "ok" };
    case "get":
      return { next: latest, result: latest === 0 ? "notFound" : latest };
  }
}

/** The single-key model for the search, from a key whose latest version is `initialLatest` (0: absent). */
export const singleKeyModel = (initialLatest: number): Model<number, SingleKeyOp, SingleKeyResult> => ({
  init: initialLatest,
  step(latest, op, observed) {
    const { next, result } = step(latest, op);
    return { ok: observed === undefined || observed === result, next };
  },
  stateKey: String,
  inputKey: (op) => op,
});

/**
 * Returns a linearization (indexes into `history`) or null when none exists. Operations without a
 * response that the linearization places after every completed one never took effect and are left out.
 */
export function linearizeSingleKey(history: readonly SingleKeyEvent[], initialLatest = 0): number[] | null {
  const r = searchLinearization(
    singleKeyModel(initialLatest),
    singleKeyOps(history),
    Number.POSITIVE_INFINITY,
  );
  if (r.verdict !== true) return null;
  const order = [...r.order];
  while (order.length > 0 && history[order[order.length - 1] as number]?.returnMs === null) order.pop();
  return order;
}

/** The history as the search's operations (intervals in real-time order; no response = unknown outcome). */
export function singleKeyOps(history: readonly SingleKeyEvent[]): LinOp<SingleKeyOp, SingleKeyResult>[] {
  // Real time as event positions: at equal times a call comes before a return (they overlap).
  const marks = history.flatMap((e, i) => [
    { at: e.callMs, isCall: true, i },
    ...(e.returnMs === null ? [] : [{ at: e.returnMs, isCall: false, i }]),
  ]);
  marks.sort((a, b) => a.at - b.at || (a.isCall ? -1 : 1) - (b.isCall ? -1 : 1) || a.i - b.i);
  const position = new Map(marks.map((m, k) => [`${m.isCall ? "c" : "r"}${m.i}`, k]));
  return history.map((e, i) => ({
    input: e.op,
    output: e.returnMs === null ? undefined : (e.result ?? undefined),
    callIndex: position.get(`c${i}`) as number,
    returnIndex: e.returnMs === null ? Number.POSITIVE_INFINITY : (position.get(`r${i}`) as number),
  }));
}
