/**
 * Virtual time and the event queue. Time is an integer number of simulated
 * microseconds since the start of the run; nothing here reads a real clock.
 *
 * Events at the same instant run in the order they were scheduled (a sequence
 * number breaks ties), so a run never depends on heap internals.
 */

export const US_PER_MS = 1000;
export const US_PER_S = 1_000_000;

interface Slot<E> {
  atUs: number;
  seq: number;
  event: E;
}

function before<E>(a: Slot<E>, b: Slot<E>): boolean {
  return a.atUs < b.atUs || (a.atUs === b.atUs && a.seq < b.seq);
}

/** A binary min-heap of events keyed by (atUs, insertion order). */
export class EventQueue<E> {
  private readonly heap: Slot<E>[] = [];
  private seq = 0;
  private nowUs = 0;

  /** The current simulated time: the time of the last event taken from the queue. */
  get now(): number {
    return this.nowUs;
  }

  get size(): number {
    return this.heap.length;
  }

  /** Schedule `event` at absolute time `atUs` (never in the past). */
  at(atUs: number, event: E): void {
    if (!Number.isInteger(atUs)) throw new RangeError(`event time must be an integer (µs), got ${atUs}`);
    if (atUs < this.nowUs) throw new RangeError(`event at ${atUs}µs is before now (${this.nowUs}µs)`);
    const slot = { atUs, seq: this.seq++, event };
    const h = this.heap;
    h.push(slot);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent] as Slot<E>;
      if (!before(slot, p)) break;
      h[i] = p;
      i = parent;
    }
    h[i] = slot;
  }

  /** Schedule `event` `delayUs` from now (fractions are rounded to whole µs). */
  after(delayUs: number, event: E): void {
    this.at(this.nowUs + Math.max(0, Math.round(delayUs)), event);
  }

  /** Time of the next event, or undefined when the queue is empty. */
  peekTime(): number | undefined {
    return this.heap[0]?.atUs;
  }

  /** Take the next event and advance the clock to its time. */
  pop(): E | undefined {
    const h = this.heap;
    const top = h[0];
    if (top === undefined) return undefined;
    const last = h.pop() as Slot<E>;
    if (h.length > 0) {
      let i = 0;
      const n = h.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let c = l;
        if (r < n && before(h[r] as Slot<E>, h[l] as Slot<E>)) c = r;
        const child = h[c] as Slot<E>;
        if (!before(child, last)) break;
        h[i] = child;
        i = c;
      }
      h[i] = last;
    }
    this.nowUs = top.atUs;
    return top.event;
  }
}

/** "1.250s" — how the transcript shows a simulated instant. */
export function formatSimTime(us: number): string {
  return `${(us / US_PER_S).toFixed(3)}s`;
}
