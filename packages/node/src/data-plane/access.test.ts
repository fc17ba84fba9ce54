/**
 * DataPlaneAccess with real ES256 tokens (jose): a verified token is served from the
 * cache only within its validity, and never across a JWKS rollover — a token signed by
 * a key the new JWKS dropped is refused at once, even though it was accepted (and
 * cached) a moment before.
 */
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { isHsmPoolError } from "@hsmpool/errors";
import {
  BUILT_IN_ROLES,
  BuiltInRoleIds,
  DataActions,
  issuerOf,
  keyScope,
  type RoleAssignment,
  type RoleDefinition,
  type TenantBinding,
  validateTenantBinding,
} from "@hsmpool/pool";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { DataPlaneAccess } from "./access.js";

const TENANT = "0b5e5a3e-1111-4222-8333-944455556666";
const OID = "6c0f7f8e-aaaa-4bbb-8ccc-0123456789ab";
const AUD = "https://pool-test.managedhsm.hsmpool.local";
const NOW = 1_800_000_000_000;

function signer(kid: string): { key: KeyObject; jwk: Record<string, unknown> } {
  const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { key: pair.privateKey, jwk: { ...pair.publicKey.export({ format: "jwk" }), kid } };
}

function bindingOf(...jwks: Record<string, unknown>[]): TenantBinding {
  return validateTenantBinding({ tenantId: TENANT, issuer: issuerOf(TENANT), jwks: { keys: jwks } });
}

function token(key: KeyObject, kid: string, expSeconds: number): Promise<string> {
  return new SignJWT({ oid: OID, tid: TENANT, name: "bob" })
    .setProtectedHeader({ alg: "ES256", kid, typ: "JWT" })
    .setIssuer(issuerOf(TENANT))
    .setAudience(AUD)
    .setSubject(OID)
    .setIssuedAt(NOW / 1000)
    .setNotBefore(NOW / 1000 - 5)
    .setExpirationTime(expSeconds)
    .sign(key);
}

function callWith(t: string): { metadata: grpc.Metadata } {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${t}`);
  return { metadata };
}

const cryptoUser: RoleAssignment = {
  id: "a1",
  scope: "/",
  roleDefinitionId: BuiltInRoleIds.CryptoUser,
  principalId: OID,
};
const definitions: ReadonlyMap<string, RoleDefinition> = new Map(BUILT_IN_ROLES.map((d) => [d.id, d]));

async function code(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => "OK",
    (e: unknown) => (isHsmPoolError(e) ? e.code : `unexpected ${String(e)}`),
  );
}

describe("DataPlaneAccess token cache", () => {
  it("a token of a key dropped by a JWKS rollover is refused after the rollover, though it was cached", async () => {
    const old = signer("old");
    const next = signer("new");
    let tenant = bindingOf(old.jwk, next.jwk);
    let now = NOW;
    const access = new DataPlaneAccess(
      { tenant: () => tenant, assignmentsOf: () => [cryptoUser], definitions: () => definitions },
      AUD,
      () => now,
    );
    const oldToken = await token(old.key, "old", NOW / 1000 + 600);
    const newToken = await token(next.key, "new", NOW / 1000 + 600);
    const sign = (t: string) => access.authorize(callWith(t), DataActions.KeysSign, keyScope("k"));
    // Accepted twice: the second answer comes from the cache.
    expect(await code(sign(oldToken))).toBe("OK");
    expect(await code(sign(oldToken))).toBe("OK");
    expect(await code(sign(newToken))).toBe("OK");

    tenant = bindingOf(next.jwk); // rollover: the old key is gone
    expect(await code(sign(oldToken))).toBe("Unauthenticated");
    expect(await code(sign(newToken))).toBe("OK");

    // A cached token is refused once it has expired (beyond the skew), never served longer.
    now = NOW + 3_600_000;
    expect(await code(sign(newToken))).toBe("Unauthenticated");
  });

  it("authorisation is decided per call on the current assignments (a removed role refuses at once)", async () => {
    const k = signer("k1");
    const tenant = bindingOf(k.jwk);
    let assignments: RoleAssignment[] = [cryptoUser];
    const access = new DataPlaneAccess(
      { tenant: () => tenant, assignmentsOf: () => assignments, definitions: () => definitions },
      AUD,
      () => NOW,
    );
    const t = await token(k.key, "k1", NOW / 1000 + 600);
    const sign = () => access.authorize(callWith(t), DataActions.KeysSign, keyScope("k"));
    expect(await code(sign())).toBe("OK");
    assignments = [];
    expect(await code(sign())).toBe("Forbidden");
  });
});
