/**
 * Every operation of the Managed HSM data plane (../shared/azure-rest-examples/INDEX.md):
 * method, path, the api-version it appeared in, the RBAC data action it needs and the
 * node function that serves it. An operation the pool does not offer yet answers
 * NotImplemented (501) by name; none is answered with something it is not.
 */
import { fail } from "@hsmpool/errors";
import { DataActions as D, type DataAction } from "@hsmpool/pool";
import type { KeyService } from "../keyvault/key-service.js";
import type { BackupJobs } from "../security-domain/backup-jobs.js";
import type { SecurityDomainService } from "../security-domain/sd-service.js";
import type { ApiVersion } from "./api-version.js";
import * as keysApi from "./keys-api.js";
import * as life from "./keys-lifecycle-api.js";
import * as rbac from "./rbac-api.js";
import * as sdApi from "./security-domain-api.js";
import * as settings from "./settings-api.js";
import type { RestRequest, RestResult } from "./types.js";

/** The node services REST operations translate onto. */
export interface RestServices {
  keys: KeyService;
  securityDomain: SecurityDomainService;
  backups: BackupJobs;
}

export interface Route {
  method: string;
  /** Path segments; `{name}` binds a parameter; `{scope}` binds the RBAC scope prefix. */
  path: string;
  operationId: string;
  since: ApiVersion;
  /** The Managed HSM local-RBAC data action this operation needs (null: none is published; the token is still verified). */
  dataAction: DataAction | null;
  /** Answered by the primary (a secondary forwards it inside the pool). */
  write: boolean;
  handle?: (services: RestServices, request: RestRequest) => Promise<RestResult>;
}

const op = (
  method: string,
  path: string,
  operationId: string,
  dataAction: DataAction | null,
  write: boolean,
  handle?: Route["handle"],
  since: ApiVersion = "7.2",
): Route => ({
  method,
  path,
  operationId,
  since,
  dataAction,
  write,
  ...(handle ? { handle } : {}),
});

const cryptoOp =
  (op: "sign" | "verify" | "encrypt" | "decrypt" | "wrapkey" | "unwrapkey") =>
  (s: RestServices, r: RestRequest) =>
    keysApi.keyOperation(s.keys, r, op);

export const ROUTES: readonly Route[] = [
  op("GET", "/deletedkeys", "GetDeletedKeys", D.DeletedKeysRead, false, (s, r) =>
    life.listDeletedKeys(s.keys, r),
  ),
  op("GET", "/deletedkeys/{name}", "GetDeletedKey", D.DeletedKeysRead, false, (s, r) =>
    life.getDeletedKey(s.keys, r),
  ),
  op("DELETE", "/deletedkeys/{name}", "PurgeDeletedKey", D.DeletedKeysPurge, true, (s, r) =>
    life.purgeDeletedKey(s.keys, r),
  ),
  op("POST", "/deletedkeys/{name}/recover", "RecoverDeletedKey", D.DeletedKeysRecover, true, (s, r) =>
    life.recoverDeletedKey(s.keys, r),
  ),
  op("GET", "/keys", "GetKeys", D.KeysRead, false, (s, r) => keysApi.listKeys(s.keys, r)),
  op("POST", "/keys/restore", "RestoreKey", D.KeysRestore, true, (s, r) => life.restoreKey(s.keys, r)),
  op("DELETE", "/keys/{name}", "DeleteKey", D.KeysDelete, true, (s, r) => life.deleteKey(s.keys, r)),
  op("PUT", "/keys/{name}", "ImportKey", D.KeysImport, true, (s, r) => life.importKey(s.keys, r)),
  op("GET", "/keys/{name}", "GetKey", D.KeysRead, false, (s, r) => keysApi.getKey(s.keys, r)),
  op("POST", "/keys/{name}/backup", "BackupKey", D.KeysBackup, false, (s, r) => life.backupKey(s.keys, r)),
  op("POST", "/keys/{name}/create", "CreateKey", D.KeysCreate, true, (s, r) => keysApi.createKey(s.keys, r)),
  op(
    "POST",
    "/keys/{name}/rotate",
    "RotateKey",
    D.KeysRotate,
    true,
    (s, r) => life.rotateKey(s.keys, r),
    "7.3",
  ),
  op(
    "GET",
    "/keys/{name}/rotationpolicy",
    "GetKeyRotationPolicy",
    D.KeysRead,
    false,
    (s, r) => life.getRotationPolicy(s.keys, r),
    "7.3",
  ),
  op(
    "PUT",
    "/keys/{name}/rotationpolicy",
    "UpdateKeyRotationPolicy",
    D.KeysWrite,
    true,
    (s, r) => life.updateRotationPolicy(s.keys, r),
    "7.3",
  ),
  op("GET", "/keys/{name}/versions", "GetKeyVersions", D.KeysRead, false, (s, r) =>
    keysApi.listKeyVersions(s.keys, r),
  ),
  op("PUT", "/keys/{name}/restore", "SelectiveKeyRestoreOperation", D.RestoreStart, true, (s, r) =>
    sdApi.selectiveKeyRestore(s.backups, r),
  ),
  op("GET", "/keys/{name}/{version}", "GetKey", D.KeysRead, false, (s, r) => keysApi.getKey(s.keys, r)),
  op("PATCH", "/keys/{name}/{version}", "UpdateKey", D.KeysWrite, true, (s, r) => life.updateKey(s.keys, r)),
  op("GET", "/keys/{name}/{version}/attestation", "GetKeyAttestation", D.KeysRead, false, undefined, "7.6"),
  op("POST", "/keys/{name}/{version}/decrypt", "decrypt", D.KeysDecrypt, false, cryptoOp("decrypt")),
  op("POST", "/keys/{name}/{version}/encrypt", "encrypt", D.KeysEncrypt, false, cryptoOp("encrypt")),
  op("POST", "/keys/{name}/{version}/release", "release", D.KeysRelease, false, undefined, "7.3"),
  op(
    "POST",
    "/keys/{name}/{version}/secureunwrapkey",
    "secureunwrapkey",
    D.KeysUnwrap,
    false,
    undefined,
    "2026-04-01",
  ),
  op(
    "POST",
    "/keys/{name}/{version}/securewrapkey",
    "securewrapkey",
    D.KeysWrap,
    false,
    undefined,
    "2026-04-01",
  ),
  op("POST", "/keys/{name}/{version}/sign", "sign", D.KeysSign, false, cryptoOp("sign")),
  op("POST", "/keys/{name}/{version}/unwrapkey", "unwrapKey", D.KeysUnwrap, false, cryptoOp("unwrapkey")),
  op("POST", "/keys/{name}/{version}/verify", "verify", D.KeysVerify, false, cryptoOp("verify")),
  op("POST", "/keys/{name}/{version}/wrapkey", "wrapKey", D.KeysWrap, false, cryptoOp("wrapkey")),
  op("POST", "/rng", "GetRandomBytes", D.Rng, false, (s, r) => life.getRandomBytes(s.keys, r), "7.3"),
  ...rbacRoutes("roleAssignments"),
  ...rbacRoutes("roleDefinitions"),
  op("POST", "/backup", "FullBackup", D.BackupStart, true, (s, r) => sdApi.fullBackup(s.backups, r)),
  // A job lives on the primary that runs it (so does the exchange key): those reads are answered there.
  op("GET", "/backup/{jobId}/pending", "FullBackupStatus", D.BackupStatus, true, (s, r) =>
    sdApi.fullBackupStatus(s.backups, r),
  ),
  op(
    "POST",
    "/prebackup",
    "PreFullBackup",
    D.BackupStart,
    true,
    (s, r) => sdApi.preFullBackup(s.backups, r),
    "7.6",
  ),
  op(
    "PUT",
    "/prerestore",
    "PreFullRestoreOperation",
    D.RestoreStart,
    true,
    (s, r) => sdApi.preFullRestore(s.backups, r),
    "7.6",
  ),
  op("PUT", "/restore", "FullRestoreOperation", D.RestoreStart, true, (s, r) =>
    sdApi.fullRestore(s.backups, r),
  ),
  op("GET", "/restore/{jobId}/pending", "RestoreStatus", D.RestoreStatus, true, (s, r) =>
    sdApi.restoreStatus(s.backups, r),
  ),
  op("GET", "/settings", "GetSettings", null, false, (s, r) => settings.listSettings(s.keys, r), "7.4"),
  op("GET", "/settings/{name}", "GetSetting", null, false, (s, r) => settings.getSetting(s.keys, r), "7.4"),
  op(
    "PATCH",
    "/settings/{name}",
    "UpdateSetting",
    D.SettingsWrite,
    true,
    (s, r) => settings.updateSetting(s.keys, r),
    "7.4",
  ),
  op(
    "POST",
    "/securitydomain/download",
    "HSMSecurityDomain_Download",
    D.SecurityDomainDownload,
    true,
    (s, r) => sdApi.downloadSecurityDomain(s.securityDomain, r),
  ),
  op(
    "GET",
    "/securitydomain/download/pending",
    "HSMSecurityDomain_DownloadPending",
    D.SecurityDomainDownloadStatus,
    false,
    (s) => sdApi.downloadPending(s.securityDomain),
  ),
  op(
    "GET",
    "/securitydomain/upload",
    "HSMSecurityDomain_TransferKey",
    D.SecurityDomainTransferKey,
    true,
    (s, r) => sdApi.transferKey(s.securityDomain, r),
  ),
  op("POST", "/securitydomain/upload", "HSMSecurityDomain_Upload", D.SecurityDomainUpload, true, (s, r) =>
    sdApi.uploadSecurityDomain(s.securityDomain, r),
  ),
  op(
    "GET",
    "/securitydomain/upload/pending",
    "HSMSecurityDomain_UploadPending",
    D.SecurityDomainUploadStatus,
    false,
    (s) => sdApi.uploadPending(s.securityDomain),
  ),
];

function rbacRoutes(kind: "roleAssignments" | "roleDefinitions"): Route[] {
  const base = `{scope}/providers/Microsoft.Authorization/${kind}`;
  const assignments = kind === "roleAssignments";
  const prefix = assignments ? "RoleAssignments" : "RoleDefinitions";
  const [read, write, del] = assignments
    ? [D.RoleAssignmentsRead, D.RoleAssignmentsWrite, D.RoleAssignmentsDelete]
    : [D.RoleDefinitionsRead, D.RoleDefinitionsWrite, D.RoleDefinitionsDelete];
  const [list, get, put, remove] = assignments
    ? [rbac.listAssignments, rbac.getAssignment, rbac.putAssignment, rbac.deleteAssignment]
    : [rbac.listDefinitions, rbac.getDefinition, rbac.putDefinition, rbac.deleteDefinition];
  const on =
    (h: (keys: KeyService, r: RestRequest) => Promise<RestResult>) => (s: RestServices, r: RestRequest) =>
      h(s.keys, r);
  return [
    op("GET", base, assignments ? `${prefix}_ListForScope` : `${prefix}_List`, read, false, on(list)),
    op("GET", `${base}/{id}`, `${prefix}_Get`, read, false, on(get)),
    op(
      "PUT",
      `${base}/{id}`,
      assignments ? `${prefix}_Create` : `${prefix}_CreateOrUpdate`,
      write,
      true,
      on(put),
    ),
    op("DELETE", `${base}/{id}`, `${prefix}_Delete`, del, true, on(remove)),
  ];
}

/** Segments of the key operations a path may name after /keys/{name}/{version}/. */
const KEY_OPERATIONS = [
  "attestation",
  "decrypt",
  "encrypt",
  "release",
  "secureunwrapkey",
  "securewrapkey",
  "sign",
  "unwrapkey",
  "verify",
  "wrapkey",
];

export interface RouteMatch {
  route: Route;
  params: Record<string, string | undefined>;
}

const PROVIDERS = "/providers/Microsoft.Authorization/";

/**
 * Finds the route of a request path: the first route in ROUTES order whose pattern and
 * method fit (fixed segments such as `versions` are listed before `{version}`). The RBAC scope (`/`, `/keys`, `/keys/<name>`) is
 * a path prefix that is not URL-encoded, so scope `/` yields `//providers/...`.
 * An unknown path is NotFound; a known path with another method is BadParameter
 * naming the methods it takes; an unknown key operation says which exist.
 */
export function matchRoute(method: string, rawPath: string): RouteMatch {
  let path = rawPath;
  let scope: string | undefined;
  const at = rawPath.indexOf(PROVIDERS);
  if (at >= 0) {
    scope = rawPath.slice(0, at) || "/";
    path = `{scope}${rawPath.slice(at)}`;
  }
  const segments = splitPath(path);
  const candidates: RouteMatch[] = [];
  for (const route of ROUTES) {
    const params = bind(splitPath(route.path), segments);
    if (params) candidates.push({ route, params: { ...params, ...(scope !== undefined ? { scope } : {}) } });
  }
  const match = candidates.find((c) => c.route.method === method);
  if (match) return match;
  if (candidates.length > 0) {
    const methods = [...new Set(candidates.map((c) => c.route.method))].join(", ");
    return fail("BadParameter", `${method} is not an operation on ${rawPath}; it takes ${methods}`);
  }
  if (segments[0] === "keys" && segments.length === 4) {
    return fail(
      "BadParameter",
      `unknown key operation ${JSON.stringify(segments[3])}; expected one of ${KEY_OPERATIONS.join(", ")}`,
    );
  }
  return fail("NotFound", `no operation at ${method} ${rawPath}`);
}

/** "/keys/k/" and "/keys/k" are the same (the SDK asks for the latest version with an empty segment). */
function splitPath(path: string): string[] {
  const segments = path.split("/").slice(1);
  if (segments.at(-1) === "") segments.pop();
  return segments;
}

function bind(pattern: string[], segments: string[]): Record<string, string> | null {
  if (pattern.length !== segments.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] as string;
    const s = segments[i] as string;
    if (p.startsWith("{") && p.endsWith("}")) {
      if (p === "{scope}") {
        if (s !== "{scope}") return null;
        continue;
      }
      const name = p.slice(1, -1);
      if (s === "" && name !== "version") return null; // an empty version means the latest
      params[name] = decodeSegment(s);
    } else if (p !== s) return null;
  }
  return params;
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return fail(
      "BadParameter",
      `the path segment ${JSON.stringify(s.slice(0, 80))} is not valid percent-encoding`,
    );
  }
}
