import {
  type SingleKeyEvent,
  type SingleKeyResult,
  searchLinearization,
  singleKeyModel,
  singleKeyOps,
} from "@hsmpool/pool";

/**
 * Linearizability of one key's history (create / delete / get), for histories where
 * every event has a result and a return time (the pool checker resolves unanswered
 * writes from the committed log first), with the pool's single-key model and the
 * project's one search (@hsmpool/pool searchLinearization).
 *
 * Long runs make long histories, and a search over the whole of one is cubic or
 * worse. But real time cuts it: where no event is in flight (every earlier event
 * returned before the next one was called) every linearization must place all
 * earlier events first. So the history is split at those points and each segment is
 * searched from every state the previous segment can end in — exact, and each search
 * is small.
 */

export type KeyHistoryVerdict =
  | { ok: true }
  /** No linearization: `segment` holds the indexes (into the input) of the segment that has none. */
  | { ok: false; reason: "none"; segment: number[] }
  /** The search gave up (see MAX_STATES): undecided, which the checker reports as a failure. */
  | { ok: false; reason: "budget"; segment: number[] };

/** Search steps per segment, start and end state before giving up. Segments stay tiny with a few clients; this is a guard. */
const MAX_STEPS = 200_000;

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

/**
 * Every state a segment can end in, from `start`; null when a search gave up. A state is
 * an end state when the segment followed by a read observing it (after everything
 * else) linearizes. Candidates: absent, the start, and every version a create returned.
 */
function endStates(events: readonly SingleKeyEvent[], start: number): Set<number> | null {
  const ops = singleKeyOps(events);
  const after = 2 * events.length;
  const candidates = new Set<number>([0, start]);
  for (const e of events) if (e.op === "create" && typeof e.result === "number") candidates.add(e.result);
  const ends = new Set<number>();
  for (const end of candidates) {
    const observed: SingleKeyResult = end === 0 ? "notFound" : end;
    const read = { input: "get" as const, output: observed, callIndex: after, returnIndex: after + 1 };
    const r = searchLinearization(singleKeyModel(start), [...ops, read], MAX_STEPS);
    if (r.verdict === "unknown") return null;
    if (r.verdict) ends.add(end);
  }
  return ends;
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
