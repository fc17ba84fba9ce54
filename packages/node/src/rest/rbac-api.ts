/**
 * Managed HSM local RBAC over REST (`/{scope}/providers/Microsoft.Authorization/
 * roleDefinitions|roleAssignments`): the Azure JSON shapes of
 * ../shared/azure-rest-examples/rbac translated onto the pool's access state. Reads
 * see everything committed before them (KeyService.accessState); writes are committed
 * through Raft (KeyService.commitAccess), where the state refuses built-in changes,
 * clashes and the last Administrator's removal (lockout protection). A delete checks
 * for the primary first, so a secondary forwards it rather than answering from a
 * state that may lag. The endpoint has already checked the caller's role at the URL's scope.
 */
import { fail } from "@hsmpool/errors";
import {
  type AccessState,
  normalizeScope,
  type RoleAssignment,
  type RoleDefinition,
  requireGuid,
  type Scope,
  scopeCovers,
  validateAssignment,
  validateCustomRole,
} from "@hsmpool/pool";
import type { KeyService } from "../keyvault/key-service.js";
import { objectField } from "./key-json.js";
import { pageOf } from "./paging.js";
import type { RestRequest, RestResult } from "./types.js";

const PROVIDER = "/providers/Microsoft.Authorization";
const DEFINITION_TYPE = "Microsoft.Authorization/roleDefinitions";
const ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments";
/** Managed HSM names every role definition under this prefix, whatever scope it was read at. */
const DEFINITION_PREFIX = `Microsoft.KeyVault${PROVIDER}/roleDefinitions/`;

const requestIdOf = (r: RestRequest) => (r.requestId ? r.requestId : undefined);
/** `/` → "", `/keys` → "/keys": the path prefix before /providers. */
const prefixOf = (scope: Scope): string => (scope === "/" ? "" : scope);
const scopeOf = (r: RestRequest): Scope => normalizeScope(r.params.scope ?? "/", "scope");

export function definitionJson(d: RoleDefinition): Record<string, unknown> {
  return {
    id: `${DEFINITION_PREFIX}${d.id}`,
    name: d.id,
    type: DEFINITION_TYPE,
    properties: {
      roleName: d.roleName,
      description: d.description,
      type: d.roleType,
      permissions: d.permissions.map((p) => ({
        actions: [...p.actions],
        notActions: [...p.notActions],
        dataActions: [...p.dataActions],
        notDataActions: [...p.notDataActions],
      })),
      assignableScopes: [...d.assignableScopes],
    },
  };
}

export function assignmentJson(a: RoleAssignment): Record<string, unknown> {
  return {
    id: `${prefixOf(a.scope)}${PROVIDER}/roleAssignments/${a.id}`,
    name: a.id,
    type: ASSIGNMENT_TYPE,
    properties: {
      scope: a.scope,
      roleDefinitionId: `${DEFINITION_PREFIX}${a.roleDefinitionId}`,
      principalId: a.principalId,
    },
  };
}

/** The GUID a role definition id names: a bare GUID or any `.../roleDefinitions/<guid>` form. */
function definitionGuidOf(value: unknown): unknown {
  if (typeof value !== "string") return value;
  const at = value.lastIndexOf("/roleDefinitions/");
  return at >= 0 ? value.slice(at + "/roleDefinitions/".length) : value;
}

function propertiesOf(r: RestRequest): Record<string, unknown> {
  if (r.body.properties === undefined) fail("BadParameter", "the body must carry `properties`");
  return objectField(r.body, "properties");
}

function definitionOf(state: AccessState, id: string): RoleDefinition {
  return (
    state.definitions().get(id.toLowerCase()) ??
    fail("NotFound", `role definition ${JSON.stringify(id.slice(0, 80))} does not exist`)
  );
}

function assignmentOf(state: AccessState, id: string, scope: Scope): RoleAssignment {
  const found = state.assignments().find((a) => a.id === id.toLowerCase() && a.scope === scope);
  return (
    found ?? fail("NotFound", `role assignment ${JSON.stringify(id.slice(0, 80))} does not exist at ${scope}`)
  );
}

/** `$filter` of RoleDefinitions_List: `roleName eq '<name>'` (the SDK's), else every definition. */
function definitionFilter(r: RestRequest): (d: RoleDefinition) => boolean {
  const filter = r.query.get("$filter");
  if (filter === null || filter === "") return () => true;
  const m = /^\s*roleName\s+eq\s+'([^']*)'\s*$/.exec(filter);
  if (!m)
    return fail(
      "BadParameter",
      `unsupported $filter ${JSON.stringify(filter.slice(0, 80))}; use roleName eq '<name>'`,
    );
  return (d) => d.roleName === m[1];
}

/**
 * `$filter` of RoleAssignments_ListForScope: `atScope()` (assignments at or above the
 * scope) or `principalId eq '<id>'`; without one, every assignment at, above or below it.
 */
function assignmentFilter(r: RestRequest, scope: Scope): (a: RoleAssignment) => boolean {
  const related = (a: RoleAssignment) => scopeCovers(a.scope, scope) || scopeCovers(scope, a.scope);
  const filter = r.query.get("$filter");
  if (filter === null || filter === "") return related;
  if (/^\s*atScope\(\)\s*$/.test(filter)) return (a) => scopeCovers(a.scope, scope);
  const m = /^\s*principalId\s+eq\s+'([^']*)'\s*$/.exec(filter);
  if (!m)
    return fail(
      "BadParameter",
      `unsupported $filter ${JSON.stringify(filter.slice(0, 80))}; use atScope() or principalId eq '<id>'`,
    );
  const principal = (m[1] as string).toLowerCase();
  return (a) => related(a) && a.principalId === principal;
}

const listPath = (scope: Scope, kind: string) => `${prefixOf(scope) || "/"}${PROVIDER}/${kind}`;

export async function listDefinitions(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const scope = scopeOf(r);
  const keep = definitionFilter(r);
  const all = [...(await keys.accessState()).definitions().values()]
    .filter(keep)
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  return {
    status: 200,
    body: pageOf(all, (d) => d.id, definitionJson, r, listPath(scope, "roleDefinitions")),
  };
}

export async function getDefinition(keys: KeyService, r: RestRequest): Promise<RestResult> {
  scopeOf(r);
  return { status: 200, body: definitionJson(definitionOf(await keys.accessState(), r.params.id as string)) };
}

/** RoleDefinitions_CreateOrUpdate: 201 with the definition as committed. */
export async function putDefinition(keys: KeyService, r: RestRequest): Promise<RestResult> {
  scopeOf(r);
  const p = propertiesOf(r);
  if (p.type !== undefined && p.type !== "CustomRole")
    fail("BadParameter", `properties.type must be "CustomRole" (got ${JSON.stringify(p.type).slice(0, 40)})`);
  const id = requireGuid(r.params.id, "roleDefinitionName");
  const definition = validateCustomRole({ ...p, id }, "properties");
  await keys.commitAccess({ op: "putRoleDefinition", definition }, requestIdOf(r));
  return { status: 201, body: definitionJson(definitionOf(await keys.accessState(), definition.id)) };
}

/** RoleDefinitions_Delete: 200 with the definition that was removed. */
export async function deleteDefinition(keys: KeyService, r: RestRequest): Promise<RestResult> {
  scopeOf(r);
  keys.requireLeader();
  const existing = definitionOf(await keys.accessState(), r.params.id as string);
  await keys.commitAccess({ op: "deleteRoleDefinition", id: existing.id }, requestIdOf(r));
  return { status: 200, body: definitionJson(existing) };
}

export async function listAssignments(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const scope = scopeOf(r);
  const keep = assignmentFilter(r, scope);
  const shown = (await keys.accessState())
    .assignments()
    .filter(keep)
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  return {
    status: 200,
    body: pageOf(shown, (a) => a.id, assignmentJson, r, listPath(scope, "roleAssignments")),
  };
}

export async function getAssignment(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const state = await keys.accessState();
  return { status: 200, body: assignmentJson(assignmentOf(state, r.params.id as string, scopeOf(r))) };
}

/** RoleAssignments_Create: 201 with the assignment as committed (a repeat with the same properties is the same). */
export async function putAssignment(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const p = propertiesOf(r);
  const assignment = validateAssignment(
    {
      id: requireGuid(r.params.id, "roleAssignmentName"),
      scope: scopeOf(r),
      roleDefinitionId: definitionGuidOf(p.roleDefinitionId),
      principalId: p.principalId,
    },
    "properties",
  );
  await keys.commitAccess({ op: "putRoleAssignment", assignment }, requestIdOf(r));
  return { status: 201, body: assignmentJson(assignment) };
}

/** RoleAssignments_Delete: 200 with the assignment that was removed. */
export async function deleteAssignment(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const scope = scopeOf(r);
  keys.requireLeader();
  const existing = assignmentOf(await keys.accessState(), r.params.id as string, scope);
  await keys.commitAccess({ op: "deleteRoleAssignment", id: existing.id }, requestIdOf(r));
  return { status: 200, body: assignmentJson(existing) };
}
