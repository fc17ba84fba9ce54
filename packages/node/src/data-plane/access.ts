/**
 * The data plane's one authorisation entry point. Every handler calls
 * `authorize(call, dataAction, scope)` before doing anything else: it reads the bearer
 * token from the call's `authorization` metadata, verifies it against the tenant
 * binding committed in the pool's log (Unauthenticated on any failure), then evaluates
 * local RBAC on this member's replicated state (Forbidden unless a role assignment
 * grants `dataAction` at a scope covering `scope`). The TLS client certificate plays
 * no part: it is transport, never authority (docs/identity.md).
 */
import type * as grpc from "@grpc/grpc-js";
import { HsmPoolError } from "@hsmpool/errors";
import {
  type AccessOp,
  Authenticator,
  type DataAction,
  DataActions,
  isAllowed,
  type Principal,
  type RoleAssignment,
  type RoleDefinition,
  type Scope,
  type TenantBinding,
} from "@hsmpool/pool";

/** gRPC metadata key carrying `Bearer <jwt>` (HTTP: the Authorization header). */
export const AUTHORIZATION_METADATA = "authorization";

export interface AccessView {
  /** The committed tenant binding; null until the pool's log holds one. */
  tenant(): TenantBinding | null;
  /** The principal's role assignments (all scopes). */
  assignmentsOf(principalId: string): Iterable<RoleAssignment>;
  definitions(): ReadonlyMap<string, RoleDefinition>;
  /**
   * A recovering pool has no committed tenant until its security domain is uploaded: the
   * launch config's binding request (the real service's initial administrators from the
   * create call), honoured for RECOVERY_ACTIONS only and only while nothing is committed.
   * Safe to take from the operator's config: an upload needs a blob made with a quorum of
   * the customer's private keys, and it binds the tenant the SD carries, not this one.
   */
  recoveryBinding?(): Extract<AccessOp, { op: "bindTenant" }> | null;
}

/** What a provisional (recovery) binding may authorise: the recovery exchange, nothing else. */
export const RECOVERY_ACTIONS: ReadonlySet<DataAction> = new Set([
  DataActions.SecurityDomainTransferKey,
  DataActions.SecurityDomainUpload,
  DataActions.SecurityDomainUploadStatus,
]);

/** Anything with request metadata: a grpc-js server call, or a REST request adapted to it. */
export interface CallWithMetadata {
  readonly metadata: grpc.Metadata;
}

export function bearerTokenOf(call: CallWithMetadata): string {
  const values = call.metadata.get(AUTHORIZATION_METADATA);
  if (values.length === 0) {
    throw new HsmPoolError("Unauthenticated", "no bearer token: send `authorization: Bearer <token>`");
  }
  if (values.length > 1)
    throw new HsmPoolError("Unauthenticated", "more than one authorization value was sent");
  const value = String(values[0]);
  const m = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(value);
  if (!m?.[1]) throw new HsmPoolError("Unauthenticated", "the authorization value is not `Bearer <token>`");
  return m[1];
}

export class DataPlaneAccess {
  private authenticator: Authenticator | null = null;
  /** Who each call's token named (for its audit record), once verified. */
  private readonly principals = new WeakMap<object, Principal>();

  constructor(
    private readonly view: AccessView,
    /** This pool's resource URI: the only audience its tokens may carry. */
    readonly audience: string,
    private readonly now: () => number,
  ) {}

  /** Verifies the token (Unauthenticated) and returns who sent it. */
  async authenticate(call: CallWithMetadata): Promise<Principal> {
    return this.authenticateWith(call, () => this.committedTenant());
  }

  /** The principal a call authenticated as; undefined if it never did. */
  principalOf(call: object): Principal | undefined {
    return this.principals.get(call);
  }

  /** The entry point every data-plane handler calls first. */
  async authorize(call: CallWithMetadata, dataAction: DataAction, scope: Scope): Promise<Principal> {
    const provisional =
      this.view.tenant() === null && RECOVERY_ACTIONS.has(dataAction)
        ? (this.view.recoveryBinding?.() ?? null)
        : null;
    const principal = await this.authenticateWith(call, () => provisional?.tenant ?? this.committedTenant());
    const mine = provisional
      ? provisional.assignments.filter((a) => a.principalId === principal.oid)
      : this.view.assignmentsOf(principal.oid);
    if (!isAllowed(mine, this.view.definitions(), principal.oid, dataAction, scope)) {
      throw new HsmPoolError(
        "Forbidden",
        `${principal.name} (${principal.oid}) is not allowed ${dataAction} at scope ${scope}: no role assignment grants it (deny by default)`,
        { principalId: principal.oid, dataAction, scope },
      );
    }
    return principal;
  }

  private async authenticateWith(call: CallWithMetadata, binding: () => TenantBinding): Promise<Principal> {
    const token = bearerTokenOf(call);
    const tenant = binding();
    // A new binding (JWKS rollover, or the committed one after a recovery) replaces the authenticator and its cache.
    if (this.authenticator?.binding !== tenant) this.authenticator = new Authenticator(tenant, this.audience);
    const principal = await this.authenticator.authenticate(token, this.now());
    this.principals.set(call, principal);
    return principal;
  }

  private committedTenant(): TenantBinding {
    const tenant = this.view.tenant();
    if (tenant === null) {
      // Creation is still under way (the binding commits right after Genesis): retryable.
      throw new HsmPoolError(
        "ServiceUnavailable",
        "this pool is not bound to its customer's identity tenant yet (the binding commits right after creation); retry shortly",
        { retryable: true },
      );
    }
    return tenant;
  }
}
