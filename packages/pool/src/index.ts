/** @hsmpool/pool: the pure pool protocol (see README.md). No I/O, no clocks, no randomness. */

export * from "./access/index.js";
export {
  AES_SIZES,
  BYOK_ALGORITHM,
  CURVES,
  DEFAULT_OPS_BY_TYPE,
  ENCRYPT_ALGORITHMS,
  KEY_OPS,
  KEY_TYPES,
  type KeyShape,
  OPS_BY_TYPE,
  RSA_SIZES,
  requireAlgorithmFits,
  SIGN_ALGORITHMS,
  WRAP_ALGORITHMS,
} from "./algorithms.js";
export {
  type BackupJobKind,
  type BackupJobRecord,
  type BackupJobStatus,
  MAX_BACKUP_JOBS,
  type RecordBackupJobCommand,
} from "./backup-job-state.js";
export {
  type CertificateRole,
  certificateFingerprint,
  certificateSigningBytes,
  keyFingerprint,
  type PoolCertificate,
  publicKeyFingerprint,
  SIGNATURE_BYTES,
  signatureValid,
  type UnsignedCertificate,
  verifyOwnerRootCertificate,
  verifyPartitionCertificate,
} from "./certificate.js";
export {
  type AccessCommand,
  COMMAND_FORMAT,
  type CreateKeyCommand,
  type DeleteKeyCommand,
  decodeCommand,
  encodeCommand,
  type GenesisCommand,
  MAX_ACCESS_OP_BYTES,
  MAX_RESTORED_VERSIONS,
  MAX_SVN,
  MAX_WRAPPED_MATERIAL_BYTES,
  type MemberOwnershipSyncedCommand,
  type PoolCommand,
  type PoolCommandKind,
  type PurgeKeyCommand,
  type RecoverKeyCommand,
  type RegisterMemberCommand,
  type RestoreKeyCommand,
  type RotateKeyCommand,
  type SetRotationPolicyCommand,
  type SetSettingCommand,
  type UpdateKeyAttributesCommand,
  validateCommand,
} from "./commands.js";
export {
  assertNoOpWithoutOwnership,
  assertOneDekAmongSynced,
  assertOneOwnerRootPerPool,
  dekFingerprintsOfSynced,
  ownerRootsOf,
  type ServedOperation,
} from "./invariants.js";
export {
  type ChangeInputs,
  DEFAULT_PROMOTION_LAG_ENTRIES,
  decideJoin,
  type JoinDecision,
  type JoinRequest,
  type MembershipView,
  nextMembershipChange,
  poolSvnFloor,
} from "./join-rules.js";
export { type P384PublicJwk, type PublicJwk, validateP384Jwk, validatePublicJwk } from "./jwk.js";
export { decodeKeyBackup, encodeKeyBackup, KEY_BACKUP_FORMAT, type KeyBackupContent } from "./key-backup.js";
export {
  type CreateKeyRequest,
  KEY_NAME,
  type KeyAttributeChanges,
  type KeyAttributes,
  type UpdateKeyRequest,
  type ValidCreateKey,
} from "./key-request.js";
export {
  type ApplyOutcome,
  type ApplyResult,
  type AuthorizedOperation,
  DEFAULT_MAX_REMEMBERED_REQUESTS,
  type DeletedKeyView,
  KeyStore,
  type KeyStoreEffect,
  type KeyStoreOptions,
  type KeyVersionView,
  type RotationPolicyView,
  type ValidUpdate,
} from "./keystore.js";
export {
  type KeyVersionRecord,
  type RegisteredMember,
  SNAPSHOT_FORMAT,
  SNAPSHOT_VERSIONS,
  type SyncedMember,
} from "./keystore-state.js";
export {
  type LinOp,
  MAX_MEMO_STATES,
  type Model,
  type SearchResult,
  searchLinearization,
} from "./linear-search.js";
export {
  linearizeSingleKey,
  type SingleKeyEvent,
  type SingleKeyOp,
  type SingleKeyResult,
  singleKeyModel,
  singleKeyOps,
} from "./linearizability.js";
export {
  type DekRequest,
  type DekResponse,
  decodeMessage,
  encodeMessage,
  MESSAGE_FORMAT,
  type OwnershipMessage,
  type OwnershipRefused,
  type OwnershipRequest,
  type OwnershipResponse,
  validateMessage,
} from "./messages.js";
export {
  createOwnershipState,
  holdsOwnership,
  ownershipStatus,
  requireOwnership,
  stepOwnership,
} from "./ownership.js";
export {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSIONS,
  decodeOwnershipCheckpoint,
  encodeOwnershipCheckpoint,
  type OwnershipCheckpoint,
  ownershipCheckpoint,
  type ProvisionalOwnershipCheckpoint,
  resumeOwnership,
  type SyncedOwnershipCheckpoint,
  validateOwnershipCheckpoint,
} from "./ownership-checkpoint.js";
export type * from "./ownership-types.js";
export {
  DEFAULT_SETTINGS,
  MAX_RETENTION_DAYS,
  MIN_RETENTION_DAYS,
  type PoolSettings,
  SETTING_NAMES,
  type SettingName,
} from "./pool-settings.js";
export { describeQuorum, type QuorumInputs, type QuorumReport, quorumReport } from "./quorum.js";
export {
  type AzureRotationPolicy,
  type DueRotation,
  dueRotations,
  fromAzureRotationPolicy,
  parseIsoDuration,
  policyRotationRequestId,
  type RotationPolicy,
  toAzureRotationPolicy,
  validateRotationPolicy,
} from "./rotation-policy.js";
export {
  type ActivateSecurityDomainCommand,
  MAX_RESTORE_STATE_BYTES,
  type RestoreBackupCommand,
  type SecurityDomainRecord,
} from "./security-domain-state.js";
export { ownershipInputsOf } from "./wiring.js";
