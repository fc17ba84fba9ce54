/**
 * Access benchmark (issue 14): what authorising one data-plane request costs on one core —
 * bearer-token verification (Authenticator) plus the RBAC decision (isAllowed) — as a
 * ratio to ES256 signing (node:crypto) measured in the same run, interleaved. Goal >= 1.0:
 * authorising a request costs less than the signature itself. Two paths, both reported:
 * cached (a token the member already verified: the steady state of a client reusing its
 * token) and first-time (every token new: a full ES256 signature verification).
 * Run: `npm run bench -- access`.
 */
import { generateKeyPairSync, randomUUID, sign } from "node:crypto";
import { SignJWT } from "jose";
import { Authenticator } from "../access/authenticator.js";
import { BUILT_IN_ROLES, BuiltInRoleIds } from "../access/builtin-roles.js";
import { DataActions } from "../access/data-actions.js";
import { isAllowed } from "../access/evaluate.js";
import { keyScope } from "../access/scope.js";
import { issuerOf, poolResourceUri, type TenantBinding } from "../access/tenant.js";
import type { RoleAssignment } from "../access/types.js";

const MEASURE_MS = 1_000;
const ROUNDS = 3;
/** Distinct tokens for the first-time path (minted before timing; the customer's side, not measured). */
const FRESH_TOKENS = 4_000;
/** Assignments of other principals the RBAC decision walks past (a realistically busy pool). */
const OTHER_ASSIGNMENTS = 200;

async function opsPerSecond(fn: () => unknown): Promise<number> {
  for (let i = 0; i < 50; i++) await fn();
  let ops = 0;
  const start = performance.now();
  while (performance.now() - start < MEASURE_MS) {
    await fn();
    ops++;
  }
  return ops / ((performance.now() - start) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const tenantId = randomUUID();
const tenantKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
const jwk = tenantKey.publicKey.export({ format: "jwk" });
const binding: TenantBinding = {
  tenantId,
  issuer: issuerOf(tenantId),
  jwks: {
    keys: [{ kty: "EC", crv: "P-256", x: jwk.x as string, y: jwk.y as string, kid: "k1", alg: "ES256" }],
  },
};
const audience = poolResourceUri("bench-pool");
const oid = randomUUID();
const nowMs = Date.now();

const mint = () =>
  new SignJWT({ oid, tid: tenantId, name: "workload" })
    .setProtectedHeader({ alg: "ES256", kid: "k1" })
    .setIssuer(binding.issuer)
    .setAudience(audience)
    .setIssuedAt(Math.floor(nowMs / 1000))
    .setNotBefore(Math.floor(nowMs / 1000) - 60)
    .setExpirationTime(Math.floor(nowMs / 1000) + 3600)
    .setJti(randomUUID())
    .sign(tenantKey.privateKey);

const definitions = new Map(BUILT_IN_ROLES.map((r) => [r.id, r]));
const assignments: RoleAssignment[] = [
  ...Array.from({ length: OTHER_ASSIGNMENTS }, () => ({
    id: randomUUID(),
    scope: "/",
    roleDefinitionId: BuiltInRoleIds.CryptoAuditor,
    principalId: randomUUID(),
  })),
  { id: randomUUID(), scope: "/", roleDefinitionId: BuiltInRoleIds.CryptoUser, principalId: oid },
];

const cachedToken = await mint();
const freshTokens = await Promise.all(Array.from({ length: FRESH_TOKENS }, mint));
const cachedAuth = new Authenticator(binding, audience);
let fresh = { auth: new Authenticator(binding, audience), next: 0 };

async function authorise(auth: Authenticator, token: string): Promise<void> {
  const principal = await auth.authenticate(token, nowMs);
  if (!isAllowed(assignments, definitions, principal.oid, DataActions.KeysSign, keyScope("k1")))
    throw new Error("bench setup: the workload principal must be allowed to sign");
}

const signingKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
const digestInput = new Uint8Array(32).fill(7);
const es256Sign = () => sign("sha256", digestInput, { key: signingKey, dsaEncoding: "ieee-p1363" });

const cachedRatios: number[] = [];
const freshRatios: number[] = [];
let last = { sign: 0, cached: 0, fresh: 0 };
for (let round = 0; round < ROUNDS; round++) {
  const signOps = await opsPerSecond(es256Sign);
  const cachedOps = await opsPerSecond(() => authorise(cachedAuth, cachedToken));
  const freshOps = await opsPerSecond(() => {
    // A new Authenticator once the distinct tokens run out keeps every verify a cache miss.
    if (fresh.next === freshTokens.length) fresh = { auth: new Authenticator(binding, audience), next: 0 };
    return authorise(fresh.auth, freshTokens[fresh.next++] as string);
  });
  cachedRatios.push(cachedOps / signOps);
  freshRatios.push(freshOps / signOps);
  last = { sign: signOps, cached: cachedOps, fresh: freshOps };
}

const line = (name: string, ops: number, ratio?: number) =>
  console.log(
    `${name.padEnd(44)} ${Math.round(ops).toString().padStart(9)} ops/s${ratio === undefined ? "" : `   ratio to ES256 sign ${ratio.toFixed(2)} (median of ${ROUNDS})`}`,
  );
line("ES256 sign (node:crypto, baseline)", last.sign);
line("authorise: cached token + RBAC", last.cached, median(cachedRatios));
line("authorise: first-time token verify + RBAC", last.fresh, median(freshRatios));
console.log(
  "  goal >= 1.0; the first-time path is a full ES256 verification, which costs more than a signature",
);
// Figure lines for `npm run bench -- --json` (scripts/bench.mjs).
for (const [name, value] of [
  ["access_cached_ratio_to_es256_sign", median(cachedRatios)],
  ["access_uncached_ratio_to_es256_sign", median(freshRatios)],
] as const) {
  console.log(
    `bench-figure ${JSON.stringify({ name, value: Number(value.toFixed(3)), unit: "x", goal: ">= 1", met: value >= 1 })}`,
  );
}
