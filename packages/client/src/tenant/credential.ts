/**
 * Token providers shaped like Azure's `TokenCredential` (`getToken(scopes)`), so the
 * same object serves this SDK and the Azure SDK against the REST facade. A scope is the
 * pool's resource URI + "/.default"; the token's audience is that resource URI.
 */

import { fail } from "@hsmpool/errors";
import { SignJWT } from "jose";
import { DEFAULT_PRINCIPAL, DEFAULT_TENANT_DIR, TenantDirectory } from "./tenant-dir.js";

export interface AccessToken {
  token: string;
  /** Unix ms. */
  expiresOnTimestamp: number;
}

export interface GetTokenOptions {
  abortSignal?: AbortSignal;
  tenantId?: string;
}

export interface TokenCredential {
  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null>;
}

/** Short-lived, as real access tokens are; clients refresh them well before expiry. */
export const TOKEN_LIFETIME_SECONDS = 600;
const REFRESH_MARGIN_MS = 120_000;

export function resourceOfScopes(scopes: string | string[]): string {
  const list = Array.isArray(scopes) ? scopes : [scopes];
  if (list.length !== 1 || typeof list[0] !== "string" || list[0] === "") {
    fail("BadParameter", "getToken needs exactly one scope: <resource URI>/.default");
  }
  const scope = list[0];
  return scope.endsWith("/.default") ? scope.slice(0, -"/.default".length) : scope;
}

/** Mints a signed token for one principal of a tenant directory. */
export async function mintToken(
  tenant: TenantDirectory,
  principalName: string,
  audience: string,
  opts: { nowMs?: number; lifetimeSeconds?: number; notBeforeSeconds?: number } = {},
): Promise<AccessToken> {
  const principal = tenant.principal(principalName);
  const now = Math.floor((opts.nowMs ?? Date.now()) / 1000);
  const exp = now + (opts.lifetimeSeconds ?? TOKEN_LIFETIME_SECONDS);
  const token = await new SignJWT({ oid: principal.oid, tid: tenant.tenantId, name: principal.name })
    .setProtectedHeader({ alg: "ES256", kid: tenant.activeKid, typ: "JWT" })
    .setIssuer(tenant.issuer)
    .setAudience(audience)
    .setSubject(principal.oid)
    .setIssuedAt(now)
    .setNotBefore(opts.notBeforeSeconds ?? now)
    .setExpirationTime(exp)
    .sign(await tenant.signingKey());
  return { token, expiresOnTimestamp: exp * 1000 };
}

/** A principal of a tenant directory; caches its token until shortly before expiry. */
export class TenantDirectoryCredential implements TokenCredential {
  private tenant: Promise<TenantDirectory> | null = null;
  private readonly cached = new Map<string, AccessToken>();

  constructor(
    readonly tenantDir: string,
    readonly principalName: string,
  ) {}

  /** `HSMPOOL_TENANT` / `HSMPOOL_PRINCIPAL`, else `.hsmpool/tenant` / `admin`. */
  static fromEnvironment(
    overrides: { tenantDir?: string; principal?: string } = {},
  ): TenantDirectoryCredential {
    const pick = (flag: string | undefined, env: string | undefined, fallback: string) =>
      flag !== undefined && flag !== "" ? flag : env !== undefined && env !== "" ? env : fallback;
    return new TenantDirectoryCredential(
      pick(overrides.tenantDir, process.env.HSMPOOL_TENANT, DEFAULT_TENANT_DIR),
      pick(overrides.principal, process.env.HSMPOOL_PRINCIPAL, DEFAULT_PRINCIPAL),
    );
  }

  async getToken(scopes: string | string[]): Promise<AccessToken> {
    const audience = resourceOfScopes(scopes);
    const hit = this.cached.get(audience);
    if (hit && hit.expiresOnTimestamp - Date.now() > REFRESH_MARGIN_MS) return hit;
    this.tenant ??= TenantDirectory.open(this.tenantDir);
    const fresh = await mintToken(await this.tenant, this.principalName, audience);
    this.cached.set(audience, fresh);
    return fresh;
  }
}
