/**
 * Every operation of ../shared/azure-rest-examples/INDEX.md (51 rows) routes to its
 * operationId, with its parameters; unknown paths, methods and key operations get
 * the errors a person can act on.
 */
import { isHsmPoolError } from "@hsmpool/errors";
import { describe, expect, test } from "vitest";
import { matchRoute, ROUTES } from "./routes.js";

const INDEX: [string, string, string, Record<string, string>?][] = [
  ["GET", "/deletedkeys", "GetDeletedKeys"],
  ["DELETE", "/deletedkeys/k1", "PurgeDeletedKey", { name: "k1" }],
  ["GET", "/deletedkeys/k1", "GetDeletedKey", { name: "k1" }],
  ["POST", "/deletedkeys/k1/recover", "RecoverDeletedKey", { name: "k1" }],
  ["GET", "/keys", "GetKeys"],
  ["POST", "/keys/restore", "RestoreKey"],
  ["DELETE", "/keys/k1", "DeleteKey", { name: "k1" }],
  ["PUT", "/keys/k1", "ImportKey", { name: "k1" }],
  ["POST", "/keys/k1/backup", "BackupKey", { name: "k1" }],
  ["POST", "/keys/k1/create", "CreateKey", { name: "k1" }],
  ["POST", "/keys/k1/rotate", "RotateKey", { name: "k1" }],
  ["GET", "/keys/k1/rotationpolicy", "GetKeyRotationPolicy", { name: "k1" }],
  ["PUT", "/keys/k1/rotationpolicy", "UpdateKeyRotationPolicy", { name: "k1" }],
  ["GET", "/keys/k1/versions", "GetKeyVersions", { name: "k1" }],
  ["GET", "/keys/k1/7", "GetKey", { name: "k1", version: "7" }],
  ["GET", "/keys/k1/", "GetKey", { name: "k1" }],
  ["PATCH", "/keys/k1/7", "UpdateKey", { name: "k1", version: "7" }],
  ["GET", "/keys/k1/7/attestation", "GetKeyAttestation", { name: "k1", version: "7" }],
  ["POST", "/keys/k1/7/decrypt", "decrypt"],
  ["POST", "/keys/k1/7/encrypt", "encrypt"],
  ["POST", "/keys/k1/7/release", "release"],
  ["POST", "/keys/k1/7/secureunwrapkey", "secureunwrapkey"],
  ["POST", "/keys/k1/7/securewrapkey", "securewrapkey"],
  ["POST", "/keys/k1//sign", "sign", { name: "k1" }],
  ["POST", "/keys/k1/7/unwrapkey", "unwrapKey"],
  ["POST", "/keys/k1/7/verify", "verify"],
  ["POST", "/keys/k1/7/wrapkey", "wrapKey"],
  ["POST", "/rng", "GetRandomBytes"],
  [
    "GET",
    "//providers/Microsoft.Authorization/roleAssignments",
    "RoleAssignments_ListForScope",
    { scope: "/" },
  ],
  [
    "DELETE",
    "/keys/providers/Microsoft.Authorization/roleAssignments/a1",
    "RoleAssignments_Delete",
    { scope: "/keys", id: "a1" },
  ],
  ["GET", "//providers/Microsoft.Authorization/roleAssignments/a1", "RoleAssignments_Get", { id: "a1" }],
  ["PUT", "//providers/Microsoft.Authorization/roleAssignments/a1", "RoleAssignments_Create"],
  [
    "GET",
    "/keys/providers/Microsoft.Authorization/roleDefinitions",
    "RoleDefinitions_List",
    { scope: "/keys" },
  ],
  [
    "DELETE",
    "//providers/Microsoft.Authorization/roleDefinitions/d1",
    "RoleDefinitions_Delete",
    { scope: "/" },
  ],
  ["GET", "//providers/Microsoft.Authorization/roleDefinitions/d1", "RoleDefinitions_Get"],
  [
    "PUT",
    "/keys/k1/providers/Microsoft.Authorization/roleDefinitions/d1",
    "RoleDefinitions_CreateOrUpdate",
    { scope: "/keys/k1" },
  ],
  ["POST", "/backup", "FullBackup"],
  ["GET", "/backup/j1/pending", "FullBackupStatus", { jobId: "j1" }],
  ["PUT", "/keys/k1/restore", "SelectiveKeyRestoreOperation", { name: "k1" }],
  ["POST", "/prebackup", "PreFullBackup"],
  ["PUT", "/prerestore", "PreFullRestoreOperation"],
  ["PUT", "/restore", "FullRestoreOperation"],
  ["GET", "/restore/j1/pending", "RestoreStatus", { jobId: "j1" }],
  ["GET", "/settings", "GetSettings"],
  ["GET", "/settings/s1", "GetSetting", { name: "s1" }],
  ["PATCH", "/settings/s1", "UpdateSetting", { name: "s1" }],
  ["POST", "/securitydomain/download", "HSMSecurityDomain_Download"],
  ["GET", "/securitydomain/download/pending", "HSMSecurityDomain_DownloadPending"],
  ["GET", "/securitydomain/upload", "HSMSecurityDomain_TransferKey"],
  ["POST", "/securitydomain/upload", "HSMSecurityDomain_Upload"],
  ["GET", "/securitydomain/upload/pending", "HSMSecurityDomain_UploadPending"],
];

function refusal(method: string, path: string) {
  try {
    matchRoute(method, path);
  } catch (e) {
    if (isHsmPoolError(e)) return e;
  }
  throw new Error(`${method} ${path} was routed`);
}

describe("routing", () => {
  test.each(INDEX)("%s %s → %s", (method, path, operationId, params) => {
    const m = matchRoute(method, path);
    expect(m.route.operationId).toBe(operationId);
    if (params) expect(m.params).toMatchObject(params);
  });

  test("every route answers one INDEX operation (50 distinct ids; RestoreStatus and SelectiveKeyRestoreStatus share a URL)", () => {
    const ids = new Set(ROUTES.map((r) => r.operationId));
    expect(ids.size).toBe(50);
    for (const [, , id] of INDEX) expect(ids.has(id)).toBe(true);
  });

  test("an unknown path is NotFound, another method is BadParameter naming the allowed ones", () => {
    expect(refusal("GET", "/secrets").code).toBe("NotFound");
    const e = refusal("PATCH", "/keys");
    expect(e.code).toBe("BadParameter");
    expect(e.message).toMatch(/takes GET/);
  });

  test("an unknown key operation is BadParameter listing the operations", () => {
    const e = refusal("POST", "/keys/k1/1/frobnicate");
    expect(e.code).toBe("BadParameter");
    expect(e.message).toMatch(/unknown key operation "frobnicate"; expected one of .*sign/);
  });

  test("bad percent-encoding in a name is BadParameter", () => {
    expect(refusal("GET", "/keys/%E0%A4%A").code).toBe("BadParameter");
  });
});
