/**
 * The one RBAC decision, run on every member for every request: deny by default; allow
 * when some assignment of `principal` whose scope covers `scope` names a role with a
 * permission that lists `dataAction` in dataActions and not in notDataActions.
 * notDataActions subtract within their own permission (Azure semantics): another role
 * that grants the action still grants it.
 */
import type { DataAction } from "./data-actions.js";
import { scopeCovers } from "./scope.js";
import type { RoleAssignment, RoleDefinition, Scope } from "./types.js";

export function permits(definition: RoleDefinition, dataAction: string): boolean {
  return definition.permissions.some(
    (p) => p.dataActions.includes(dataAction) && !p.notDataActions.includes(dataAction),
  );
}

export function isAllowed(
  assignments: Iterable<RoleAssignment>,
  definitions: ReadonlyMap<string, RoleDefinition>,
  principal: string,
  dataAction: DataAction,
  scope: Scope,
): boolean {
  for (const a of assignments) {
    if (a.principalId !== principal || !scopeCovers(a.scope, scope)) continue;
    const definition = definitions.get(a.roleDefinitionId);
    if (definition !== undefined && permits(definition, dataAction)) return true;
  }
  return false;
}
