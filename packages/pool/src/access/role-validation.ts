/** Validation of role definitions and assignments as requests and log entries carry them (BadParameter naming the field). */
import { bad } from "../validate.js";
import { isDataAction } from "./data-actions.js";
import { normalizeScope } from "./scope.js";
import type { RoleAssignment, RoleDefinition, RolePermission } from "./types.js";

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_PERMISSIONS = 10;
const MAX_ACTIONS = 64;
const MAX_NAME_CHARS = 256;
const MAX_DESCRIPTION_CHARS = 1024;

export function requireGuid(value: unknown, field: string): string {
  if (typeof value !== "string" || !GUID.test(value.toLowerCase())) bad(field, `${field} must be a GUID`);
  return (value as string).toLowerCase();
}

function stringList(value: unknown, field: string, dataActions: boolean): readonly string[] {
  if (value === undefined || value === null) return Object.freeze([]);
  if (!Array.isArray(value) || value.length > MAX_ACTIONS)
    bad(field, `${field} must be a list of at most ${MAX_ACTIONS} actions`);
  const out = (value as unknown[]).map((a, i) => {
    if (typeof a !== "string" || a.length === 0 || a.length > 256)
      bad(`${field}[${i}]`, `${field}[${i}] must be an action string`);
    if (dataActions && !isDataAction(a)) {
      bad(
        `${field}[${i}]`,
        `${field}[${i}] ${JSON.stringify(a)} is not a Managed HSM data action (no wildcards)`,
      );
    }
    return a as string;
  });
  return Object.freeze([...new Set(out)]);
}

function permission(value: unknown, field: string): RolePermission {
  if (typeof value !== "object" || value === null) return bad(field, `${field} must be an object`);
  const p = value as Record<string, unknown>;
  return Object.freeze({
    actions: stringList(p.actions, `${field}.actions`, false),
    notActions: stringList(p.notActions, `${field}.notActions`, false),
    dataActions: stringList(p.dataActions, `${field}.dataActions`, true),
    notDataActions: stringList(p.notDataActions, `${field}.notDataActions`, true),
  });
}

/** A custom role definition (built-in roles are not written through here). */
export function validateCustomRole(value: unknown, field = "definition"): RoleDefinition {
  if (typeof value !== "object" || value === null) return bad(field, `${field} must be an object`);
  const d = value as Record<string, unknown>;
  const roleName = d.roleName;
  if (typeof roleName !== "string" || roleName.trim() === "" || roleName.length > MAX_NAME_CHARS) {
    bad(`${field}.roleName`, `${field}.roleName must be 1..${MAX_NAME_CHARS} characters`);
  }
  const description = d.description ?? "";
  if (typeof description !== "string" || description.length > MAX_DESCRIPTION_CHARS) {
    bad(`${field}.description`, `${field}.description must be at most ${MAX_DESCRIPTION_CHARS} characters`);
  }
  if (!Array.isArray(d.permissions) || d.permissions.length === 0 || d.permissions.length > MAX_PERMISSIONS) {
    bad(`${field}.permissions`, `${field}.permissions must list 1..${MAX_PERMISSIONS} permissions`);
  }
  const scopes =
    Array.isArray(d.assignableScopes) && d.assignableScopes.length > 0 ? d.assignableScopes : ["/"];
  const assignableScopes = [
    ...new Set(scopes.map((s, i) => normalizeScope(s, `${field}.assignableScopes[${i}]`))),
  ];
  for (const s of assignableScopes) {
    if (s !== "/" && s !== "/keys")
      bad(`${field}.assignableScopes`, `${field}.assignableScopes may hold "/" and "/keys" only`);
  }
  return Object.freeze({
    id: requireGuid(d.id, `${field}.id`),
    roleName: (roleName as string).trim(),
    description: description as string,
    roleType: "CustomRole",
    assignableScopes: Object.freeze(assignableScopes.sort()),
    permissions: Object.freeze(
      (d.permissions as unknown[]).map((p, i) => permission(p, `${field}.permissions[${i}]`)),
    ),
  });
}

export function validateAssignment(value: unknown, field = "assignment"): RoleAssignment {
  if (typeof value !== "object" || value === null) return bad(field, `${field} must be an object`);
  const a = value as Record<string, unknown>;
  return Object.freeze({
    id: requireGuid(a.id, `${field}.id`),
    scope: normalizeScope(a.scope, `${field}.scope`),
    roleDefinitionId: requireGuid(a.roleDefinitionId, `${field}.roleDefinitionId`),
    principalId: requireGuid(a.principalId, `${field}.principalId`),
  });
}
