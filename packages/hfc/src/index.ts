/**
 * @hsmpool/hfc: the HSM fabric controller. Pure cores (placement, health, pool
 * status, node config) plus the process shell (controller, launcher, fabric PKI,
 * control API) and the pieces the CLI/SDK share (control client, protos, errors).
 */

export { FabricControllerClient, type IssuedCert } from "./control-client.js";
export { type ControlServer, startControlServer } from "./control-server.js";
export { POOL_SIZE } from "./controller.js";
export { type CsrKeyPair, certDerToPem, createCsrKeyPair } from "./csr.js";
export {
  type CallFailure,
  ERROR_CODE_TRAILER,
  fromServiceError,
  LEADER_ADDR_TRAILER,
  LEADER_TRAILER,
  toServiceError,
} from "./grpc-errors.js";
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
export { isOurProcess, signalProcess, waitForExit } from "./processes.js";
export { hfcProto, poolProto, unaryCall } from "./proto.js";
export {
  isProcessAlive,
  type RunPaths,
  readHfcInfo,
  readNodePids,
  readPoolSpec,
  runPaths,
} from "./run-dir.js";
export { type SpawnHfcOptions, spawnHfc, waitForHfc } from "./spawn-hfc.js";
export {
  aggregatePoolStatus,
  type MemberObservation,
  type PoolObservation,
  statusMismatch,
} from "./status.js";
export * from "./types.js";
