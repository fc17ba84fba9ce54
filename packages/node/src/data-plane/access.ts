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
  Authenticator,
  type DataAction,
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
  assignments(): Iterable<RoleAssignment>;
  definitions(): ReadonlyMap<string, RoleDefinition>;
}

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

/**
 * Stand-in principal while `enforcing` is false. TRANSITIONAL (identity contract step 1):
 * the tenant binding is not committed through Raft yet, so nodes cannot verify tokens;
 * the next identity step commits it and removes this and the flag.
 */
const UNENFORCED: Principal = Object.freeze({
  oid: "00000000-0000-0000-0000-000000000000",
  name: "(identity not enforced yet)",
  tenantId: "00000000-0000-0000-0000-000000000000",
});

export class DataPlaneAccess {
  private authenticator: Authenticator | null = null;

  constructor(
    private readonly view: AccessView,
    /** This pool's resource URI: the only audience its tokens may carry. */
    readonly audience: string,
    private readonly now: () => number,
    private readonly enforcing = true,
  ) {}

  /** Verifies the token (Unauthenticated) and returns who sent it. */
  async authenticate(call: CallWithMetadata): Promise<Principal> {
    const token = bearerTokenOf(call);
    return (await this.authenticatorFor()).authenticate(token, this.now());
  }

  /** The entry point every data-plane handler calls first. */
  async authorize(call: CallWithMetadata, dataAction: DataAction, scope: Scope): Promise<Principal> {
    if (!this.enforcing) return UNENFORCED;
    const principal = await this.authenticate(call);
    if (!isAllowed(this.view.assignments(), this.view.definitions(), principal.oid, dataAction, scope)) {
      throw new HsmPoolError(
        "Forbidden",
        `${principal.name} (${principal.oid}) is not allowed ${dataAction} at scope ${scope}: no role assignment grants it (deny by default)`,
        { principalId: principal.oid, dataAction, scope },
      );
    }
    return principal;
  }

  private async authenticatorFor(): Promise<Authenticator> {
    const tenant = this.view.tenant();
    if (tenant === null) {
      throw new HsmPoolError(
        "Unauthenticated",
        "this pool is not bound to an identity tenant yet (its tenant binding is not committed); retry shortly",
      );
    }
    // A new committed binding (JWKS rollover) replaces the authenticator and its cache.
    if (this.authenticator?.binding !== tenant) this.authenticator = new Authenticator(tenant, this.audience);
    return this.authenticator;
  }
}
