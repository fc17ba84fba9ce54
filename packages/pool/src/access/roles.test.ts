/**
 * Every built-in role x every data action against the published Managed HSM matrix
 * (learn.microsoft.com "Local RBAC built-in roles for Managed HSM", copied below as
 * published), plus the actions the service's own role list adds and the one cell where
 * that list corrects the matrix.
 */
import { describe, expect, it } from "vitest";
import { BUILT_IN_ROLES, BuiltInRoleIds } from "./builtin-roles.js";
import { ALL_DATA_ACTIONS, type DataAction, DataActions } from "./data-actions.js";
import { isAllowed } from "./evaluate.js";
import type { RoleDefinition } from "./types.js";

const PUBLISHED_MATRIX = `
|Data action | Administrator | Crypto Officer | Crypto User | Policy Administrator | Crypto Service Encryption User | Backup | Crypto Auditor | Crypto Service Release User | Restore|
|/securitydomain/download/action|X|||||||||
|/securitydomain/upload/action|X|||||||||
|/securitydomain/upload/read|X|||||||||
|/securitydomain/transferkey/read|X|||||||||
|/keys/read/action|||X||X||X|||
|/keys/write/action|||X|||||||
|/keys/rotate/action|||X|||||||
|/keys/create|||X|||||||
|/keys/delete|||X|||||||
|/keys/deletedKeys/read/action||X||||||||
|/keys/deletedKeys/recover/action||X||||||||
|/keys/deletedKeys/delete||X|||||X|||
|/keys/backup/action|||X|||X||||
|/keys/restore/action|||X||||||X|
|/keys/release/action|||X|||||X||
|/keys/import/action|||X|||||||
|/keys/encrypt/action|||X|||||||
|/keys/decrypt/action|||X|||||||
|/keys/wrap/action|||X||X|||||
|/keys/unwrap/action|||X||X|||||
|/keys/sign/action|||X|||||||
|/keys/verify/action|||X|||||||
|/roleAssignments/read/action|X|X|X|X|||X|||
|/roleAssignments/write/action|X|X||X||||||
|/roleAssignments/delete/action|X|X||X||||||
|/roleDefinitions/read/action|X|X|X|X|||X|||
|/roleDefinitions/write/action|X|X||X||||||
|/roleDefinitions/delete/action|X|X||X||||||
|/backup/start/action|X|||||X||||
|/backup/status/action|X|||||X||||
|/restore/start/action|X||||||||X|
|/restore/status/action|X||||||||X|
`;

const PREFIX = "Microsoft.KeyVault/managedHsm";

/** Cells where the service's own role list differs from the matrix: [role, action, granted]. */
const SERVICE_CORRECTIONS: [string, DataAction, boolean][] = [
  // The matrix marks purge for the Crypto Auditor, a read-only role; the service lists deletedKeys/read.
  ["Crypto Auditor", DataActions.DeletedKeysPurge, false],
];
/** Actions absent from the matrix, as the service's role list grants them. */
const SERVICE_EXTRAS: [string, DataAction][] = [
  ["Administrator", DataActions.SecurityDomainDownloadStatus],
  ["Crypto Officer", DataActions.KeysExport],
  ["Crypto User", DataActions.Rng],
  ["Crypto Auditor", DataActions.DeletedKeysRead],
  // hsmpool extension: the TEE-held audit log.
  ["Administrator", DataActions.AuditRead],
  ["Crypto Auditor", DataActions.AuditRead],
  ["Administrator", DataActions.TenantWrite],
  ["Administrator", DataActions.SettingsWrite],
];

function parseMatrix(): { roles: string[]; cells: Map<string, Set<string>> } {
  const rows = PUBLISHED_MATRIX.trim()
    .split("\n")
    .map((l) =>
      l
        .split("|")
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  const header = rows[0] ?? [];
  const roles = header.slice(1);
  const cells = new Map<string, Set<string>>(roles.map((r) => [r, new Set<string>()]));
  for (const row of rows.slice(1)) {
    row.slice(1).forEach((cell, i) => {
      if (cell === "X") cells.get(roles[i] ?? "")?.add(`${PREFIX}${row[0]}`);
    });
  }
  return { roles, cells };
}

const byName = (short: string): RoleDefinition => {
  const role = BUILT_IN_ROLES.find((r) => r.roleName === `Managed HSM ${short}`);
  if (!role) throw new Error(`no built-in role ${short}`);
  return role;
};

describe("built-in roles match the published Managed HSM role matrix", () => {
  const { roles, cells } = parseMatrix();
  const matrixActions = new Set([...cells.values()].flatMap((s) => [...s]));

  it("has the nine built-in roles with the published names and ids", () => {
    expect(roles).toHaveLength(9);
    expect(BUILT_IN_ROLES.map((r) => r.roleName).sort()).toEqual(roles.map((r) => `Managed HSM ${r}`).sort());
    expect(byName("Administrator").id).toBe("a290e904-7015-4bba-90c8-60543313cdb4");
    expect(byName("Crypto User").id).toBe("21dbd100-6940-42c2-9190-5d6cb909625b");
    expect(byName("Crypto Service Release User").id).toBe("21dbd100-6940-42c2-9190-5d6cb909625c");
    expect(Object.values(BuiltInRoleIds).sort()).toEqual(BUILT_IN_ROLES.map((r) => r.id).sort());
  });

  it("every matrix action is a known data action", () => {
    for (const a of matrixActions) expect(ALL_DATA_ACTIONS).toContain(a);
  });

  for (const role of roles) {
    it(`${role}: allowed exactly what the matrix (plus the service's corrections) says, at every scope`, () => {
      const definition = byName(role);
      const definitions = new Map([[definition.id, definition]]);
      const assignments = [{ id: "a1", scope: "/", roleDefinitionId: definition.id, principalId: "p" }];
      const expected = new Set(cells.get(role));
      for (const [r, action, granted] of SERVICE_CORRECTIONS) {
        if (r !== role) continue;
        if (granted) expected.add(action);
        else expected.delete(action);
      }
      for (const [r, action] of SERVICE_EXTRAS) if (r === role) expected.add(action);
      for (const action of ALL_DATA_ACTIONS) {
        for (const scope of ["/", "/keys", "/keys/k1"]) {
          expect(
            isAllowed(assignments, definitions, "p", action, scope),
            `${role} ${action} at ${scope}`,
          ).toBe(expected.has(action));
        }
      }
    });
  }
});
