/**
 * The customer's identity tenant as the pool knows it: its id, issuer and public JWKS.
 * Committed through Raft at creation (and at each JWKS rollover), so the host cannot
 * swap it. Public data only: a JWK with a private member is refused.
 */
import { bad } from "../validate.js";

export interface TenantJwk {
  readonly kty: "EC";
  readonly crv: "P-256";
  readonly x: string;
  readonly y: string;
  readonly kid: string;
  readonly alg?: "ES256";
  readonly use?: "sig";
}

export interface TenantBinding {
  /** A GUID-shaped id (the Entra tenant id analogue). */
  readonly tenantId: string;
  /** The token issuer, `https://login.hsmpool.local/<tenantId>/v2.0`. */
  readonly issuer: string;
  readonly jwks: { readonly keys: readonly TenantJwk[] };
}

export const ISSUER_BASE = "https://login.hsmpool.local";
const TENANT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const B64URL = /^[A-Za-z0-9_-]{1,200}$/;
const KID = /^[A-Za-z0-9._-]{1,128}$/;
export const MAX_JWKS_KEYS = 8;

export function issuerOf(tenantId: string): string {
  return `${ISSUER_BASE}/${tenantId}/v2.0`;
}

/** The audience a pool accepts: its resource URI (what a client asks a token for, + "/.default"). */
export function poolResourceUri(poolId: string): string {
  return `https://${poolId.toLowerCase()}.managedhsm.hsmpool.local`;
}

export function requireTenantId(value: unknown, field = "tenantId"): string {
  if (typeof value !== "string" || !TENANT_ID.test(value)) bad(field, `${field} must be a lowercase GUID`);
  return value as string;
}

export function validateJwks(input: unknown, field = "jwks"): { keys: TenantJwk[] } {
  const keys = (input as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_JWKS_KEYS) {
    bad(field, `${field} must be { keys: [...] } with 1..${MAX_JWKS_KEYS} public keys`);
  }
  const out = (keys as unknown[]).map((k, i) => validateJwk(k, `${field}.keys[${i}]`));
  if (new Set(out.map((k) => k.kid)).size !== out.length) bad(field, `${field} lists a kid twice`);
  return { keys: out };
}

function validateJwk(input: unknown, field: string): TenantJwk {
  if (typeof input !== "object" || input === null) return bad(field, `${field} must be a JWK object`);
  const k = input as Record<string, unknown>;
  if ("d" in k || "p" in k || "k" in k) bad(field, `${field} holds private key material; a JWKS is public`);
  if (k.kty !== "EC" || k.crv !== "P-256") bad(field, `${field} must be an EC P-256 key (ES256)`);
  for (const m of ["x", "y"] as const) {
    if (typeof k[m] !== "string" || !B64URL.test(k[m] as string))
      bad(field, `${field}.${m} must be base64url`);
  }
  if (typeof k.kid !== "string" || !KID.test(k.kid))
    bad(field, `${field}.kid must be 1..128 of [A-Za-z0-9._-]`);
  return Object.freeze({
    kty: "EC",
    crv: "P-256",
    x: k.x as string,
    y: k.y as string,
    kid: k.kid as string,
    alg: "ES256",
    use: "sig",
  });
}

export function validateTenantBinding(input: unknown, field = "tenant"): TenantBinding {
  if (typeof input !== "object" || input === null) return bad(field, `${field} must be an object`);
  const t = input as Record<string, unknown>;
  const tenantId = requireTenantId(t.tenantId, `${field}.tenantId`);
  if (t.issuer !== issuerOf(tenantId))
    bad(`${field}.issuer`, `${field}.issuer must be ${issuerOf(tenantId)}`);
  return Object.freeze({ tenantId, issuer: issuerOf(tenantId), jwks: validateJwks(t.jwks, `${field}.jwks`) });
}
