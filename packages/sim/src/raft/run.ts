import { fail } from "@hsmpool/errors";
import { Prng } from "@hsmpool/faults";
import type { UnsafeVariant } from "@hsmpool/raft";
import { type Fault, INTENSITIES, type IntensityName, shrinkList } from "../faults.js";
import { US_PER_S } from "../scheduler.js";
import { type ClusterStats, RaftCluster } from "./cluster.js";
import { type InvariantName, InvariantViolation } from "./invariants.js";
import { findScenario, SCENARIO_NAMES } from "./scenarios.js";

/**
 * One simulator run of the Raft core: a pure function of (seed, scenario,
 * intensity, duration, code). Returns the verdict and the trace hash; an invariant
 * violation ends the run early and is reported, never thrown.
 */

export const DEFAULT_DURATION_US = 60 * US_PER_S;
export const LIVENESS_BOUND_US = 10 * US_PER_S;
/** Faults start after this, so the cluster first elects a leader in peace. */
const FAULTS_FROM_US = 1 * US_PER_S;
/** Heal this long before the end: the liveness bound plus a little slack. */
const QUIET_TAIL_US = LIVENESS_BOUND_US + 2 * US_PER_S;

export interface RaftSimOptions {
  seed: number;
  scenario?: string;
  durationUs?: number;
  intensity?: IntensityName;
  /** Receives the readable transcript line by line (off when absent). */
  transcript?: (line: string) => void;
  /** Run the Raft core's deliberately wrong variant (checker self-test). */
  unsafeVariant?: UnsafeVariant;
  /** Keep only these faults (indices into the scenario's schedule): how a shrunk failure replays. */
  keepFaults?: readonly number[];
}

export interface RaftSimResult {
  seed: number;
  scenario: string;
  intensity: IntensityName;
  ok: boolean;
  violation?: { invariant: InvariantName; message: string; atUs: number };
  traceHash: string;
  simulatedUs: number;
  /** The faults that ran (after keepFaults). */
  faults: Fault[];
  /** How many faults the scenario's full schedule has. */
  scheduledFaults: number;
  stats: ClusterStats;
  replayCommand: string;
}

/** The Raft core's deliberately wrong variants the CLI and self-tests can switch on. */
export const UNSAFE_VARIANTS: readonly UnsafeVariant[] = [
  "commitOldTermEntries",
  "acceptStaleTermAppend",
  "voteTwiceInTerm",
];

export function validateSimOptions(o: RaftSimOptions): void {
  if (!Number.isSafeInteger(o.seed) || o.seed < 0)
    fail("BadParameter", `seed must be a non-negative integer, got ${o.seed}`);
  if (o.scenario !== undefined && !findScenario(o.scenario)) {
    fail("BadParameter", `unknown scenario "${o.scenario}" (known: ${SCENARIO_NAMES.join(", ")})`);
  }
  if (o.durationUs !== undefined && !(Number.isSafeInteger(o.durationUs) && o.durationUs >= US_PER_S)) {
    fail("BadParameter", "duration must be at least 1s of simulated time");
  }
  if (o.intensity !== undefined && !Object.hasOwn(INTENSITIES, o.intensity)) {
    fail("BadParameter", `intensity must be low, medium or high, got "${o.intensity}"`);
  }
  if (o.unsafeVariant !== undefined && !UNSAFE_VARIANTS.includes(o.unsafeVariant)) {
    fail(
      "BadParameter",
      `unsafe variant must be one of ${UNSAFE_VARIANTS.join(", ")}, got "${o.unsafeVariant}"`,
    );
  }
  if (o.keepFaults?.some((i) => !Number.isSafeInteger(i) || i < 0)) {
    fail("BadParameter", "keep-faults must list fault numbers (non-negative integers)");
  }
}

export interface ReplaySpec {
  seed: number;
  scenario: string;
  durationUs: number;
  intensity: IntensityName;
  keepFaults?: readonly number[] | undefined;
  unsafeVariant?: UnsafeVariant | undefined;
}

/** The one-line CLI command that reproduces a run exactly. */
export function replayCommand(r: ReplaySpec): string {
  const parts = ["npx hsmpool sim raft", `--seed ${r.seed}`, `--scenario ${r.scenario}`];
  if (r.durationUs !== DEFAULT_DURATION_US) parts.push(`--duration ${r.durationUs / US_PER_S}s`);
  if (r.intensity !== "medium") parts.push(`--intensity ${r.intensity}`);
  if (r.keepFaults) parts.push(`--keep-faults ${r.keepFaults.length > 0 ? r.keepFaults.join(",") : "none"}`);
  if (r.unsafeVariant) parts.push(`--unsafe-variant ${r.unsafeVariant}`);
  parts.push("--transcript");
  return parts.join(" ");
}

export function runRaftSim(options: RaftSimOptions): RaftSimResult {
  validateSimOptions(options);
  const scenarioName = options.scenario ?? "random";
  const scenario = findScenario(scenarioName)!;
  const durationUs = options.durationUs ?? DEFAULT_DURATION_US;
  const intensityName = options.intensity ?? "medium";
  const intensity = INTENSITIES[intensityName];
  const root = Prng.fromSeed(options.seed);

  // Long runs: faults in [1s, end - 12s], heal, then liveness must hold within 10s.
  // Short runs have no room for that; they heal at 60% and skip the liveness check.
  const longEnough = durationUs >= FAULTS_FROM_US + QUIET_TAIL_US + 2 * US_PER_S;
  const untilUs = longEnough ? durationUs - QUIET_TAIL_US : Math.round(durationUs * 0.6);
  const plan = scenario.plan({
    prng: root.split(`scenario/${scenarioName}`),
    intensity,
    fromUs: FAULTS_FROM_US,
    untilUs,
  });
  const scheduledFaults = plan.faults.length;
  if (options.keepFaults) {
    const keep = new Set(options.keepFaults);
    plan.faults = plan.faults.filter((_, i) => keep.has(i));
  }

  const cluster = new RaftCluster(root.split("cluster"), {
    plan,
    intensity,
    durationUs,
    healAtUs: untilUs,
    livenessBoundUs: longEnough ? LIVENESS_BOUND_US : Number.POSITIVE_INFINITY,
    ...(options.unsafeVariant ? { unsafeVariant: options.unsafeVariant } : {}),
    ...(options.transcript ? { transcript: options.transcript } : {}),
  });

  let violation: RaftSimResult["violation"];
  try {
    cluster.start();
    cluster.run();
  } catch (e) {
    // A violated invariant, or the code under test throwing (a Raft core assertion):
    // either way this seed fails and must be replayable, so report it, do not crash.
    violation =
      e instanceof InvariantViolation
        ? { invariant: e.invariant, message: e.message, atUs: cluster.nowUs }
        : {
            invariant: "no-crash",
            message: `no-crash: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
            atUs: cluster.nowUs,
          };
    const message = violation.message;
    cluster.trace.addString(message);
    cluster.log(() => `VIOLATION ${message}`);
  }
  const result: RaftSimResult = {
    seed: options.seed,
    scenario: scenarioName,
    intensity: intensityName,
    ok: violation === undefined,
    traceHash: cluster.trace.hex(),
    simulatedUs: violation ? cluster.nowUs : durationUs,
    faults: plan.faults,
    scheduledFaults,
    stats: cluster.stats,
    replayCommand: replayCommand({
      seed: options.seed,
      scenario: scenarioName,
      durationUs,
      intensity: intensityName,
      keepFaults: options.keepFaults,
      unsafeVariant: options.unsafeVariant,
    }),
  };
  if (violation) result.violation = violation;
  return result;
}

/**
 * Drop faults from a failing run's schedule while it still fails with the same
 * invariant. Returns the indices of the faults kept and the last failing run,
 * whose replayCommand reproduces it.
 */
export function shrinkFailure(
  failing: RaftSimResult,
  options: Omit<RaftSimOptions, "seed" | "keepFaults" | "transcript">,
  maxRuns = 100,
): { keepFaults: number[]; runs: number; result: RaftSimResult } {
  const want = failing.violation?.invariant;
  if (!want) throw new Error("shrinkFailure needs a failing run");
  let last = failing;
  const all = Array.from({ length: failing.scheduledFaults }, (_, i) => i);
  const { items, runs } = shrinkList(
    all,
    (candidate) => {
      const r = runRaftSim({ ...options, seed: failing.seed, keepFaults: candidate });
      if (r.violation?.invariant === want) {
        last = r;
        return true;
      }
      return false;
    },
    maxRuns,
  );
  return { keepFaults: items, runs, result: last };
}
