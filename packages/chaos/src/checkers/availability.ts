/**
 * Availability: the share of operations that got an answer (a KeyNotFound is an
 * answer), and every window of at least `minGapMs` in which operations were tried but
 * none succeeded, attributed to the faults whose effect overlapped it (from the fault's
 * start until the pool was healthy again). A window no fault explains is reported as
 * unattributed: unavailability without a cause. Pure.
 */
import { type HistoryEvent, pairOperations } from "../history.js";
import type { Fault } from "../timeline.js";
import type { FaultHealing } from "./healing.js";
import type { CheckerResult } from "./result.js";

export interface UnavailableWindow {
  startMs: number;
  endMs: number;
  durationMs: number;
  /** Operations that were tried in the window and did not succeed. */
  attempts: number;
  /** Fault ids whose effect overlapped the window; empty = unattributed. */
  faults: number[];
}

export interface AvailabilityInput {
  events: readonly HistoryEvent[];
  faults: readonly Fault[];
  healing: readonly FaultHealing[];
  /** The workload phase (final reads excluded). */
  fromMs: number;
  toMs: number;
  minGapMs: number;
}

/** An answer about the key store's state is service (KeyNotFound; Conflict: a soft-deleted name). */
const answered = (type: string, code: string | undefined) =>
  type === "ok" || (type === "fail" && (code === "KeyNotFound" || code === "Conflict"));

export function checkAvailability(input: AvailabilityInput): CheckerResult {
  const ops = pairOperations(input.events).filter((o) => !o.invoke.final && o.complete);
  let ok = 0;
  const successes: number[] = [];
  const failures: { invokeMs: number; completeMs: number }[] = [];
  for (const o of ops) {
    const c = o.complete as NonNullable<typeof o.complete>;
    if (answered(c.type, c.error?.code)) {
      ok++;
      successes.push(c.timeMs);
    } else failures.push({ invokeMs: o.invoke.timeMs, completeMs: c.timeMs });
  }
  successes.sort((a, b) => a - b);
  const bounds = [input.fromMs, ...successes.filter((t) => t > input.fromMs && t < input.toMs), input.toMs];
  const effect = input.faults
    .filter((f) => f.error === undefined)
    .map((f) => {
      const h = input.healing.find((x) => x.faultId === f.id);
      const endMs = Math.max(f.healMs ?? f.startMs, h?.healthyAtMs ?? input.toMs);
      return { id: f.id, startMs: f.startMs, endMs };
    });
  const windows: UnavailableWindow[] = [];
  for (let i = 1; i < bounds.length; i++) {
    const startMs = bounds[i - 1] as number;
    const endMs = bounds[i] as number;
    if (endMs - startMs < input.minGapMs) continue;
    // Only a window in which someone tried and failed is unavailability (not just a quiet moment).
    const attempts = failures.filter((f) => f.completeMs > startMs && f.invokeMs < endMs).length;
    if (attempts === 0) continue;
    const faults = effect.filter((e) => e.startMs <= endMs && e.endMs >= startMs).map((e) => e.id);
    windows.push({ startMs, endMs, durationMs: endMs - startMs, attempts, faults });
  }
  const total = ops.length;
  const availability = total === 0 ? 1 : ok / total;
  const longestMs = windows.reduce((m, w) => Math.max(m, w.durationMs), 0);
  const unattributed = windows.filter((w) => w.faults.length === 0);
  const summary =
    `${(availability * 100).toFixed(1)}% of ${total} operations answered; ${windows.length} unavailable windows` +
    (windows.length > 0 ? ` (longest ${(longestMs / 1000).toFixed(1)} s)` : "") +
    (unattributed.length > 0 ? `, ${unattributed.length} not explained by any fault` : "");
  return {
    name: "availability",
    valid: true,
    summary,
    details: {
      operations: total,
      answered: ok,
      availability,
      windows,
      longestUnavailableMs: longestMs,
      unattributed: unattributed.length,
    },
  };
}
