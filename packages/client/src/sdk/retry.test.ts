import { type ErrorCode, ErrorCodes } from "@hsmpool/errors";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  backoffMs,
  DEFAULT_RETRY_POLICY,
  decideRetry,
  RETRYABLE_CODES,
  type RetryPolicy,
  validateRetryPolicy,
} from "./retry.js";

const policyArb: fc.Arbitrary<RetryPolicy> = fc.record({
  maxAttempts: fc.integer({ min: 1, max: 20 }),
  initialBackoffMs: fc.integer({ min: 0, max: 500 }),
  maxBackoffMs: fc.integer({ min: 0, max: 5000 }),
  multiplier: fc.double({ min: 1, max: 4, noNaN: true }),
  totalTimeoutMs: fc.integer({ min: 0, max: 30_000 }),
});
/** The retry input for a NotLeader answer without a hint, at `attempt`, with jitter fixed at `r`. */
function notLeaderAnswer(attempt: number, r: number) {
  return {
    attempt,
    elapsedMs: 0,
    code: "NotLeader" as const,
    redirect: false,
    previousWasRedirect: false,
    policy: DEFAULT_RETRY_POLICY,
    random: () => r,
  };
}
const codeArb = fc.constantFrom(...(Object.keys(ErrorCodes) as ErrorCode[]));

/** Replays a whole sequence of failures with a virtual clock: how many attempts, how much time. */
function simulate(policy: RetryPolicy, code: ErrorCode, callMs: number, random: () => number) {
  let elapsedMs = 0;
  for (let attempt = 1; ; attempt++) {
    elapsedMs += callMs;
    const d = decideRetry({
      attempt,
      elapsedMs,
      code,
      redirect: false,
      previousWasRedirect: false,
      policy,
      random,
    });
    if (!d.retry) return { attempts: attempt, elapsedMs };
    elapsedMs += d.delayMs;
  }
}

describe("retry policy", () => {
  it("retries only NotLeader, ServiceUnavailable, NoQuorum, OwnershipPending and Timeout", () => {
    expect([...RETRYABLE_CODES].sort()).toEqual([
      "NoQuorum",
      "NotLeader",
      "OwnershipPending",
      "ServiceUnavailable",
      "Timeout",
    ]);
    fc.assert(
      fc.property(codeArb, (code) => {
        const d = decideRetry({
          attempt: 1,
          elapsedMs: 0,
          code,
          redirect: false,
          previousWasRedirect: false,
          policy: DEFAULT_RETRY_POLICY,
          random: () => 0.5,
        });
        expect(d.retry).toBe(RETRYABLE_CODES.has(code));
      }),
    );
  });

  it("is bounded: never more than maxAttempts, never sleeping past totalTimeoutMs", () => {
    fc.assert(
      fc.property(
        policyArb,
        fc.constantFrom(...RETRYABLE_CODES),
        fc.integer({ min: 0, max: 200 }),
        fc.double({ min: 0, max: 0.999, noNaN: true }),
        (policy, code, callMs, r) => {
          const { attempts, elapsedMs } = simulate(policy, code, callMs, () => r);
          expect(attempts).toBeLessThanOrEqual(policy.maxAttempts);
          // Sleeps never cross the total budget; only the last call itself may run past it.
          expect(elapsedMs).toBeLessThanOrEqual(Math.max(policy.totalTimeoutMs, 0) + callMs * attempts);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("backs off exponentially with jitter between half and all of the step, capped at maxBackoffMs", () => {
    fc.assert(
      fc.property(
        policyArb,
        fc.integer({ min: 1, max: 30 }),
        fc.double({ min: 0, max: 0.999, noNaN: true }),
        (policy, attempt, r) => {
          const ceiling = Math.min(
            policy.maxBackoffMs,
            policy.initialBackoffMs * policy.multiplier ** (attempt - 1),
          );
          const d = backoffMs(attempt, policy, () => r);
          expect(d).toBeGreaterThanOrEqual(Math.floor(ceiling / 2));
          expect(d).toBeLessThanOrEqual(Math.ceil(ceiling));
        },
      ),
    );
    const p = { ...DEFAULT_RETRY_POLICY, initialBackoffMs: 100, maxBackoffMs: 10_000 };
    expect([1, 2, 3, 4].map((a) => backoffMs(a, p, () => 0.999))).toEqual([100, 200, 400, 800]);
  });

  it("follows a NotLeader redirect at once, but backs off on a second redirect in a row", () => {
    const base = {
      attempt: 1,
      elapsedMs: 0,
      code: "NotLeader" as const,
      policy: DEFAULT_RETRY_POLICY,
      random: () => 0.999,
    };
    expect(decideRetry({ ...base, redirect: true, previousWasRedirect: false })).toEqual({
      retry: true,
      delayMs: 0,
    });
    const second = decideRetry({ ...base, attempt: 2, redirect: true, previousWasRedirect: true });
    expect(second.retry && second.delayMs).toBeGreaterThan(0);
  });

  it("polls a leaderless NotLeader within two initial backoffs at any attempt (an election is under way)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 39 }),
        fc.double({ min: 0, max: 0.999, noNaN: true }),
        (attempt, r) => {
          const input = notLeaderAnswer(attempt, r);
          const leaderless = decideRetry({ ...input, leaderless: true });
          const other = decideRetry(input);
          if (!leaderless.retry || !other.retry) throw new Error("expected retries");
          expect(leaderless.delayMs).toBeLessThanOrEqual(2 * DEFAULT_RETRY_POLICY.initialBackoffMs);
          expect(leaderless.delayMs).toBeLessThanOrEqual(other.delayMs);
        },
      ),
    );
  });

  it("polls answers naming a leader that just timed out with a growing backoff, up to maxBackoffMs; a redirect to it never at once", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 39 }),
        fc.double({ min: 0, max: 0.999, noNaN: true }),
        (attempt, r) => {
          const input = { ...notLeaderAnswer(attempt, r), leaderless: true };
          const delays = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => {
            const d = decideRetry({ ...input, suspectNamed: n });
            if (!d.retry) throw new Error("expected a retry");
            expect(d.delayMs).toBe(backoffMs(n, DEFAULT_RETRY_POLICY, input.random));
            return d.delayMs;
          });
          for (let i = 1; i < delays.length; i++)
            expect(delays[i]).toBeGreaterThanOrEqual(delays[i - 1] as number);
          expect(Math.max(...delays)).toBeLessThanOrEqual(DEFAULT_RETRY_POLICY.maxBackoffMs);
          const vouched = decideRetry({ ...input, redirect: true, redirectToSuspect: true, suspectNamed: 3 });
          expect(vouched.retry && vouched.delayMs).toBe(backoffMs(1, DEFAULT_RETRY_POLICY, input.random));
          expect(vouched.retry && vouched.delayMs).toBeGreaterThan(0);
        },
      ),
    );
  });

  it("rejects policies that would not be bounded", () => {
    expect(() => validateRetryPolicy({ ...DEFAULT_RETRY_POLICY, maxAttempts: 0 })).toThrow(/maxAttempts/);
    expect(() =>
      validateRetryPolicy({ ...DEFAULT_RETRY_POLICY, totalTimeoutMs: Number.POSITIVE_INFINITY }),
    ).toThrow(/totalTimeoutMs/);
    expect(() => validateRetryPolicy({ ...DEFAULT_RETRY_POLICY, maxAttempts: 2.5 })).toThrow(/whole number/);
  });
});
