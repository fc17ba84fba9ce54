/**
 * Client writes waiting for their log entry to apply, matched by requestId (every
 * key-changing pool command carries one). A write is answered only from the apply
 * outcome — never before its entry is committed and applied — and a write whose
 * entry does not apply within the bounded wait fails with NoQuorum: it was not
 * acknowledged, may still commit later, and a retry with the same requestId is safe.
 */
import { HsmPoolError } from "@hsmpool/errors";
import type { ApplyOutcome } from "@hsmpool/pool";
import type { Clock, TimerId } from "../seams/clock.js";

interface Waiter {
  resolve: (outcome: ApplyOutcome) => void;
  /** Runs inside settle, while the store holds exactly the state this entry produced. */
  onApplied: ((outcome: ApplyOutcome) => void) | undefined;
  reject: (e: unknown) => void;
  timer: TimerId;
}

export class ProposalWaiters {
  private readonly waiting = new Map<string, Waiter[]>();

  /** `quorumNote` says why a write may not commit, e.g. "no quorum: 1 of 3 voters reachable (n2, n3 unreachable)". */
  constructor(
    private readonly clock: Clock,
    private readonly timeoutMs: number,
    private readonly quorumNote: () => string = () => "no quorum of pool members is reachable",
  ) {}

  /** Register before proposing, so an outcome cannot slip past. */
  wait(requestId: string, onApplied?: (outcome: ApplyOutcome) => void): Promise<ApplyOutcome> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        onApplied,
        reject,
        timer: this.clock.setTimeout(() => {
          this.remove(requestId, waiter);
          reject(
            new HsmPoolError(
              "NoQuorum",
              `${this.quorumNote()}: the write was not committed within ${this.timeoutMs} ms ` +
                `(it may still commit; retrying with requestId ${requestId} is safe)`,
              { retryable: true, requestId },
            ),
          );
        }, this.timeoutMs),
      };
      this.waiting.set(requestId, [...(this.waiting.get(requestId) ?? []), waiter]);
    });
  }

  /** Fails the waiters of `requestId` at once (e.g. the proposal could not even be made). */
  abandon(requestId: string, error: unknown): void {
    for (const w of this.waiting.get(requestId) ?? []) {
      this.clock.clear(w.timer);
      w.reject(error);
    }
    this.waiting.delete(requestId);
  }

  /** Called for every applied outcome (the one place writes are acknowledged). */
  settle(outcome: ApplyOutcome): void {
    const requestId = "requestId" in outcome ? outcome.requestId : null;
    if (requestId === null) return;
    const waiters = this.waiting.get(requestId);
    if (!waiters) return;
    this.waiting.delete(requestId);
    for (const w of waiters) {
      this.clock.clear(w.timer);
      w.onApplied?.(outcome);
      w.resolve(outcome);
    }
  }

  private remove(requestId: string, waiter: Waiter): void {
    const rest = (this.waiting.get(requestId) ?? []).filter((w) => w !== waiter);
    if (rest.length === 0) this.waiting.delete(requestId);
    else this.waiting.set(requestId, rest);
  }

  rejectAll(error: unknown): void {
    for (const id of [...this.waiting.keys()]) this.abandon(id, error);
  }
}
