/**
 * Time as the process shells (node, HFC) see it: the wall clock and every timer. Production uses the
 * process's clock (systemClock); the simulator passes one that runs in virtual time,
 * so the order of timer callbacks is a function of its seed. Shell code never calls
 * Date.now, setTimeout or setInterval itself.
 */

/** An opaque timer reference (what setTimeout/setInterval returned). */
export type TimerId = { readonly timer: unknown };

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerId;
  setInterval(fn: () => void, ms: number): TimerId;
  /**
   * Runs `fn` once the I/O callbacks of this event-loop turn have run (setImmediate), so
   * work that many arrivals of one turn would each start can start once for all of them.
   */
  afterTurn(fn: () => void): void;
  /** Cancels a timeout or an interval; null/undefined and spent timers are ignored. */
  clear(timer: TimerId | null | undefined): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => ({ timer: setTimeout(fn, ms) }),
  setInterval: (fn, ms) => ({ timer: setInterval(fn, ms) }),
  afterTurn: (fn) => {
    setImmediate(fn);
  },
  clear: (t) => {
    if (t) clearTimeout(t.timer as NodeJS.Timeout);
  },
};

/** Resolves after `ms` on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, Math.max(0, ms)));
}
