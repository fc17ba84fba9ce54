/**
 * A customer tenant for node e2e tests: an ES256 signing key, a principal `admin` holding
 * Managed HSM Administrator, Crypto User and Crypto Officer at `/` (what `hsmpool up` gives by default),
 * and gRPC call credentials that put `authorization: Bearer <token>` on every call.
 */
import { generateKeyPairSync, type KeyObject, randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { type AccessOp, BuiltInRoleIds, issuerOf, validateAccessOp } from "@hsmpool/pool";
import { SignJWT } from "jose";

export class TestTenant {
  readonly tenantId = randomUUID();
  readonly adminOid = randomUUID();
  private readonly key: KeyObject;
  private readonly publicJwk: Record<string, unknown>;

  constructor() {
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    this.key = pair.privateKey;
    this.publicJwk = { ...pair.publicKey.export({ format: "jwk" }), kid: "test-key" };
  }

  /** The binding a pool commits at creation (the node config's `identity`). */
  bindingRequest(): Extract<AccessOp, { op: "bindTenant" }> {
    const op = validateAccessOp({
      op: "bindTenant",
      tenant: { tenantId: this.tenantId, issuer: issuerOf(this.tenantId), jwks: { keys: [this.publicJwk] } },
      assignments: [
        BuiltInRoleIds.Administrator,
        BuiltInRoleIds.CryptoUser,
        BuiltInRoleIds.CryptoOfficer,
      ].map((roleDefinitionId) => ({
        id: randomUUID(),
        scope: "/",
        roleDefinitionId,
        principalId: this.adminOid,
      })),
    });
    if (op.op !== "bindTenant") throw new Error("unreachable");
    return op;
  }

  /** `lifetimeSeconds` may be negative: an expired token nodes still take within their clock skew. */
  async token(
    audience: string,
    principal: { oid: string; name: string } = { oid: this.adminOid, name: "admin" },
    lifetimeSeconds = 600,
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ oid: principal.oid, tid: this.tenantId, name: principal.name })
      .setProtectedHeader({ alg: "ES256", kid: "test-key", typ: "JWT" })
      .setIssuer(issuerOf(this.tenantId))
      .setAudience(audience)
      .setSubject(principal.oid)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + lifetimeSeconds)
      .sign(this.key);
  }

  /** Call credentials for the admin (or another) principal (a token minted once per 5 minutes). */
  callCredentials(audience: string, principal?: { oid: string; name: string }): grpc.CallCredentials {
    let cached: { token: string; atMs: number } | null = null;
    return grpc.credentials.createFromMetadataGenerator((_params, callback) => {
      const fresh =
        cached !== null && Date.now() - cached.atMs < 300_000
          ? Promise.resolve(cached.token)
          : this.token(audience, principal);
      fresh.then(
        (token) => {
          cached = { token, atMs: cached?.token === token ? cached.atMs : Date.now() };
          const metadata = new grpc.Metadata();
          metadata.set("authorization", `Bearer ${token}`);
          callback(null, metadata);
        },
        (e: unknown) => callback(e as Error),
      );
    });
  }
}
