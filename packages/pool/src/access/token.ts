/**
 * Bearer-token verification, pure apart from the caller's clock reading (`nowMs`):
 * signature against the committed JWKS, issuer, audience, expiry and not-before with a
 * small skew, and an algorithm allow-list (ES256 only), so `alg: none` and an HS256
 * token keyed with the public key are refused before any key is looked at. Every
 * failure is Unauthenticated with a reason a person can act on; none echoes the token.
 */
import { fail, HsmPoolError } from "@hsmpool/errors";
import { createLocalJWKSet, errors, type JWTPayload, jwtVerify } from "jose";
import type { TenantBinding } from "./tenant.js";
import type { Principal } from "./types.js";

export const TOKEN_ALGORITHMS: readonly string[] = Object.freeze(["ES256"]);
/** Allowed clock skew between the tenant and the node, in seconds. */
export const TOKEN_SKEW_SECONDS = 60;
export const MAX_TOKEN_CHARS = 8192;
const OID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface VerifiedToken {
  readonly principal: Principal;
  readonly expMs: number;
  readonly nbfMs: number;
}

export type JwksResolver = ReturnType<typeof createLocalJWKSet>;

/** Imports the tenant's keys once; reuse the resolver for every token of that binding. */
export function jwksResolver(binding: TenantBinding): JwksResolver {
  return createLocalJWKSet({ keys: binding.jwks.keys.map((k) => ({ ...k })) });
}

const unauthenticated = (reason: string): HsmPoolError =>
  new HsmPoolError("Unauthenticated", `bearer token refused: ${reason}`);

function reasonOf(e: unknown): string {
  if (e instanceof errors.JWTExpired) return "it has expired";
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === "nbf") return "it is not valid yet (nbf)";
    if (e.claim === "iss") return "it was issued by another tenant (iss)";
    if (e.claim === "aud") return "it is for another resource (aud)";
    return `claim ${e.claim} is invalid (${e.reason})`;
  }
  if (e instanceof errors.JOSEAlgNotAllowed)
    return `its algorithm is not allowed (only ${TOKEN_ALGORITHMS.join(", ")})`;
  if (e instanceof errors.JWSSignatureVerificationFailed) return "its signature does not verify";
  if (e instanceof errors.JWKSNoMatchingKey)
    return "it is signed by a key the pool's tenant does not publish";
  if (e instanceof errors.JOSEError) return "it is not a well-formed signed JWT";
  return "it could not be verified";
}

export async function verifyAccessToken(
  token: string,
  binding: TenantBinding,
  resolver: JwksResolver,
  audience: string,
  nowMs: number,
): Promise<VerifiedToken> {
  if (token.length === 0) throw unauthenticated("none was sent");
  if (token.length > MAX_TOKEN_CHARS)
    throw unauthenticated(`it is longer than ${MAX_TOKEN_CHARS} characters`);
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, resolver, {
      algorithms: [...TOKEN_ALGORITHMS],
      issuer: binding.issuer,
      audience,
      currentDate: new Date(nowMs),
      clockTolerance: TOKEN_SKEW_SECONDS,
      requiredClaims: ["exp", "nbf", "oid", "tid"],
    }));
  } catch (e) {
    throw unauthenticated(reasonOf(e));
  }
  const oid = payload.oid;
  if (typeof oid !== "string" || !OID.test(oid)) throw unauthenticated("its oid claim is not an object id");
  if (payload.tid !== binding.tenantId) throw unauthenticated("it was issued by another tenant (tid)");
  const name = typeof payload.name === "string" && payload.name.length <= 128 ? payload.name : oid;
  return Object.freeze({
    principal: Object.freeze({ oid, name, tenantId: binding.tenantId }),
    expMs: (payload.exp ?? fail("Unauthenticated", "bearer token refused: no exp")) * 1000,
    nbfMs: (payload.nbf ?? 0) * 1000,
  });
}
