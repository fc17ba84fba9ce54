// Generic simulation pieces (reusable by a later pool simulator).
export { crc32 } from "./checksum.js";
export {
  parseChoiceFlag,
  parseCountFlag,
  parseDurationFlag,
  parseFaultListFlag,
  parseSeedFlag,
} from "./cli-args.js";
export { type CrashOptions, type CrashReport, RECORD_HEADER_BYTES, type Recovery, SimDisk } from "./disk.js";
export {
  describeFault,
  type Fault,
  type FaultAction,
  INTENSITIES,
  INTENSITY_NAMES,
  type Intensity,
  type IntensityName,
  type LinkEffect,
  linkFaultConfig,
  PARTITION_KINDS,
  type PartitionKind,
  randomSchedule,
  resolveShape,
  resolveTarget,
  shrinkList,
  type Target,
} from "./faults.js";
export { Nemesis, type NemesisHost } from "./nemesis.js";
export { DEFAULT_LINK, type LinkConfig, Network, type NetworkStats } from "./network.js";
// The pool protocol on the simulator.
export { POOL_INVARIANTS, type PoolInvariantName } from "./pool/checker.js";
export type { PoolStats } from "./pool/cluster.js";
export {
  keySetOf,
  type RestorePropertyOptions,
  type RestorePropertyResult,
  type RestoreUnsafeMode,
  runRestoreProperty,
} from "./pool/restore-property.js";
export {
  POOL_DEFAULT_DURATION_US,
  POOL_LIVENESS_BOUND_US,
  type PoolSimOptions,
  type PoolSimResult,
  poolReplayCommand,
  runPoolSim,
  shrinkPoolFailure,
  validatePoolSimOptions,
} from "./pool/run.js";
export { POOL_SCENARIO_NAMES, POOL_SCENARIOS, type PoolScenario } from "./pool/scenarios.js";
export { type PoolSweepOptions, runPoolSweep } from "./pool/sweep.js";
export {
  defaultPoolScenario,
  POOL_UNSAFE_MODES,
  type PoolUnsafeMode,
  UNSAFE_MODE_SCENARIOS,
} from "./pool/unsafe.js";
// Raft on the simulator.
export { type ClusterStats, RaftCluster, TICK_US } from "./raft/cluster.js";
export { type InvariantName, InvariantViolation, LogMirror, RaftChecker } from "./raft/invariants.js";
export { runPoolSweepParallel, runSweepParallel } from "./raft/parallel-sweep.js";
export {
  DEFAULT_DURATION_US,
  LIVENESS_BOUND_US,
  type RaftSimOptions,
  type RaftSimResult,
  type ReplaySpec,
  replayCommand,
  runRaftSim,
  shrinkFailure,
  UNSAFE_VARIANTS,
  validateSimOptions,
} from "./raft/run.js";
export {
  ALL_SCENARIOS,
  findScenario,
  SCENARIO_NAMES,
  SCENARIOS_BY_NAME,
  type Scenario,
  type ScenarioPlan,
} from "./raft/scenarios.js";
export {
  runSweep,
  type SeedResult,
  SweepAccumulator,
  type SweepOptions,
  type SweepProgress,
  type SweepSummary,
} from "./raft/sweep.js";
export { decodeWalRecord, recoverStorage } from "./raft/wal.js";
export { EventQueue, formatSimTime, US_PER_MS, US_PER_S } from "./scheduler.js";
export { TraceHash, Transcript } from "./trace.js";
