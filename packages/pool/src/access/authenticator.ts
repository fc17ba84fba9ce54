/**
 * Token → principal for one committed tenant binding, with a bounded cache of tokens
 * already verified. The cache is keyed by the whole token string, so any changed byte
 * misses it and goes through full verification; a hit still re-checks exp/nbf against
 * `nowMs`. A new binding (JWKS rollover) needs a new Authenticator: nothing verified
 * under the old keys survives it.
 */
import { HsmPoolError } from "@hsmpool/errors";
import type { TenantBinding } from "./tenant.js";
import {
  type JwksResolver,
  jwksResolver,
  TOKEN_SKEW_SECONDS,
  type VerifiedToken,
  verifyAccessToken,
} from "./token.js";
import type { Principal } from "./types.js";

export const DEFAULT_TOKEN_CACHE_ENTRIES = 4096;

export class Authenticator {
  private readonly resolver: JwksResolver;
  private readonly cache = new Map<string, VerifiedToken>();

  constructor(
    readonly binding: TenantBinding,
    readonly audience: string,
    private readonly maxEntries = DEFAULT_TOKEN_CACHE_ENTRIES,
  ) {
    this.resolver = jwksResolver(binding);
  }

  async authenticate(token: string, nowMs: number): Promise<Principal> {
    const hit = this.cache.get(token);
    if (hit !== undefined) {
      const skewMs = TOKEN_SKEW_SECONDS * 1000;
      if (nowMs < hit.expMs + skewMs && nowMs >= hit.nbfMs - skewMs) return hit.principal;
      this.cache.delete(token);
      throw new HsmPoolError(
        "Unauthenticated",
        nowMs >= hit.expMs + skewMs
          ? "bearer token refused: it has expired"
          : "bearer token refused: it is not valid yet (nbf)",
      );
    }
    const verified = await verifyAccessToken(token, this.binding, this.resolver, this.audience, nowMs);
    if (this.cache.size >= this.maxEntries) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(token, verified);
    return verified.principal;
  }
}
