/**
 * Shamir's secret sharing over GF(2^8) through `shamir-secret-sharing` (audited, no
 * dependencies). Each share is the secret's length plus one byte (its x coordinate).
 * Shamir cannot tell a wrong reconstruction from a right one: callers check the result
 * (the security domain's key opens an AES-GCM payload or nothing).
 */
import { fail } from "@hsmpool/errors";
import { combine, split } from "shamir-secret-sharing";

export const MIN_SHARES = 3;
export const MAX_SHARES = 10;
export const MIN_QUORUM = 2;

export function requireQuorum(quorum: unknown, shares: number): number {
  if (!Number.isInteger(quorum) || (quorum as number) < MIN_QUORUM || (quorum as number) > shares) {
    fail(
      "BadParameter",
      `quorum must be an integer from ${MIN_QUORUM} to ${shares} (the number of certificates)`,
    );
  }
  return quorum as number;
}

export async function splitSecret(secret: Uint8Array, shares: number, quorum: number): Promise<Uint8Array[]> {
  if (shares < MIN_SHARES || shares > MAX_SHARES)
    fail("BadParameter", `a security domain needs ${MIN_SHARES} to ${MAX_SHARES} shares, not ${shares}`);
  requireQuorum(quorum, shares);
  // The library checks `instanceof Uint8Array` against its own realm: hand it plain copies.
  return split(Uint8Array.from(secret), shares, quorum);
}

export async function combineShares(shares: readonly Uint8Array[]): Promise<Uint8Array> {
  if (shares.length < MIN_QUORUM) fail("BadParameter", `at least ${MIN_QUORUM} shares are needed`);
  return combine(shares.map((s) => Uint8Array.from(s)));
}
