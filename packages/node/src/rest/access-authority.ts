/**
 * The REST endpoint's token check: the data plane's one authorisation entry point
 * (DataPlaneAccess, docs/identity.md) with the HTTP Authorization header adapted to
 * call metadata, and the challenge naming the pool's tenant authority and resource.
 */
import * as grpc from "@grpc/grpc-js";
import { type DataAction, ISSUER_BASE, type Scope } from "@hsmpool/pool";
import type { DataPlaneAccess } from "../data-plane/access.js";
import { AUTHORIZATION_METADATA } from "../data-plane/access.js";
import type { RestAuthority } from "./rest-endpoint.js";

export function accessAuthority(access: DataPlaneAccess, tenantId: () => string | null): RestAuthority {
  return {
    challenge: () => ({
      // Before the tenant binding is committed there is no tenant to name yet: "organizations", as Entra says.
      authorization: `${ISSUER_BASE}/${tenantId() ?? "organizations"}`,
      resource: access.audience,
    }),
    authorize: async (token, request, authenticated) => {
      const call = callOf(token);
      try {
        if (request.dataAction === null) await access.authenticate(call);
        else await access.authorize(call, request.dataAction as DataAction, request.scope as Scope);
      } finally {
        const principal = access.principalOf(call);
        if (principal) authenticated(principal);
      }
    },
  };
}

/** The REST token as the call metadata DataPlaneAccess reads. */
function callOf(token: string): { metadata: grpc.Metadata } {
  const metadata = new grpc.Metadata();
  metadata.set(AUTHORIZATION_METADATA, `Bearer ${token}`);
  return { metadata };
}
