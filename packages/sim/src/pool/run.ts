import { fail } from "@hsmpool/errors";
import { Prng } from "@hsmpool/faults";
import { INTENSITIES, type IntensityName, shrinkListAsync } from "../faults.js";
import { InvariantViolation } from "../raft/invariants.js";
import { US_PER_S } from "../scheduler.js";
import { type PoolInvariantName, PoolInvariantViolation } from "./checker.js";
import { PoolCluster, type PoolStats } from "./cluster.js";
import { findPoolScenario, POOL_SCENARIO_NAMES, type PoolFault } from "./scenarios.js";
import { defaultPoolScenario, POOL_UNSAFE_MODES, type PoolUnsafeMode } from "./unsafe.js";

/**
 * One pool simulator run: a pure function of (seed, scenario, intensity, duration,
 * code), asynchronous because the shipped node it runs is. Returns the verdict and the trace hash; a violated invariant (or the code
 * under test throwing) ends the run early and is reported, never thrown.
 */

export const POOL_DEFAULT_DURATION_US = 30 * US_PER_S;
export const POOL_LIVENESS_BOUND_US = 10 * US_PER_S;
/** Random faults start after this (the "bootstrap" scenario starts them at once). */
const FAULTS_FROM_US = 1 * US_PER_S;
/** Clients stop this long before the end, so every member has caught up when the run ends. */
const WORKLOAD_QUIESCE_US = 1.5 * US_PER_S;

export interface PoolSimOptions {
  seed: number;
  /** Absent: "random", or the unsafe mode's own scenario (UNSAFE_MODE_SCENARIOS). */
  scenario?: string;
  durationUs?: number;
  intensity?: IntensityName;
  /** Receives the readable transcript line by line (off when absent). */
  transcript?: (line: string) => void;
  /** A deliberately wrong shell behaviour (checker self-test). */
  unsafeMode?: PoolUnsafeMode;
  /** Keep only these faults (indices into the scenario's schedule): how a shrunk failure replays. */
  keepFaults?: readonly number[];
}

export interface PoolSimResult {
  seed: number;
  scenario: string;
  intensity: IntensityName;
  ok: boolean;
  violation?: { invariant: PoolInvariantName; message: string; atUs: number };
  traceHash: string;
  simulatedUs: number;
  faults: PoolFault[];
  scheduledFaults: number;
  stats: PoolStats;
  /** Genesis proposals in order and whose Genesis committed (null: none did). */
  genesis: { proposers: string[]; committedBy: string | null };
  replayCommand: string;
}

export function validatePoolSimOptions(o: PoolSimOptions): void {
  if (!Number.isSafeInteger(o.seed) || o.seed < 0)
    fail("BadParameter", `seed must be a non-negative integer, got ${o.seed}`);
  if (o.scenario !== undefined && !findPoolScenario(o.scenario)) {
    fail("BadParameter", `unknown pool scenario "${o.scenario}" (known: ${POOL_SCENARIO_NAMES.join(", ")})`);
  }
  if (o.durationUs !== undefined && !(Number.isSafeInteger(o.durationUs) && o.durationUs >= US_PER_S)) {
    fail("BadParameter", "duration must be at least 1s of simulated time");
  }
  if (o.intensity !== undefined && !Object.hasOwn(INTENSITIES, o.intensity)) {
    fail("BadParameter", `intensity must be low, medium or high, got "${o.intensity}"`);
  }
  if (o.unsafeMode !== undefined && !POOL_UNSAFE_MODES.includes(o.unsafeMode)) {
    fail("BadParameter", `unsafe mode must be one of ${POOL_UNSAFE_MODES.join(", ")}, got "${o.unsafeMode}"`);
  }
  if (o.keepFaults?.some((i) => !Number.isSafeInteger(i) || i < 0)) {
    fail("BadParameter", "keep-faults must list fault numbers (non-negative integers)");
  }
}

export interface PoolReplaySpec {
  seed: number;
  scenario: string;
  durationUs: number;
  /** The scenario's default duration (the command leaves --duration out when it matches). */
  defaultDurationUs?: number;
  intensity: IntensityName;
  keepFaults?: readonly number[] | undefined;
  unsafeMode?: PoolUnsafeMode | undefined;
}

/** The one-line CLI command that reproduces a run exactly. */
export function poolReplayCommand(r: PoolReplaySpec): string {
  const parts = ["npx hsmpool sim pool", `--seed ${r.seed}`, `--scenario ${r.scenario}`];
  if (r.durationUs !== (r.defaultDurationUs ?? POOL_DEFAULT_DURATION_US))
    parts.push(`--duration ${r.durationUs / US_PER_S}s`);
  if (r.intensity !== "medium") parts.push(`--intensity ${r.intensity}`);
  if (r.keepFaults) parts.push(`--keep-faults ${r.keepFaults.length > 0 ? r.keepFaults.join(",") : "none"}`);
  if (r.unsafeMode) parts.push(`--unsafe-mode ${r.unsafeMode}`);
  parts.push("--transcript");
  return parts.join(" ");
}

export async function runPoolSim(options: PoolSimOptions): Promise<PoolSimResult> {
  validatePoolSimOptions(options);
  const scenarioName = options.scenario ?? defaultPoolScenario(options.unsafeMode);
  const scenario = findPoolScenario(scenarioName)!;
  const durationUs = options.durationUs ?? scenario.defaultDurationUs ?? POOL_DEFAULT_DURATION_US;
  const livenessBoundUs = scenario.livenessBoundUs ?? POOL_LIVENESS_BOUND_US;
  const quietTailUs = livenessBoundUs + 2 * US_PER_S;
  const intensityName = options.intensity ?? "medium";
  const intensity = INTENSITIES[intensityName];
  const root = Prng.fromSeed(options.seed);

  // Long runs: faults in [1s, end - 12s], heal, liveness within 10s, clients stop 1.5s
  // before the end. Short runs heal at 60% and skip the liveness check.
  const longEnough = durationUs >= FAULTS_FROM_US + quietTailUs + 2 * US_PER_S;
  const healAtUs = longEnough ? durationUs - quietTailUs : Math.round(durationUs * 0.6);
  const plan = scenario.plan({
    prng: root.split(`pool-scenario/${scenarioName}`),
    intensity,
    fromUs: FAULTS_FROM_US,
    untilUs: healAtUs,
  });
  const scheduledFaults = plan.faults.length;
  if (options.keepFaults) {
    const keep = new Set(options.keepFaults);
    plan.faults = plan.faults.filter((_, i) => keep.has(i));
  }

  const cluster = new PoolCluster(root.split("pool-cluster"), {
    plan,
    intensity,
    durationUs,
    healAtUs,
    livenessBoundUs: longEnough ? livenessBoundUs : Number.POSITIVE_INFINITY,
    workloadStopUs: durationUs - Math.min(WORKLOAD_QUIESCE_US, Math.round(durationUs * 0.1)),
    ...(options.unsafeMode ? { unsafeMode: options.unsafeMode } : {}),
    ...(options.transcript ? { transcript: options.transcript } : {}),
  });

  let violation: PoolSimResult["violation"];
  try {
    cluster.start();
    await cluster.run();
  } catch (e) {
    violation =
      e instanceof PoolInvariantViolation || e instanceof InvariantViolation
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
  const result: PoolSimResult = {
    seed: options.seed,
    scenario: scenarioName,
    intensity: intensityName,
    ok: violation === undefined,
    traceHash: cluster.trace.hex(),
    simulatedUs: violation ? cluster.nowUs : durationUs,
    faults: plan.faults,
    scheduledFaults,
    stats: cluster.stats,
    genesis: { proposers: cluster.genesisProposers, committedBy: cluster.checker.genesis?.proposer ?? null },
    replayCommand: poolReplayCommand({
      seed: options.seed,
      scenario: scenarioName,
      durationUs,
      defaultDurationUs: scenario.defaultDurationUs ?? POOL_DEFAULT_DURATION_US,
      intensity: intensityName,
      keepFaults: options.keepFaults,
      unsafeMode: options.unsafeMode,
    }),
  };
  if (violation) result.violation = violation;
  return result;
}

/**
 * Drop faults from a failing run's schedule while it still fails with the same
 * invariant (the sim's shrinkList). Returns the kept fault indices and the last
 * failing run, whose replayCommand reproduces it.
 */
export async function shrinkPoolFailure(
  failing: PoolSimResult,
  options: Omit<PoolSimOptions, "seed" | "keepFaults" | "transcript">,
  maxRuns = 100,
): Promise<{ keepFaults: number[]; runs: number; result: PoolSimResult }> {
  const want = failing.violation?.invariant;
  if (!want) throw new Error("shrinkPoolFailure needs a failing run");
  let last = failing;
  const all = Array.from({ length: failing.scheduledFaults }, (_, i) => i);
  const { items, runs } = await shrinkListAsync(
    all,
    async (candidate) => {
      const r = await runPoolSim({ ...options, seed: failing.seed, keepFaults: candidate });
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
