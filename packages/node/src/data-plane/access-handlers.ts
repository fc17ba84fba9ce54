/**
 * gRPC handlers of proto/pool.proto's AccessControl: role definitions and assignments
 * (reads from this member's replicated state, writes committed through Raft on the
 * primary), JWKS rollover, and this member's audit log. Every handler authorises first.
 */
import type * as grpc from "@grpc/grpc-js";
import { fail } from "@hsmpool/errors";
import {
  DataActions as A,
  type AccessState,
  normalizeScope,
  ROOT_SCOPE,
  type RoleAssignment,
  type RoleDefinition,
  scopeCovers,
  validateAssignment,
  validateCustomRole,
  validateJwks,
} from "@hsmpool/pool";
import { recordLine } from "../audit/audit-chain.js";
import type { AuditLog } from "../audit/audit-log.js";
import type { KeyService } from "../keyvault/key-service.js";
import type { DataPlaneAccess } from "./access.js";
import { unary } from "./grpc-errors.js";

interface PermissionMessage {
  actions: string[];
  notActions: string[];
  dataActions: string[];
  notDataActions: string[];
}
interface DefinitionMessage {
  id: string;
  roleName: string;
  description: string;
  roleType: string;
  assignableScopes: string[];
  permissions: PermissionMessage[];
}
interface AssignmentMessage {
  id: string;
  scope: string;
  roleDefinitionId: string;
  principalId: string;
}

export function definitionMessage(d: RoleDefinition): DefinitionMessage {
  return {
    id: d.id,
    roleName: d.roleName,
    description: d.description,
    roleType: d.roleType,
    assignableScopes: [...d.assignableScopes],
    permissions: d.permissions.map((p) => ({
      actions: [...p.actions],
      notActions: [...p.notActions],
      dataActions: [...p.dataActions],
      notDataActions: [...p.notDataActions],
    })),
  };
}

const assignmentMessage = (a: RoleAssignment): AssignmentMessage => ({ ...a });

export interface AccessControlContext {
  access: DataPlaneAccess;
  writes: KeyService;
  state(): AccessState;
  audit: AuditLog;
  nodeId: string;
  onInternalError(e: unknown): void;
}

export function accessControlImplementation(ctx: AccessControlContext): grpc.UntypedServiceImplementation {
  const u = <Req, Res>(h: (r: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>) =>
    unary(h, ctx.onInternalError);
  const { access, writes } = ctx;
  return {
    ListRoleDefinitions: u(async (_r: unknown, call) => {
      await access.authorize(call, A.RoleDefinitionsRead, ROOT_SCOPE);
      return { definitions: [...ctx.state().definitions().values()].map(definitionMessage) };
    }),
    PutRoleDefinition: u(async (r: { definition: DefinitionMessage | null; requestId: string }, call) => {
      await access.authorize(call, A.RoleDefinitionsWrite, ROOT_SCOPE);
      const definition = validateCustomRole(r.definition ?? fail("BadParameter", "definition is required"));
      await writes.commitAccess({ op: "putRoleDefinition", definition }, r.requestId);
      return definitionMessage(definition);
    }),
    DeleteRoleDefinition: u(async (r: { id: string; requestId: string }, call) => {
      await access.authorize(call, A.RoleDefinitionsDelete, ROOT_SCOPE);
      await writes.commitAccess({ op: "deleteRoleDefinition", id: r.id.toLowerCase() }, r.requestId);
      return {};
    }),
    ListRoleAssignments: u(async (r: { scope: string }, call) => {
      const scope = r.scope === "" ? ROOT_SCOPE : normalizeScope(r.scope);
      await access.authorize(call, A.RoleAssignmentsRead, scope);
      const all = ctx.state().assignments();
      const shown =
        r.scope === "" ? all : all.filter((a) => scopeCovers(a.scope, scope) || scopeCovers(scope, a.scope));
      return { assignments: shown.map(assignmentMessage) };
    }),
    PutRoleAssignment: u(async (r: { assignment: AssignmentMessage | null; requestId: string }, call) => {
      const assignment = validateAssignment(r.assignment ?? fail("BadParameter", "assignment is required"));
      await access.authorize(call, A.RoleAssignmentsWrite, assignment.scope);
      await writes.commitAccess({ op: "putRoleAssignment", assignment }, r.requestId);
      return assignmentMessage(assignment);
    }),
    DeleteRoleAssignment: u(async (r: { id: string; requestId: string }, call) => {
      const existing = ctx
        .state()
        .assignments()
        .find((a) => a.id === r.id.toLowerCase());
      await access.authorize(call, A.RoleAssignmentsDelete, existing?.scope ?? ROOT_SCOPE);
      await writes.commitAccess({ op: "deleteRoleAssignment", id: r.id.toLowerCase() }, r.requestId);
      return {};
    }),
    RolloverJwks: u(async (r: { jwksJson: string; requestId: string }, call) => {
      await access.authorize(call, A.TenantWrite, ROOT_SCOPE);
      let parsed: unknown;
      try {
        parsed = JSON.parse(r.jwksJson);
      } catch {
        fail("BadParameter", "jwks_json is not JSON");
      }
      await writes.commitAccess({ op: "rolloverJwks", jwks: validateJwks(parsed) }, r.requestId);
      return {};
    }),
    ReadAudit: u(async (r: { afterSeq: number; max: number }, call) => {
      await access.authorize(call, A.AuditRead, ROOT_SCOPE);
      return {
        member: ctx.nodeId,
        records: ctx.audit.read(r.afterSeq, r.max === 0 ? 500 : r.max).map((x) => recordLine(x).trimEnd()),
      };
    }),
    VerifyAudit: u(async (_r: unknown, call) => {
      await access.authorize(call, A.AuditRead, ROOT_SCOPE);
      const v = await ctx.audit.verify();
      return {
        member: ctx.nodeId,
        ok: v.ok,
        records: v.records,
        firstBadSeq: v.firstBadSeq,
        reason: v.reason,
      };
    }),
  };
}
