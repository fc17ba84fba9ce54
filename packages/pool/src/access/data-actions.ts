/**
 * Managed HSM data actions: the strings the real service publishes (learn.microsoft.com
 * "Local RBAC built-in roles for Managed HSM", and the service's own role definition list),
 * plus three hsmpool extensions held by the Administrator: AuditRead (the real service ships
 * its audit log to Azure Monitor, a control-plane feature; here the log lives inside the
 * TEE; the Crypto Auditor holds it too), TenantWrite (JWKS rollover of the committed
 * tenant binding; the real service trusts Entra's published keys instead) and
 * SettingsWrite (the real service publishes no data action for its account settings;
 * without one any principal of the tenant could switch on purge protection, which can
 * never be switched off, or shorten the retention of deleted keys). Every
 * operation a node serves names exactly one of these.
 */
const P = "Microsoft.KeyVault/managedHsm";

export const DataActions = {
  // security domain
  SecurityDomainDownload: `${P}/securitydomain/download/action`,
  SecurityDomainDownloadStatus: `${P}/securitydomain/download/read`,
  SecurityDomainUpload: `${P}/securitydomain/upload/action`,
  SecurityDomainUploadStatus: `${P}/securitydomain/upload/read`,
  SecurityDomainTransferKey: `${P}/securitydomain/transferkey/read`,
  // key management
  KeysRead: `${P}/keys/read/action`,
  KeysWrite: `${P}/keys/write/action`,
  KeysRotate: `${P}/keys/rotate/action`,
  KeysCreate: `${P}/keys/create`,
  KeysDelete: `${P}/keys/delete`,
  DeletedKeysRead: `${P}/keys/deletedKeys/read/action`,
  DeletedKeysRecover: `${P}/keys/deletedKeys/recover/action`,
  DeletedKeysPurge: `${P}/keys/deletedKeys/delete`,
  KeysBackup: `${P}/keys/backup/action`,
  KeysRestore: `${P}/keys/restore/action`,
  KeysRelease: `${P}/keys/release/action`,
  KeysImport: `${P}/keys/import/action`,
  KeysExport: `${P}/keys/export/action`,
  // key cryptographic operations
  KeysEncrypt: `${P}/keys/encrypt/action`,
  KeysDecrypt: `${P}/keys/decrypt/action`,
  KeysWrap: `${P}/keys/wrap/action`,
  KeysUnwrap: `${P}/keys/unwrap/action`,
  KeysSign: `${P}/keys/sign/action`,
  KeysVerify: `${P}/keys/verify/action`,
  Rng: `${P}/rng/action`,
  // role management
  RoleAssignmentsRead: `${P}/roleAssignments/read/action`,
  RoleAssignmentsWrite: `${P}/roleAssignments/write/action`,
  RoleAssignmentsDelete: `${P}/roleAssignments/delete/action`,
  RoleDefinitionsRead: `${P}/roleDefinitions/read/action`,
  RoleDefinitionsWrite: `${P}/roleDefinitions/write/action`,
  RoleDefinitionsDelete: `${P}/roleDefinitions/delete/action`,
  // backup and restore
  BackupStart: `${P}/backup/start/action`,
  BackupStatus: `${P}/backup/status/action`,
  RestoreStart: `${P}/restore/start/action`,
  RestoreStatus: `${P}/restore/status/action`,
  // hsmpool extensions (not real Managed HSM data actions; see the module comment)
  AuditRead: `${P}/auditLogs/read/action`,
  TenantWrite: `${P}/tenant/write/action`,
  SettingsWrite: `${P}/settings/write/action`,
} as const;

export type DataAction = (typeof DataActions)[keyof typeof DataActions];

export const ALL_DATA_ACTIONS: readonly DataAction[] = Object.freeze(Object.values(DataActions));

const KNOWN = new Set<string>(ALL_DATA_ACTIONS);

export function isDataAction(s: unknown): s is DataAction {
  return typeof s === "string" && KNOWN.has(s);
}
