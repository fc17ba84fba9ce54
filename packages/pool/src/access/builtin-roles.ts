/**
 * The Managed HSM built-in roles with the names, ids and data actions the real service
 * publishes. Sources: the documentation's permitted-operations matrix and the role
 * definition list the service itself returns (GET /providers/Microsoft.Authorization/
 * roleDefinitions). Where they differ, the service's list wins: it adds
 * securitydomain/download/read (Administrator), keys/export/action (Crypto Officer),
 * rng/action (Crypto User), and gives the Crypto Auditor keys/deletedKeys/read/action
 * where the matrix shows keys/deletedKeys/delete (purge), which contradicts the role's
 * "read (but not use)" description. hsmpool adds AuditRead to Administrator and
 * Crypto Auditor, and TenantWrite and SettingsWrite to Administrator (see data-actions.ts).
 */
import { DataActions as A, type DataAction } from "./data-actions.js";
import type { RoleDefinition } from "./types.js";

function builtIn(
  id: string,
  roleName: string,
  description: string,
  dataActions: DataAction[],
): RoleDefinition {
  return Object.freeze({
    id,
    roleName,
    description,
    roleType: "AKVBuiltInRole",
    assignableScopes: Object.freeze(["/"]),
    permissions: Object.freeze([
      Object.freeze({
        actions: Object.freeze([]),
        notActions: Object.freeze([]),
        dataActions: Object.freeze([...dataActions]),
        notDataActions: Object.freeze([]),
      }),
    ]),
  });
}

const ROLE_READ = [A.RoleAssignmentsRead, A.RoleDefinitionsRead];
const ROLE_MANAGE = [
  A.RoleAssignmentsRead,
  A.RoleAssignmentsWrite,
  A.RoleAssignmentsDelete,
  A.RoleDefinitionsRead,
  A.RoleDefinitionsWrite,
  A.RoleDefinitionsDelete,
];

export const BuiltInRoleIds = {
  Administrator: "a290e904-7015-4bba-90c8-60543313cdb4",
  CryptoOfficer: "515eb02d-2335-4d2d-92f2-b1cbdf9c3778",
  CryptoUser: "21dbd100-6940-42c2-9190-5d6cb909625b",
  PolicyAdministrator: "4bd23610-cdcf-4971-bdee-bdc562cc28e4",
  CryptoAuditor: "2c18b078-7c48-4d3a-af88-5a3a1b3f82b3",
  CryptoServiceEncryptionUser: "33413926-3206-4cdd-b39a-83574fe37a17",
  CryptoServiceReleaseUser: "21dbd100-6940-42c2-9190-5d6cb909625c",
  Backup: "7b127d3c-77bd-4e3e-bbe0-dbb8971fa7f8",
  Restore: "6efe6056-5259-49d2-8b3d-d3d73544b20b",
} as const;

export const BUILT_IN_ROLES: readonly RoleDefinition[] = Object.freeze([
  builtIn(
    BuiltInRoleIds.Administrator,
    "Managed HSM Administrator",
    "Grants permissions to perform all operations related to the security domain, full backup and restore, and role management. Not permitted to perform any key management operations.",
    [
      ...ROLE_MANAGE,
      A.SecurityDomainDownload,
      A.SecurityDomainDownloadStatus,
      A.SecurityDomainUpload,
      A.SecurityDomainUploadStatus,
      A.SecurityDomainTransferKey,
      A.BackupStart,
      A.BackupStatus,
      A.RestoreStart,
      A.RestoreStatus,
      A.AuditRead,
      A.TenantWrite,
      A.SettingsWrite,
    ],
  ),
  builtIn(
    BuiltInRoleIds.CryptoOfficer,
    "Managed HSM Crypto Officer",
    "Grants permissions to perform all role management, purge or recover deleted keys, and export keys. Not permitted to perform any other key management operations.",
    [...ROLE_MANAGE, A.DeletedKeysRead, A.DeletedKeysPurge, A.DeletedKeysRecover, A.KeysExport],
  ),
  builtIn(
    BuiltInRoleIds.CryptoUser,
    "Managed HSM Crypto User",
    "Grants permissions to perform all key management operations except purge or recover deleted keys and export keys.",
    [
      ...ROLE_READ,
      A.KeysRead,
      A.KeysWrite,
      A.KeysRotate,
      A.KeysDelete,
      A.KeysCreate,
      A.KeysImport,
      A.KeysRelease,
      A.KeysBackup,
      A.KeysRestore,
      A.KeysEncrypt,
      A.KeysDecrypt,
      A.KeysWrap,
      A.KeysUnwrap,
      A.KeysSign,
      A.KeysVerify,
      A.Rng,
    ],
  ),
  builtIn(
    BuiltInRoleIds.PolicyAdministrator,
    "Managed HSM Policy Administrator",
    "Grants permissions to create and delete role assignments.",
    ROLE_MANAGE,
  ),
  builtIn(
    BuiltInRoleIds.CryptoAuditor,
    "Managed HSM Crypto Auditor",
    "Grants read permissions to read (but not use) key attributes.",
    [...ROLE_READ, A.KeysRead, A.DeletedKeysRead, A.AuditRead],
  ),
  builtIn(
    BuiltInRoleIds.CryptoServiceEncryptionUser,
    "Managed HSM Crypto Service Encryption User",
    "Grants permissions to use a key for service encryption.",
    [A.KeysRead, A.KeysWrap, A.KeysUnwrap],
  ),
  builtIn(
    BuiltInRoleIds.CryptoServiceReleaseUser,
    "Managed HSM Crypto Service Release User",
    "Grants permissions to release a key to a trusted execution environment.",
    [A.KeysRelease],
  ),
  builtIn(
    BuiltInRoleIds.Backup,
    "Managed HSM Backup",
    "Grants permissions to perform single-key or whole-HSM backup.",
    [A.BackupStart, A.BackupStatus, A.KeysBackup],
  ),
  builtIn(
    BuiltInRoleIds.Restore,
    "Managed HSM Restore",
    "Grants permissions to perform single-key or whole-HSM restore.",
    [A.RestoreStart, A.RestoreStatus, A.KeysRestore],
  ),
]);

const BUILT_IN_IDS = new Set<string>(BUILT_IN_ROLES.map((r) => r.id));

export function isBuiltInRoleId(id: string): boolean {
  return BUILT_IN_IDS.has(id);
}
