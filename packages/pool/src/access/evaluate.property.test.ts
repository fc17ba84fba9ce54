/** Properties of the RBAC decision: deny by default, notDataActions win in their permission, scope inheritance. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ALL_DATA_ACTIONS, type DataAction } from "./data-actions.js";
import { isAllowed } from "./evaluate.js";
import { scopeCovers } from "./scope.js";
import type { RoleAssignment, RoleDefinition } from "./types.js";

const action = fc.constantFrom(...ALL_DATA_ACTIONS);
const actions = fc.uniqueArray(action, { maxLength: 8 });
const keyName = fc.stringMatching(/^[0-9a-zA-Z-]{1,12}$/);
const scope = fc.oneof(
  fc.constant("/"),
  fc.constant("/keys"),
  keyName.map((k) => `/keys/${k}`),
);
const principal = fc.constantFrom("p1", "p2", "p3");

const role = (
  id: string,
  dataActions: readonly string[],
  notDataActions: readonly string[] = [],
): RoleDefinition => ({
  id,
  roleName: id,
  description: "",
  roleType: "CustomRole",
  assignableScopes: ["/"],
  permissions: [{ actions: [], notActions: [], dataActions, notDataActions }],
});

const world: fc.Arbitrary<World> = fc.record({
  roles: fc.array(fc.tuple(actions, actions), { minLength: 1, maxLength: 4 }),
  assignments: fc.array(fc.record({ role: fc.nat(3), scope, principal }), { maxLength: 6 }),
});

interface World {
  roles: [DataAction[], DataAction[]][];
  assignments: { role: number; scope: string; principal: string }[];
}

function build(w: World): { definitions: Map<string, RoleDefinition>; assignments: RoleAssignment[] } {
  const defs = w.roles.map(([allow, deny], i) => role(`r${i}`, allow, deny));
  const definitions = new Map<string, RoleDefinition>(defs.map((d) => [d.id, d]));
  const assignments: RoleAssignment[] = w.assignments.map((a, i) => ({
    id: `a${i}`,
    scope: a.scope,
    roleDefinitionId: `r${a.role % defs.length}`,
    principalId: a.principal,
  }));
  return { definitions, assignments };
}

describe("isAllowed", () => {
  it("no assignment means denied, for every principal, action and scope", () => {
    fc.assert(
      fc.property(world, principal, action, scope, (w, p, a, s) => {
        const { definitions, assignments } = build(w);
        const mine = assignments.filter((x) => x.principalId === p && scopeCovers(x.scope, s));
        if (mine.length === 0) expect(isAllowed(assignments, definitions, p, a, s)).toBe(false);
        expect(isAllowed([], definitions, p, a, s)).toBe(false);
      }),
    );
  });

  it("an action in a permission's notDataActions is never granted by that permission", () => {
    fc.assert(
      fc.property(actions, actions, action, principal, scope, (allow, deny, a, p, s) => {
        const r = role("r", [...allow, a], [...deny, a]);
        const assignments = [{ id: "a", scope: "/", roleDefinitionId: "r", principalId: p }];
        expect(isAllowed(assignments, new Map([["r", r]]), p, a, s)).toBe(false);
      }),
    );
  });

  it("allowed exactly when some covering assignment's role grants the action minus its notDataActions", () => {
    fc.assert(
      fc.property(world, principal, action, scope, (w, p, a, s) => {
        const { definitions, assignments } = build(w);
        const expected = assignments.some((x) => {
          const perm = definitions.get(x.roleDefinitionId)?.permissions[0];
          return (
            x.principalId === p &&
            scopeCovers(x.scope, s) &&
            (perm?.dataActions.includes(a) ?? false) &&
            !(perm?.notDataActions.includes(a) ?? false)
          );
        });
        expect(isAllowed(assignments, definitions, p, a, s)).toBe(expected);
      }),
    );
  });

  it("scope inheritance: allowed at a scope implies allowed at every scope below it", () => {
    fc.assert(
      fc.property(world, principal, action, keyName, (w, p, a, k) => {
        const { definitions, assignments } = build(w);
        const at = (s: string) => isAllowed(assignments, definitions, p, a, s);
        if (at("/")) expect(at("/keys")).toBe(true);
        if (at("/keys")) expect(at(`/keys/${k}`)).toBe(true);
        // and never upward from one key alone
        const onlyKey = assignments.filter((x) => x.scope === `/keys/${k}`);
        if (onlyKey.length === assignments.length && assignments.length > 0) {
          expect(at("/keys")).toBe(false);
          expect(at(`/keys/${k}x`)).toBe(false);
        }
      }),
    );
  });
});
