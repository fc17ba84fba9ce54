/** Local RBAC data shapes, as the Managed HSM REST API names them (roleDefinitions, roleAssignments). */

/** `/` (the whole pool), `/keys` (every key) or `/keys/<name>` (one key and its versions). */
export type Scope = string;

export interface RolePermission {
  /** Control-plane actions: accepted and stored for fidelity, never evaluated by the data plane. */
  readonly actions: readonly string[];
  readonly notActions: readonly string[];
  readonly dataActions: readonly string[];
  /** Subtracted from this permission's dataActions (Azure semantics: not a global deny). */
  readonly notDataActions: readonly string[];
}

export interface RoleDefinition {
  /** The role definition name: a GUID (built-in ids are the real service's). */
  readonly id: string;
  readonly roleName: string;
  readonly description: string;
  readonly roleType: "AKVBuiltInRole" | "CustomRole";
  readonly assignableScopes: readonly Scope[];
  readonly permissions: readonly RolePermission[];
}

export interface RoleAssignment {
  /** The role assignment name: a GUID chosen by the caller. */
  readonly id: string;
  readonly scope: Scope;
  /** The role definition's id (GUID). */
  readonly roleDefinitionId: string;
  /** The principal's object id (the token's `oid`). */
  readonly principalId: string;
}

/** Who a verified bearer token says the caller is. */
export interface Principal {
  /** Object id (token `oid`): what role assignments name. */
  readonly oid: string;
  /** Display name (token `name`), for audit records and messages only — never for decisions. */
  readonly name: string;
  readonly tenantId: string;
}
