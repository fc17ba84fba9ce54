/**
 * A bounded linearizability search for one object (Wing & Gong with Lowe's
 * memoisation, as Porcupine's checkSingle does it), generic over a sequential model.
 * One copy for the project: the chaos checker runs it per key, and linearizeSingleKey
 * (linearizability.ts) is this search over the single-key model. Any model, a step
 * bound and a bound on memoised states, each giving the verdict "unknown" (with the
 * reason) when hit, and a symmetry cut for operations whose outcome is unknown.
 *
 * Operations are intervals [callIndex, returnIndex] in the history's real-time
 * order. An operation whose outcome is unknown returns at +infinity with no output:
 * it may take effect anywhere after its call, and taking effect after everything
 * else is the same as never (nothing observes it). Pure.
 */

export interface Model<S, I, O> {
  init: S;
  /** Applying `input` with observed `output` (undefined = not observed) from `state`: allowed, and the next state. */
  step(state: S, input: I, output: O | undefined): { ok: boolean; next: S };
  /** A string that is equal for equal states (memo key). */
  stateKey(state: S): string;
  /** A string that is equal for equal inputs (symmetry between unobserved operations). */
  inputKey(input: I): string;
}

export interface LinOp<I, O> {
  input: I;
  /** undefined: the outcome is unknown. */
  output: O | undefined;
  callIndex: number;
  /** Number.POSITIVE_INFINITY when the outcome is unknown. */
  returnIndex: number;
}

export type SearchResult =
  | { verdict: true; steps: number; order: number[] }
  | {
      verdict: false;
      steps: number;
      /** The most operations any attempt linearized, in that attempt's order. */
      longestPrefix: number[];
      /** An operation that had to take effect next but could not (index into ops). */
      stuckAt: number | undefined;
    }
  | { verdict: "unknown"; steps: number; reason: string };

interface Entry {
  op: number;
  isCall: boolean;
  /** For a call: its return entry. */
  match: Entry | undefined;
  prev: Entry | undefined;
  next: Entry | undefined;
}

/**
 * Memoised states the search keeps at most. A JavaScript Set holds at most 2^24 entries (and that many
 * keys would take gigabytes); a search that needs more answers "unknown" instead of crashing.
 */
export const MAX_MEMO_STATES = 4_000_000;

/**
 * Searches for a linearization of `ops` under `model`, giving up with "unknown" after `maxSteps` steps
 * or once it has memoised `maxStates` states.
 */
export function searchLinearization<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly LinOp<I, O>[],
  maxSteps: number,
  maxStates = MAX_MEMO_STATES,
): SearchResult {
  for (const [i, o] of ops.entries()) {
    if (!(o.callIndex < o.returnIndex)) throw new RangeError(`operation ${i} returns before it is called`);
    if ((o.returnIndex === Number.POSITIVE_INFINITY) !== (o.output === undefined)) {
      throw new RangeError(`operation ${i}: an unknown outcome needs returnIndex = +infinity, and only then`);
    }
  }
  const head = buildList(ops);
  const n = ops.length;
  const linearized = new Uint32Array(Math.ceil(n / 32) || 1);
  const cache = new Set<string>();
  const calls: { entry: Entry; state: S }[] = [];
  let state = model.init;
  let entry = head.next;
  let steps = 0;
  let longestPrefix: number[] = [];
  let stuckAt: number | undefined;

  while (head.next !== undefined) {
    if (++steps > maxSteps) {
      return {
        verdict: "unknown",
        steps: steps - 1,
        reason: `search bound of ${maxSteps} steps reached with ${calls.length} of ${n} operations placed`,
      };
    }
    if (entry === undefined) throw new Error("linearizability search: ran off the list");
    if (entry.isCall) {
      const op = ops[entry.op] as LinOp<I, O>;
      if (op.output === undefined && hasEarlierTwin(head, entry, ops, model)) {
        entry = entry.next;
        continue;
      }
      const { ok, next } = model.step(state, op.input, op.output);
      if (ok) {
        setBit(linearized, entry.op, true);
        const key = `${linearized.join(",")}|${model.stateKey(next)}`;
        if (!cache.has(key)) {
          if (cache.size >= maxStates) {
            return {
              verdict: "unknown",
              steps,
              reason: `search memo full (${maxStates} states) after ${steps} steps with ${calls.length} of ${n} operations placed`,
            };
          }
          cache.add(key);
          calls.push({ entry, state });
          state = next;
          lift(entry);
          entry = head.next;
          continue;
        }
        setBit(linearized, entry.op, false);
      }
      entry = entry.next;
    } else {
      // A return before its call was placed: this branch cannot work; undo the last placement.
      // The deepest attempt and the operation that stopped it, recorded together.
      if (stuckAt === undefined || calls.length > longestPrefix.length) {
        longestPrefix = calls.map((c) => c.entry.op);
        stuckAt = entry.op;
      }
      const top = calls.pop();
      if (!top) return { verdict: false, steps, longestPrefix, stuckAt };
      state = top.state;
      setBit(linearized, top.entry.op, false);
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  return { verdict: true, steps, order: calls.map((c) => c.entry.op) };
}

/**
 * An unobserved operation with the same input, still unplaced and earlier in the
 * list, was already tried at this position: placing this one instead leads to the
 * same states (both stay placeable forever), so skip it.
 */
function hasEarlierTwin<S, I, O>(
  head: Entry,
  entry: Entry,
  ops: readonly LinOp<I, O>[],
  model: Model<S, I, O>,
): boolean {
  const key = model.inputKey((ops[entry.op] as LinOp<I, O>).input);
  for (let e = head.next; e !== undefined && e !== entry; e = e.next) {
    const other = ops[e.op] as LinOp<I, O>;
    if (e.isCall && other.output === undefined && model.inputKey(other.input) === key) return true;
  }
  return false;
}

function buildList<I, O>(ops: readonly LinOp<I, O>[]): Entry {
  const events: { at: number; entry: Entry }[] = [];
  ops.forEach((o, i) => {
    const ret: Entry = { op: i, isCall: false, match: undefined, prev: undefined, next: undefined };
    const call: Entry = { op: i, isCall: true, match: ret, prev: undefined, next: undefined };
    events.push({ at: o.callIndex, entry: call }, { at: o.returnIndex, entry: ret });
  });
  // Calls before returns at equal positions cannot happen with history indexes; the tie-break keeps it total.
  events.sort(
    (a, b) => a.at - b.at || (a.entry.isCall ? -1 : 1) - (b.entry.isCall ? -1 : 1) || a.entry.op - b.entry.op,
  );
  const head: Entry = { op: -1, isCall: false, match: undefined, prev: undefined, next: undefined };
  let last = head;
  for (const { entry } of events) {
    last.next = entry;
    entry.prev = last;
    last = entry;
  }
  return head;
}

/** Removes a call and its return from the list (they stay linked to their neighbours for unlift). */
function lift(call: Entry): void {
  (call.prev as Entry).next = call.next;
  if (call.next) call.next.prev = call.prev;
  const ret = call.match as Entry;
  (ret.prev as Entry).next = ret.next;
  if (ret.next) ret.next.prev = ret.prev;
}

function unlift(call: Entry): void {
  const ret = call.match as Entry;
  (ret.prev as Entry).next = ret;
  if (ret.next) ret.next.prev = ret;
  (call.prev as Entry).next = call;
  if (call.next) call.next.prev = call;
}

function setBit(bits: Uint32Array, i: number, on: boolean): void {
  const w = i >>> 5;
  const mask = 1 << (i & 31);
  bits[w] = on ? (bits[w] ?? 0) | mask : (bits[w] ?? 0) & ~mask;
}
