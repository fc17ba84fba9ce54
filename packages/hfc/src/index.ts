/**
 * @hsmpool/hfc: the HSM fabric controller process: controller, launcher, fabric PKI,
 * control API, node config. Its pure rules (placement, health, pool status, healing
 * controller) are @hsmpool/healing; what the CLI/SDK share with it is @hsmpool/wire.
 */

export { ControlApi } from "./control-api.js";
export { type ControlServer, startControlServer } from "./control-server.js";
export { POOL_SIZE } from "./controller.js";
export type { ControllerOptions } from "./controller-context.js";
export {
  describeRefusal,
  NODE_EXIT_BAD_CONFIG,
  NODE_EXIT_JOIN_REFUSED,
  NODE_EXIT_LAUNCH_REFUSED,
  refusalOf,
} from "./exit-reason.js";
export { loadHealingState } from "./healing-store.js";
export {
  type LaunchRequest,
  type NodeExit,
  type NodeLauncher,
  type NodeProcess,
  processLauncher,
} from "./launcher.js";
export { buildNodeConfig, DEFAULT_RAFT_TIMING, type RaftTiming } from "./node-config.js";
export { FabricCa } from "./pki.js";
export {
  type HfcSeams,
  hostSeams,
  type ProcessControl,
  type RunDirFiles,
  type StatusProbe,
} from "./seams.js";
export { Supervision, type SupervisionParams } from "./supervision.js";
export { HFC_VARIANTS, type HfcVariant, isHfcVariant } from "./variants.js";
