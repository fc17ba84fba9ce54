/**
 * @hsmpool/wire: the contracts between the processes (HFC, node, SDK/CLI, chaos):
 * proto loaders, gRPC error mapping, config/status/run-dir types and layout,
 * data-plane credentials, the HFC control client, and the clock seam both process shells take.
 */

export { type Clock, sleep, systemClock, type TimerId } from "./clock.js";
export { FabricControllerClient, type IssuedCert } from "./control-client.js";
export {
  CRYPTO_METHODS,
  type CryptoMethod,
  type CryptoReplyMessage,
  type CryptoRequestMessage,
  CryptoSessionClient,
  cryptoErrorOf,
  isCryptoMethod,
  type ServedSession,
  serveCryptoSession,
} from "./crypto-session.js";
export { type CsrKeyPair, certDerToPem, createCsrKeyPair } from "./csr.js";
export {
  type CallFailure,
  ERROR_CODE_TRAILER,
  fromServiceError,
  LEADER_ADDR_TRAILER,
  LEADER_TRAILER,
  toServiceError,
} from "./grpc-errors.js";
export { type HttpsAnswer, type HttpsCallOptions, httpsCall, jsonOf } from "./https-call.js";
export { bindLoopback } from "./loopback-server.js";
export { NODE_PACKAGE_DIR, nodeRuntimeClosure, PROTO_DIR } from "./node-runtime.js";
export {
  DATA_PLANE_CHANNEL_OPTIONS,
  dataPlaneCredentials,
  NODE_TLS_NAME,
  NodeStatusClient,
  type TlsClientMaterial,
} from "./node-status-client.js";
export { allocateLoopbackPort, allocateLoopbackPorts, ephemeralRangeStart } from "./ports.js";
export {
  commandLineOf,
  findProcessesByConfig,
  isOurProcess,
  isRunning,
  signalProcess,
  waitForExit,
} from "./processes.js";
export {
  HFC_PROTO_PATH,
  hfcProto,
  type LoadedService,
  POOL_PROTO_PATH,
  poolProto,
  unaryCall,
} from "./proto.js";
export {
  isProcessAlive,
  type LocalBundle,
  PUBLIC_FILE_MODE,
  parseNodePids,
  parsePoolSpec,
  poolSpecForFile,
  type RunPaths,
  readHfcInfo,
  readJson,
  readNodePids,
  readPoolSpec,
  rebaseBundles,
  runDirMismatch,
  runPaths,
  stateDirOf,
} from "./run-dir.js";
export {
  HFC_MAIN,
  LAUNCHER_KINDS,
  type LauncherKind,
  type SpawnHfcOptions,
  spawnHfc,
  waitForHfc,
} from "./spawn-hfc.js";
export * from "./types.js";
