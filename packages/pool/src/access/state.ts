/**
 * The replicated access state: the committed tenant binding, custom role definitions and
 * role assignments. Changed only by applying `access` log entries (so only through Raft),
 * identical on every member, serialised canonically into the pool snapshot. Rules that
 * need the whole state are checked at apply: the binding is fixed by the first one
 * committed; a role must exist to be assigned and be unassigned to be deleted; built-in
 * roles cannot change; the last Administrator assignment at `/` cannot be deleted
 * (lockout protection).
 */
import type { ErrorCode } from "@hsmpool/errors";
import { compareStrings } from "../jwk.js";
import { bad } from "../validate.js";
import { BUILT_IN_ROLES, BuiltInRoleIds, isBuiltInRoleId } from "./builtin-roles.js";
import { requireGuid, validateAssignment, validateCustomRole } from "./role-validation.js";
import { scopeCovers } from "./scope.js";
import { type TenantBinding, validateJwks, validateTenantBinding } from "./tenant.js";
import type { RoleAssignment, RoleDefinition } from "./types.js";

export const MAX_ROLE_ASSIGNMENTS = 2000;
export const MAX_CUSTOM_ROLES = 200;

export type AccessOp =
  | {
      readonly op: "bindTenant";
      readonly tenant: TenantBinding;
      readonly assignments: readonly RoleAssignment[];
    }
  | { readonly op: "rolloverJwks"; readonly jwks: TenantBinding["jwks"] }
  | { readonly op: "putRoleDefinition"; readonly definition: RoleDefinition }
  | { readonly op: "deleteRoleDefinition"; readonly id: string }
  | { readonly op: "putRoleAssignment"; readonly assignment: RoleAssignment }
  | { readonly op: "deleteRoleAssignment"; readonly id: string };

export type AccessOpName = AccessOp["op"];

export class AccessRejection extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const refuse = (code: ErrorCode, message: string): never => {
  throw new AccessRejection(code, message);
};

/** Validates an access operation (BadParameter naming the field); returns a canonical frozen copy. */
export function validateAccessOp(value: unknown): AccessOp {
  if (typeof value !== "object" || value === null) return bad("op", "access operation must be an object");
  const o = value as Record<string, unknown>;
  switch (o.op) {
    case "bindTenant": {
      if (!Array.isArray(o.assignments) || o.assignments.length === 0 || o.assignments.length > 16) {
        bad("assignments", "a tenant binding names 1..16 initial role assignments");
      }
      const assignments = (o.assignments as unknown[]).map((a, i) =>
        validateAssignment(a, `assignments[${i}]`),
      );
      for (const a of assignments) {
        if (!isBuiltInRoleId(a.roleDefinitionId))
          bad("assignments", "initial assignments name built-in roles only");
      }
      return Object.freeze({
        op: "bindTenant",
        tenant: validateTenantBinding(o.tenant),
        assignments: Object.freeze(assignments.sort((a, b) => compareStrings(a.id, b.id))),
      });
    }
    case "rolloverJwks":
      return Object.freeze({ op: "rolloverJwks", jwks: validateJwks(o.jwks) });
    case "putRoleDefinition":
      return Object.freeze({ op: "putRoleDefinition", definition: validateCustomRole(o.definition) });
    case "deleteRoleDefinition":
      return Object.freeze({ op: "deleteRoleDefinition", id: requireGuid(o.id, "id") });
    case "putRoleAssignment":
      return Object.freeze({ op: "putRoleAssignment", assignment: validateAssignment(o.assignment) });
    case "deleteRoleAssignment":
      return Object.freeze({ op: "deleteRoleAssignment", id: requireGuid(o.id, "id") });
    default:
      return bad("op", `unknown access operation ${JSON.stringify(o.op)}`);
  }
}

export interface AccessSnapshot {
  readonly tenant: TenantBinding | null;
  readonly definitions: readonly RoleDefinition[];
  readonly assignments: readonly RoleAssignment[];
}

export class AccessState {
  private tenantBinding: TenantBinding | null = null;
  private readonly custom = new Map<string, RoleDefinition>();
  private readonly byId = new Map<string, RoleAssignment>();
  private readonly byPrincipal = new Map<string, RoleAssignment[]>();
  private definitionCache: ReadonlyMap<string, RoleDefinition> | null = null;

  get tenant(): TenantBinding | null {
    return this.tenantBinding;
  }

  isEmpty(): boolean {
    return this.tenantBinding === null && this.custom.size === 0 && this.byId.size === 0;
  }

  /** Built-in and custom role definitions by id. */
  definitions(): ReadonlyMap<string, RoleDefinition> {
    this.definitionCache ??= new Map([...BUILT_IN_ROLES, ...this.custom.values()].map((d) => [d.id, d]));
    return this.definitionCache;
  }

  assignmentsOf(principalId: string): readonly RoleAssignment[] {
    return this.byPrincipal.get(principalId) ?? [];
  }

  assignments(): RoleAssignment[] {
    return [...this.byId.values()].sort((a, b) => compareStrings(a.id, b.id));
  }

  customDefinitions(): RoleDefinition[] {
    return [...this.custom.values()].sort((a, b) => compareStrings(a.id, b.id));
  }

  /** Applies one committed operation; refusals throw AccessRejection and change nothing. */
  apply(op: AccessOp): "applied" | "ignored" {
    if (op.op === "bindTenant") {
      if (this.tenantBinding !== null) return "ignored";
      for (const a of op.assignments) this.requireAssignable(a);
      this.tenantBinding = op.tenant;
      for (const a of op.assignments) this.add(a);
      return "applied";
    }
    const tenant = this.tenantBinding ?? refuse("NotInitialized", "the pool is not bound to a tenant yet");
    switch (op.op) {
      case "rolloverJwks":
        this.tenantBinding = Object.freeze({ ...tenant, jwks: op.jwks });
        return "applied";
      case "putRoleDefinition":
        return this.putDefinition(op.definition);
      case "deleteRoleDefinition": {
        if (isBuiltInRoleId(op.id)) refuse("Forbidden", "built-in roles cannot be deleted");
        if (!this.custom.has(op.id)) refuse("NotFound", `role definition ${op.id} does not exist`);
        const used = [...this.byId.values()].filter((a) => a.roleDefinitionId === op.id).length;
        if (used > 0)
          refuse(
            "Conflict",
            `role definition ${op.id} is used by ${used} role assignment(s); delete them first`,
          );
        this.custom.delete(op.id);
        this.definitionCache = null;
        return "applied";
      }
      case "putRoleAssignment": {
        const existing = this.byId.get(op.assignment.id);
        if (existing !== undefined) {
          if (sameAssignment(existing, op.assignment)) return "applied";
          refuse("Conflict", `role assignment ${op.assignment.id} exists with other properties`);
        }
        this.requireAssignable(op.assignment);
        const twin = this.assignmentsOf(op.assignment.principalId).find(
          (a) => a.roleDefinitionId === op.assignment.roleDefinitionId && a.scope === op.assignment.scope,
        );
        if (twin)
          refuse(
            "Conflict",
            `the principal already holds this role at ${op.assignment.scope} (assignment ${twin.id})`,
          );
        if (this.byId.size >= MAX_ROLE_ASSIGNMENTS)
          refuse("Conflict", `at most ${MAX_ROLE_ASSIGNMENTS} role assignments`);
        this.add(op.assignment);
        return "applied";
      }
      case "deleteRoleAssignment": {
        const a = this.byId.get(op.id) ?? refuse("NotFound", `role assignment ${op.id} does not exist`);
        if (this.isLastRootAdministrator(a)) {
          refuse(
            "Forbidden",
            "refused: this is the last Managed HSM Administrator assignment at / (lockout protection); assign another Administrator first",
          );
        }
        this.remove(a);
        return "applied";
      }
    }
  }

  private putDefinition(d: RoleDefinition): "applied" {
    if (isBuiltInRoleId(d.id)) refuse("Forbidden", "built-in roles cannot be changed");
    const clash = [...this.definitions().values()].find((x) => x.roleName === d.roleName && x.id !== d.id);
    if (clash) refuse("Conflict", `a role named ${JSON.stringify(d.roleName)} exists (${clash.id})`);
    if (!this.custom.has(d.id) && this.custom.size >= MAX_CUSTOM_ROLES)
      refuse("Conflict", `at most ${MAX_CUSTOM_ROLES} custom roles`);
    this.custom.set(d.id, d);
    this.definitionCache = null;
    return "applied";
  }

  private requireAssignable(a: RoleAssignment): void {
    const d =
      this.definitions().get(a.roleDefinitionId) ??
      refuse("NotFound", `role definition ${a.roleDefinitionId} does not exist`);
    if (!d.assignableScopes.some((s) => scopeCovers(s, a.scope))) {
      refuse("BadParameter", `role ${d.roleName} is assignable at ${d.assignableScopes.join(", ")} only`);
    }
  }

  private isLastRootAdministrator(a: RoleAssignment): boolean {
    if (a.roleDefinitionId !== BuiltInRoleIds.Administrator || a.scope !== "/") return false;
    let n = 0;
    for (const x of this.byId.values())
      if (x.roleDefinitionId === BuiltInRoleIds.Administrator && x.scope === "/") n++;
    return n <= 1;
  }

  private add(a: RoleAssignment): void {
    this.byId.set(a.id, a);
    this.byPrincipal.set(a.principalId, [...this.assignmentsOf(a.principalId), a]);
  }

  private remove(a: RoleAssignment): void {
    this.byId.delete(a.id);
    const rest = this.assignmentsOf(a.principalId).filter((x) => x.id !== a.id);
    if (rest.length === 0) this.byPrincipal.delete(a.principalId);
    else this.byPrincipal.set(a.principalId, rest);
  }

  /** Canonical JSON (ids ascending): equal states give equal text on every member. */
  encode(): string {
    const snapshot: AccessSnapshot = {
      tenant: this.tenantBinding,
      definitions: this.customDefinitions(),
      assignments: this.assignments(),
    };
    return JSON.stringify(snapshot);
  }

  /** Rebuilds from `encode()` output, re-validating everything (BadParameter on any invalid value). */
  static decode(text: string): AccessState {
    let raw: Partial<AccessSnapshot>;
    try {
      raw = JSON.parse(text) as Partial<AccessSnapshot>;
    } catch {
      return bad("access", "access state is not valid JSON");
    }
    const state = new AccessState();
    if (raw.tenant !== null && raw.tenant !== undefined)
      state.tenantBinding = validateTenantBinding(raw.tenant);
    for (const [i, d] of (raw.definitions ?? []).entries()) {
      const def = validateCustomRole(d, `definitions[${i}]`);
      state.custom.set(def.id, def);
    }
    for (const [i, a] of (raw.assignments ?? []).entries())
      state.add(validateAssignment(a, `assignments[${i}]`));
    if (state.encode() !== text) bad("access", "access state is not in canonical form");
    return state;
  }
}

function sameAssignment(a: RoleAssignment, b: RoleAssignment): boolean {
  return a.scope === b.scope && a.roleDefinitionId === b.roleDefinitionId && a.principalId === b.principalId;
}
