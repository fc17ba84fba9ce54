/**
 * @hsmpool/healing: the pure rules of the fabric controller — initial placement,
 * health classification, pool status aggregation and the healing controller
 * (restart, replace, upgrade) with replacement placement and its persisted state.
 * Nothing here does I/O (no fs, no gRPC, no clock), so the HFC process and the
 * simulator run the same code.
 */

export {
  crashLoopOf,
  defaultHealingConfig,
  freshRuntime,
  healingStep,
  initialHealingState,
  nextMemberNumberAfter,
  restartDelayMs,
} from "./controller.js";
export {
  adoptedHealth,
  DEFAULT_HEALTH_CONFIG,
  type HealthConfig,
  type HealthEvent,
  type HealthStep,
  type MemberHealth,
  missedHealthChecksFor,
  probeFailed,
  probeSucceeded,
  processExited,
  STARTING,
  validateHealthConfig,
} from "./health.js";
export * from "./model.js";
export {
  type FabricStateFile,
  type HealingFile,
  parseFabricStateFile,
  parseHealingFile,
  restoreHealingState,
  toHealingFile,
} from "./persisted.js";
export { type InventoryRack, type PlacedMember, type PlacementRequest, placeMembers } from "./placement.js";
export { placeReplacement, type ReplacementPlacement } from "./replacement-placement.js";
export {
  aggregatePoolStatus,
  type MemberObservation,
  NO_UPGRADE,
  type PoolObservation,
  statusMismatch,
} from "./status.js";
export { type BundleFacts, checkUpgrade, poolMinimumSvn } from "./upgrade-check.js";
