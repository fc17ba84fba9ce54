/** Token refusals (each must be Unauthenticated) and the flipped-byte property, with real ES256 tokens from jose. */
import { createHmac, generateKeyPairSync, type KeyObject } from "node:crypto";
import { isHsmPoolError } from "@hsmpool/errors";
import fc from "fast-check";
import { SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { Authenticator } from "./authenticator.js";
import { issuerOf, type TenantBinding, validateTenantBinding } from "./tenant.js";
import { jwksResolver, verifyAccessToken } from "./token.js";

const TENANT = "0b5e5a3e-1111-4222-8333-944455556666";
const OTHER_TENANT = "0b5e5a3e-1111-4222-8333-944455557777";
const OID = "6c0f7f8e-aaaa-4bbb-8ccc-0123456789ab";
const AUD = "https://pool-test.managedhsm.hsmpool.local";
const NOW = 1_800_000_000_000;
const sec = (ms: number) => Math.floor(ms / 1000);

let key: KeyObject;
let binding: TenantBinding;
let publicJwk: Record<string, unknown>;

beforeAll(() => {
  const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
  key = pair.privateKey;
  publicJwk = { ...pair.publicKey.export({ format: "jwk" }), kid: "k1" };
  binding = validateTenantBinding({
    tenantId: TENANT,
    issuer: issuerOf(TENANT),
    jwks: { keys: [publicJwk] },
  });
});

interface Shape {
  iss?: string;
  aud?: string;
  tid?: string;
  nbf?: number;
  exp?: number;
  kid?: string;
  signer?: KeyObject;
}

function token(s: Shape = {}): Promise<string> {
  return new SignJWT({ oid: OID, tid: s.tid ?? TENANT, name: "bob" })
    .setProtectedHeader({ alg: "ES256", kid: s.kid ?? "k1", typ: "JWT" })
    .setIssuer(s.iss ?? issuerOf(TENANT))
    .setAudience(s.aud ?? AUD)
    .setSubject(OID)
    .setIssuedAt(sec(NOW))
    .setNotBefore(s.nbf ?? sec(NOW) - 5)
    .setExpirationTime(s.exp ?? sec(NOW) + 600)
    .sign(s.signer ?? key);
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

async function refusal(t: string): Promise<string> {
  const e = await verifyAccessToken(t, binding, jwksResolver(binding), AUD, NOW).then(
    () => null,
    (e: unknown) => e,
  );
  expect(isHsmPoolError(e, "Unauthenticated"), `accepted or wrong error: ${String(e)}`).toBe(true);
  return (e as Error).message;
}

describe("bearer token verification", () => {
  it("accepts a good token and names its principal", async () => {
    const v = await verifyAccessToken(await token(), binding, jwksResolver(binding), AUD, NOW);
    expect(v.principal).toEqual({ oid: OID, name: "bob", tenantId: TENANT });
  });

  it("refuses an expired token (beyond the skew)", async () => {
    expect(await refusal(await token({ exp: sec(NOW) - 120 }))).toMatch(/expired/);
  });

  it("refuses a token not valid yet", async () => {
    expect(await refusal(await token({ nbf: sec(NOW) + 300 }))).toMatch(/not valid yet/);
  });

  it("refuses a wrong audience (another pool)", async () => {
    expect(await refusal(await token({ aud: "https://other.managedhsm.hsmpool.local" }))).toMatch(/aud/);
  });

  it("refuses a wrong issuer and a foreign tenant's key", async () => {
    expect(await refusal(await token({ iss: issuerOf(OTHER_TENANT) }))).toMatch(/iss/);
    const foreign = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    expect(await refusal(await token({ signer: foreign }))).toMatch(/signature/);
    expect(await refusal(await token({ signer: foreign, kid: "zz" }))).toMatch(/does not publish/);
  });

  it("refuses alg none", async () => {
    const claims = {
      iss: issuerOf(TENANT),
      aud: AUD,
      oid: OID,
      tid: TENANT,
      nbf: sec(NOW),
      exp: sec(NOW) + 600,
    };
    expect(await refusal(`${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`)).toMatch(
      /algorithm|well-formed/,
    );
  });

  it("refuses HS256 keyed with the tenant's public key", async () => {
    const claims = {
      iss: issuerOf(TENANT),
      aud: AUD,
      oid: OID,
      tid: TENANT,
      nbf: sec(NOW),
      exp: sec(NOW) + 600,
    };
    const input = `${b64({ alg: "HS256", typ: "JWT", kid: "k1" })}.${b64(claims)}`;
    for (const secret of [JSON.stringify(publicJwk), String(publicJwk.x)]) {
      const mac = createHmac("sha256", secret).update(input).digest("base64url");
      expect(await refusal(`${input}.${mac}`)).toMatch(/algorithm/);
    }
  });

  it("a flipped byte anywhere in a token is refused (also after the good token was cached)", async () => {
    const good = await token();
    const auth = new Authenticator(binding, AUD);
    await auth.authenticate(good, NOW);
    await fc.assert(
      fc.asyncProperty(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 }), async (i, x) => {
        const flipped = String.fromCharCode(good.charCodeAt(i) ^ x);
        const bad = good.slice(0, i) + flipped + good.slice(i + 1);
        fc.pre(bad !== good);
        const e = await auth.authenticate(bad, NOW).then(
          (p) => p,
          (e: unknown) => e,
        );
        // A flip inside base64url padding bits can decode to the same bytes; then it is the same token.
        if (!isHsmPoolError(e)) {
          const decode = (t: string) => t.split(".").map((p) => Buffer.from(p, "base64url").toString("hex"));
          expect(decode(bad)).toEqual(decode(good));
          return;
        }
        expect(e.code).toBe("Unauthenticated");
      }),
      { numRuns: 300 },
    );
  });

  it("a cached token still expires", async () => {
    const t = await token({ exp: sec(NOW) + 10 });
    const auth = new Authenticator(binding, AUD);
    await auth.authenticate(t, NOW);
    await expect(auth.authenticate(t, NOW + 120_000)).rejects.toMatchObject({ code: "Unauthenticated" });
  });

  it("a JWKS with private material is refused as a binding", () => {
    const priv = {
      ...generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" }),
      kid: "p",
    };
    expect(() =>
      validateTenantBinding({ tenantId: TENANT, issuer: issuerOf(TENANT), jwks: { keys: [priv] } }),
    ).toThrow(/private/);
  });
});
