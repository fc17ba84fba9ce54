/**
 * @hsmpool/hfc: the HSM fabric controller. Pure cores (placement, health, pool
 * status, node config, healing controller) plus the process shell (controller, launcher, fabric PKI,
 * control API) and the pieces the CLI/SDK share (control client, protos, errors).
 */

export { FabricControllerClient, type IssuedCert } from "./control-client.js";
export { type ControlServer, startControlServer } from "./control-server.js";
export { POOL_SIZE } from "./controller.js";
export { type CsrKeyPair, certDerToPem, createCsrKeyPair } from "./csr.js";
export {
  describeRefusal,
  NODE_EXIT_BAD_CONFIG,
  NODE_EXIT_JOIN_REFUSED,
  NODE_EXIT_LAUNCH_REFUSED,
  refusalOf,
} from "./exit-reason.js";
export {
  type CallFailure,
  ERROR_CODE_TRAILER,
  fromServiceError,
  LEADER_ADDR_TRAILER,
  LEADER_TRAILER,
  toServiceError,
} from "./grpc-errors.js";
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
  LAUNCHER_KINDS,
  type LauncherKind,
  type LaunchRequest,
  type NodeExit,
  type NodeLauncher,
  type NodeProcess,
  processLauncher,
} from "./launcher.js";
export { buildNodeConfig, DEFAULT_RAFT_TIMING, type RaftTiming } from "./node-config.js";
export {
  DATA_PLANE_CHANNEL_OPTIONS,
  dataPlaneCredentials,
  NodeStatusClient,
  type TlsClientMaterial,
} from "./node-status-client.js";
export { DEFAULT_BUNDLE_DIR, DEFAULT_NODE_MAIN, HFC_MAIN } from "./options.js";
export { FabricCa, NODE_TLS_NAME } from "./pki.js";
export { type InventoryRack, type PlacedMember, type PlacementRequest, placeMembers } from "./placement.js";
export { isOurProcess, isRunning, signalProcess, waitForExit } from "./processes.js";
export { hfcProto, poolProto, unaryCall } from "./proto.js";
export {
  isProcessAlive,
  type RunPaths,
  readHfcInfo,
  readJson,
  readNodePids,
  readPoolSpec,
  runPaths,
} from "./run-dir.js";
export { type SpawnHfcOptions, spawnHfc, waitForHfc } from "./spawn-hfc.js";
export {
  aggregatePoolStatus,
  type MemberObservation,
  NO_UPGRADE,
  type PoolObservation,
  statusMismatch,
} from "./status.js";
export * from "./types.js";
