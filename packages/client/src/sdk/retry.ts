/**
 * The SDK's retry policy (pure): which failures are worth another attempt, and how
 * long to wait. Bounded twice — by attempts and by total time — so a caller always
 * gets an answer. A NotLeader that names the leader is followed at once (the first
 * time in a row); a NotLeader that names none (an election is under way) is asked
 * again soon, at most LEADERLESS_POLL_STEPS initial backoffs later, so a client sees
 * the new primary within a poll of its election; one that names a leader the client
 * just saw time out is polled with a growing backoff (it may be busy for seconds);
 * everything else backs off exponentially with jitter.
 */
import { type ErrorCode, fail } from "@hsmpool/errors";

export interface RetryPolicy {
  /** Attempts in total, the first included. */
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  multiplier: number;
  /** No retry starts once this much time has passed since the first attempt. */
  totalTimeoutMs: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  // Enough to poll through an election (leaderless answers wait at most 2 initial backoffs); totalTimeoutMs bounds it too.
  maxAttempts: 40,
  initialBackoffMs: 50,
  maxBackoffMs: 1000,
  multiplier: 2,
  totalTimeoutMs: 20_000,
});

/**
 * Failures where another member (or the same one a moment later) can succeed. All
 * requests are safe to repeat: writes carry a request id that makes them idempotent.
 */
export const RETRYABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "NotLeader",
  "ServiceUnavailable",
  "NoQuorum",
  "OwnershipPending",
  "Timeout",
]);

export function validateRetryPolicy(p: RetryPolicy): RetryPolicy {
  const checks: [keyof RetryPolicy, number, number][] = [
    ["maxAttempts", 1, 100],
    ["initialBackoffMs", 0, 60_000],
    ["maxBackoffMs", 0, 60_000],
    ["multiplier", 1, 10],
    ["totalTimeoutMs", 0, 600_000],
  ];
  for (const [field, min, max] of checks) {
    const v = p[field];
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
      fail("BadParameter", `retry.${field} must be a number from ${min} to ${max}, got ${v}`, { field });
    }
  }
  if (!Number.isInteger(p.maxAttempts)) fail("BadParameter", "retry.maxAttempts must be a whole number");
  return p;
}

export interface RetryInput {
  /** Attempts made so far (1 after the first failure). */
  attempt: number;
  /** Time since the first attempt started. */
  elapsedMs: number;
  code: ErrorCode;
  /** The failure named another address to go to (NotLeader with `hsmpool-leader-addr`). */
  redirect: boolean;
  /** The previous failure was a redirect too (two in a row: back off, leaders may be changing). */
  previousWasRedirect: boolean;
  /** NotLeader naming no leader worth following (none known, or one that just timed out): an election is under way. */
  leaderless?: boolean;
  /**
   * Answers in a row (this one included) that named a leader which had just timed out: its
   * followers still follow it, so it is slow rather than gone, or an election is coming. Each
   * such poll waits twice as long as the one before (up to maxBackoffMs) instead of the
   * leaderless cadence, so a primary busy for seconds does not use up the attempts.
   */
  suspectNamed?: number;
  /** The redirect goes to a member that timed out (its followers vouch for it): after one initial backoff, never at once. */
  redirectToSuspect?: boolean;
  policy: RetryPolicy;
  /** Uniform in [0, 1): jitter source. */
  random: () => number;
}

export type RetryDecision = { retry: false; reason: string } | { retry: true; delayMs: number };

/** A leaderless answer is asked again after at most this many initial backoffs. */
export const LEADERLESS_POLL_STEPS = 2;

export function backoffMs(attempt: number, policy: RetryPolicy, random: () => number): number {
  const ceiling = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.multiplier ** (attempt - 1));
  // "Equal jitter": at least half the step, so retries never collapse to zero.
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export function decideRetry(input: RetryInput): RetryDecision {
  const { attempt, elapsedMs, code, policy } = input;
  if (!RETRYABLE_CODES.has(code)) return { retry: false, reason: `${code} is not retryable` };
  if (attempt >= policy.maxAttempts) return { retry: false, reason: `gave up after ${attempt} attempts` };
  const delayMs = delayBefore(input);
  if (elapsedMs + delayMs > policy.totalTimeoutMs) {
    return { retry: false, reason: `gave up after ${attempt} attempts in ${Math.round(elapsedMs)} ms` };
  }
  return { retry: true, delayMs };
}

function delayBefore(input: RetryInput): number {
  const { attempt, policy, random } = input;
  const suspectNamed = input.suspectNamed ?? 0;
  // The polls that led here backed off already; one initial step keeps it from being at once.
  if (input.redirect && input.redirectToSuspect) return backoffMs(1, policy, random);
  if (input.redirect && !input.previousWasRedirect) return 0;
  if (suspectNamed > 0) return backoffMs(suspectNamed, policy, random);
  if (input.leaderless) return backoffMs(Math.min(attempt, LEADERLESS_POLL_STEPS), policy, random);
  return backoffMs(attempt, policy, random);
}
