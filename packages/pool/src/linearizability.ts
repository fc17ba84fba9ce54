/**
 * A tiny linearizability checker for the history of ONE key (create / delete / get),
 * used by the chaos checker. Model: the key's latest version, 0 when absent;
 * create adds version latest+1 (1 after a delete), delete removes every version.
 *
 * Search: Wing & Gong with memoisation (like Porcupine). An operation may be placed
 * next only if it was invoked before every still-unplaced completed operation
 * returned. An operation without a response (timeout, crash) may take effect at any
 * point after its call, or never. Exponential in the worst case: keep histories small.
 */

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

/** Returns a linearization (indexes into `history`) or null when none exists. */
export function linearizeSingleKey(history: readonly SingleKeyEvent[], initialLatest = 0): number[] | null {
  const n = history.length;
  const completed = history.map((e) => e.returnMs !== null);
  const seen = new Set<string>();
  const placed = new Array<boolean>(n).fill(false);
  const order: number[] = [];

  const search = (latest: number): boolean => {
    if (history.every((_, i) => placed[i] || !completed[i])) return true;
    const key = `${latest}|${placed.map((p) => (p ? 1 : 0)).join("")}`;
    if (seen.has(key)) return false;
    seen.add(key);
    let horizon = Number.POSITIVE_INFINITY;
    history.forEach((e, i) => {
      if (!placed[i] && e.returnMs !== null) horizon = Math.min(horizon, e.returnMs);
    });
    for (let i = 0; i < n; i++) {
      const e = history[i];
      if (!e || placed[i] || e.callMs > horizon) continue;
      const { next, result } = step(latest, e.op);
      if (e.result !== null && e.result !== result) continue;
      placed[i] = true;
      order.push(i);
      if (search(next)) return true;
      placed[i] = false;
      order.pop();
    }
    return false;
  };
  return search(initialLatest) ? order : null;
}
