import type { SingleKeyEvent, SingleKeyResult } from "@hsmpool/pool";

/**
 * Linearizability of one key's history (create / delete / get), for histories where
 * every event has a result and a return time (the pool checker resolves unanswered
 * writes from the committed log first). Same model as the pool's linearizeSingleKey:
 * the key's latest version, 0 when absent; create makes latest+1, delete removes all.
 *
 * Long runs make long histories, and a Wing & Gong search over the whole of one is
 * cubic or worse. But real time cuts it: where no event is in flight (every earlier
 * event returned before the next one was called) every linearization must place all
 * earlier events first. So the history is split at those points and each segment is
 * searched (Wing & Gong with memoisation, as the pool's checker) from every state the
 * previous segment can end in — exact, and each search is small.
 */

export type KeyHistoryVerdict =
  | { ok: true }
  /** No linearization: `segment` holds the indexes (into the input) of the segment that has none. */
  | { ok: false; reason: "none"; segment: number[] }
  /** The search gave up (see MAX_STATES): undecided, which the checker reports as a failure. */
  | { ok: false; reason: "budget"; segment: number[] };

/** Search states per segment before giving up. Segments stay tiny with a few clients; this is a guard. */
const MAX_STATES = 200_000;

function step(latest: number, op: SingleKeyEvent["op"]): { next: number; result: SingleKeyResult } {
  switch (op) {
    case "create":
      return { next: latest + 1, result: latest + 1 };
    case "delete":
      return { next: 0, result: latest === 0 ? "notFound" : "ok" };
    case "get":
      return { next: latest, result: latest === 0 ? "notFound" : latest };
  }
}

/** Indexes of `events` grouped into real-time segments, in order. */
export function segmentsOf(events: readonly SingleKeyEvent[]): number[][] {
  const order = events.map((_, i) => i).sort((a, b) => (events[a]?.callMs ?? 0) - (events[b]?.callMs ?? 0));
  const out: number[][] = [];
  let current: number[] = [];
  let maxReturn = Number.NEGATIVE_INFINITY;
  for (const i of order) {
    const e = events[i] as SingleKeyEvent;
    if (current.length > 0 && e.callMs > maxReturn) {
      out.push(current);
      current = [];
    }
    current.push(i);
    maxReturn = Math.max(maxReturn, e.returnMs ?? Number.POSITIVE_INFINITY);
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Every state a segment can end in, from `start`; null when the search budget ran out. */
function endStates(events: readonly SingleKeyEvent[], start: number): Set<number> | null {
  const n = events.length;
  const placed = new Array<boolean>(n).fill(false);
  const seen = new Set<string>();
  const ends = new Set<number>();
  let budget = MAX_STATES;
  const search = (latest: number, count: number): boolean => {
    if (count === n) {
      ends.add(latest);
      return true;
    }
    const key = `${latest}|${placed.map((p) => (p ? 1 : 0)).join("")}`;
    if (seen.has(key)) return true;
    seen.add(key);
    if (--budget < 0) return false;
    let horizon = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) if (!placed[i]) horizon = Math.min(horizon, events[i]?.returnMs ?? horizon);
    for (let i = 0; i < n; i++) {
      const e = events[i] as SingleKeyEvent;
      if (placed[i] || e.callMs > horizon) continue;
      const { next, result } = step(latest, e.op);
      if (e.result !== result) continue;
      placed[i] = true;
      const within = search(next, count + 1);
      placed[i] = false;
      if (!within) return false;
    }
    return true;
  };
  return search(start, 0) ? ends : null;
}

/** Is this key's history linearizable (starting from an absent key)? */
export function checkKeyHistory(events: readonly SingleKeyEvent[]): KeyHistoryVerdict {
  for (const e of events) {
    if (e.returnMs === null || e.result === null) throw new Error("checkKeyHistory needs completed events");
  }
  let states = new Set<number>([0]);
  for (const segment of segmentsOf(events)) {
    const part = segment.map((i) => events[i] as SingleKeyEvent);
    const next = new Set<number>();
    for (const s of states) {
      const ends = endStates(part, s);
      if (ends === null) return { ok: false, reason: "budget", segment };
      for (const e of ends) next.add(e);
    }
    if (next.size === 0) return { ok: false, reason: "none", segment };
    states = next;
  }
  return { ok: true };
}
