/**
 * @hsmpool/node: the TEE node process shell (see README.md). The process entry is
 * main.ts; these exports are for tests and tools.
 */

export type { JoinRequestWire, JoinResponseWire } from "./cluster/cluster-proto.js";
export { loadConfig, type NodeConfig, type PeerConfig, parseConfig } from "./config.js";
export type { KeyService } from "./keyvault/key-service.js";
export {
  foundingKeyStoreData,
  type NodeInternals,
  type NodeOptions,
  PoolNode,
  SHUTDOWN_GRACE_MS,
} from "./node.js";
export { CHECKPOINT_FILE } from "./ownership/checkpoint-file.js";
export { peerPolicyFor } from "./peer/policy.js";
export type { RaftDriver } from "./raft/raft-driver.js";
export * from "./seams/index.js";
export { RaftStore, SNAPSHOT_FILE, WAL_FILE } from "./storage/raft-store.js";
export { RecordLog, scanLog } from "./storage/record-log.js";
export { cpuSealer, poolKeySealer, Sealers } from "./storage/sealer.js";
