/**
 * @hsmpool/hfc: the HSM fabric controller. Pure cores (placement, health, pool
 * status, node config, healing controller) plus the process shell (controller, launcher, fabric PKI,
 * control API). What the CLI/SDK share with it (control client, protos, types) is in @hsmpool/wire.
 */

export { type ControlServer, startControlServer } from "./control-server.js";
export { POOL_SIZE } from "./controller.js";
export {
  describeRefusal,
  NODE_EXIT_BAD_CONFIG,
  NODE_EXIT_JOIN_REFUSED,
  NODE_EXIT_LAUNCH_REFUSED,
  refusalOf,
} from "./exit-reason.js";
export {
  defaultHealingConfig,
  freshRuntime,
  healingStep,
  initialHealingState,
  nextMemberNumberAfter,
  restartDelayMs,
} from "./healing/controller.js";
export {
  DEFAULT_HEALING_TIMING,
  HEALING_PHASES,
  type HealingAction,
  type HealingConfig,
  type HealingInput,
  type HealingRecord,
  type HealingState,
  type HealingStep,
  type MemberRecord,
  type MemberRuntime,
  type NodeObservation,
  PHASES_OF,
  type ProgressPhase,
  type UpgradePlan,
} from "./healing/model.js";
export {
  type FabricStateFile,
  type HealingFile,
  parseFabricStateFile,
  parseHealingFile,
  restoreHealingState,
  toHealingFile,
} from "./healing/persisted.js";
export { placeReplacement, type ReplacementPlacement } from "./healing/replacement-placement.js";
export { type BundleFacts, checkUpgrade, poolMinimumSvn } from "./healing/upgrade-check.js";
export {
  DEFAULT_HEALTH_CONFIG,
  type HealthConfig,
  type HealthEvent,
  type MemberHealth,
  probeFailed,
  probeSucceeded,
  STARTING,
  validateHealthConfig,
} from "./health.js";
export {
  type LaunchRequest,
  type NodeExit,
  type NodeLauncher,
  type NodeProcess,
  processLauncher,
} from "./launcher.js";
export { buildNodeConfig, DEFAULT_RAFT_TIMING, type RaftTiming } from "./node-config.js";
export { FabricCa } from "./pki.js";
export { type InventoryRack, type PlacedMember, type PlacementRequest, placeMembers } from "./placement.js";
export {
  aggregatePoolStatus,
  type MemberObservation,
  type PoolObservation,
  statusMismatch,
} from "./status.js";
