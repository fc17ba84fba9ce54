/**
 * results.json: the verdict of a run as data. `valid` merges the checkers that judge
 * correctness or the hypothesis (availability and latency are measurements; the
 * hypothesis judges them). A harness error makes the run "unknown".
 */
import { type CheckerResult, mergeValidity, type Validity } from "./checkers/result.js";

export interface RunResults {
  valid: Validity;
  scenario: { name: string; file: string; description: string; seed: number; durationMs: number };
  runDir: string;
  startedAt: string;
  elapsedMs: number;
  /** Times in ms since the run's clock started (the pool start is before 0 of the workload). */
  phases: { workloadFromMs: number; workloadToMs: number; healedFromMs: number; endMs: number };
  checkers: Record<string, CheckerResult>;
  /** Set when the harness itself failed (the pool never started, the run hit its time bound...). */
  harnessError?: string;
  notes: string[];
}

/** Checkers whose verdict is the run's verdict. */
export const JUDGING_CHECKERS = [
  "linearizability",
  "durability",
  "signatures",
  "healing",
  "node-invariants",
  "leaks",
  "hypothesis",
] as const;

/** A region-loss run's: the lost pool cannot heal, so recovery takes the place of durability and healing. */
export const REGION_LOSS_JUDGING_CHECKERS = [
  "linearizability",
  "signatures",
  "recovery",
  "node-invariants",
  "leaks",
] as const;

export function overallValidity(
  checkers: Record<string, CheckerResult>,
  harnessError: string | undefined,
  judging: readonly string[] = JUDGING_CHECKERS,
): Validity {
  const judged = judging.map((n) => checkers[n]?.valid ?? "unknown");
  const v = mergeValidity(judged);
  // A harness error never turns a proven violation into "unknown", but it does stop a "valid".
  if (harnessError !== undefined && v === true) return "unknown";
  return v;
}

/** 0 valid, 1 invalid, 2 unknown or harness error. */
export function exitCodeFor(valid: Validity): 0 | 1 | 2 {
  return valid === true ? 0 : valid === false ? 1 : 2;
}
