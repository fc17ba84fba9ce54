/** @hsmpool/hsm: the simulated HSM device of a server (see README.md). */
export type {
  AesSizeBits,
  Curve,
  EncryptAlgorithm,
  KeyOp,
  KeyType,
  RsaSizeBits,
  SignAlgorithm,
  WrapAlgorithm,
} from "./algorithms.js";
export { CURVES, ENCRYPT_ALGORITHMS, KEY_OPS, SIGN_ALGORITHMS, WRAP_ALGORITHMS } from "./algorithms.js";
export {
  BYOK_ENC,
  type ByokBlob,
  makeByokBlob,
  parseByokBlob,
  rsaThumbprint,
  wrapByokCiphertext,
} from "./byok.js";
export type { DecryptOptions, EncryptOptions, EncryptResult } from "./crypto-ops.js";
export { type CreateDeviceOptions, DEFAULT_PARTITION_COUNT, HsmDevice } from "./device.js";
export { type FabricWithHsmsOptions, initFabricWithHsms } from "./fabric-devices.js";
export type { FaultHooks } from "./faults.js";
export type { KeyHandle, KeyRef, KeySpec } from "./key-attributes.js";
export { KEY_BLOB_VERSION } from "./key-blob.js";
export { Partition } from "./partition.js";
export { Session } from "./session.js";
export type { TransferPublicKey, TransferPublicKeyInput } from "./transfer-key.js";
