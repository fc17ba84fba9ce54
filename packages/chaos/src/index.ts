/**
 * @hsmpool/chaos: the chaos harness for real pools, in Jepsen's four roles —
 * generator (workload/generator.ts), client (workload/client.ts), nemesis
 * (nemesis/), checker (checkers/, evaluate.ts) — plus scenario files, the runner and
 * the report.
 */

export { type AccessAttempt, checkAccess } from "./checkers/access.js";
export {
  type AvailabilityInput,
  checkAvailability,
  type UnavailableWindow,
} from "./checkers/availability.js";
export { checkDurability, type LostWrite } from "./checkers/durability.js";
export { checkHealing, type FaultHealing, healingOf } from "./checkers/healing.js";
export { checkHypothesis, type Measurements } from "./checkers/hypothesis.js";
export { checkLatency, latencyStats, percentile } from "./checkers/latency.js";
export { findLeaks, type LeakFinding, type Needle, StreamScanner } from "./checkers/leaks.js";
export { checkKey, checkLinearizability, KEY_MODEL, keyOperations } from "./checkers/linearizability.js";
export { scanNodeLog, violationInLine } from "./checkers/node-logs.js";
export { checkRecovery, type FullBackupRecord } from "./checkers/recovery.js";
export { type CheckerResult, mergeValidity, type Validity } from "./checkers/result.js";
export { checkSignatures } from "./checkers/signatures.js";
export { formatDurationMs, parseDurationMs } from "./duration.js";
export { CUSTOMER_DIR } from "./evaluate.js";
export {
  type ClientEvent,
  encodeHistoryLine,
  type HistoryEvent,
  HistoryRecorder,
  type NemesisEvent,
  pairOperations,
  parseHistory,
} from "./history.js";
export { SUPPORTED_FAULTS } from "./nemesis/capabilities.js";
export { type FaultPlan, type PlannedFault, planFaults } from "./nemesis/plan.js";
export {
  type FullBackupOutcome,
  LOST_REGION_DIR,
  type RecoverOptions,
  type RegionRecoveryDriver,
} from "./region-loss.js";
export { renderReport } from "./report/html.js";
export { exitCodeFor, overallValidity, type RunResults } from "./results.js";
export {
  type Intruder,
  type PoolDriver,
  type PoolStartOptions,
  type RunOptions,
  type RunOutcome,
  runScenario,
} from "./runner.js";
export { listScenarios, loadScenario, type ScenarioListing, SHIPPED_SCENARIO_DIR } from "./scenario/load.js";
export * from "./scenario/schema.js";
export { formatIssues, parseScenario, type ScenarioIssue } from "./scenario/validate.js";
export { summaryLines } from "./summary.js";
export { faultsOf, isFullyHealthy, type StatusSample } from "./timeline.js";
export type { KeyVaultClient } from "./workload/client.js";
export { keyName, WorkloadGenerator } from "./workload/generator.js";
