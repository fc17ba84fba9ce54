/**
 * Digest signing (the Key Vault REST semantics) against node:crypto: a signature the
 * HSM makes over SHA-x(message) verifies with node:crypto as a signature of the
 * message itself (so nothing is hashed twice), and node:crypto's signatures of a
 * message verify in the HSM given only the digest. Tampering and wrong lengths fail.
 */
import {
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  type JsonWebKey,
  sign as nodeSign,
  verify as nodeVerify,
  randomBytes,
} from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Curve, KeyHandle, Session } from "./index.js";
import { deviceWithSession, expectHsmError, type Fixture, removeTempDirs } from "./testing/fixtures.js";
import { revealKeyForTest } from "./testing/key-material-door.js";

const HASH_OF = { 256: "sha256", 384: "sha384", 512: "sha512" } as const;
let fx: Fixture;
let s: Session;
let rsaKey: KeyHandle;
const ec = new Map<Curve, KeyHandle>();

beforeAll(async () => {
  fx = await deviceWithSession(1);
  s = fx.session;
  rsaKey = await s.generateKey({ kty: "RSA", size: 2048, ops: ["sign", "verify"] });
  for (const crv of ["P-256", "P-256K", "P-384", "P-521"] as const)
    ec.set(crv, await s.generateKey({ kty: "EC", crv, ops: ["sign", "verify"] }));
});

afterAll(async () => {
  await fx.device.close();
  await removeTempDirs();
});

function nodePublicKey(jwk: JsonWebKey) {
  const { kid: _kid, ...plain } = jwk as JsonWebKey & { kid?: string };
  return createPublicKey({
    key: plain.crv === "P-256K" ? { ...plain, crv: "secp256k1" } : plain,
    format: "jwk",
  });
}

const digestOf = (hash: string, message: Uint8Array) => createHash(hash).update(message).digest();

describe("ECDSA over a digest", () => {
  const cases = [
    { alg: "ES256", crv: "P-256", bits: 256 },
    { alg: "ES256K", crv: "P-256K", bits: 256 },
    { alg: "ES384", crv: "P-384", bits: 384 },
    { alg: "ES512", crv: "P-521", bits: 512 },
  ] as const;
  test.each(cases)(
    "$alg: HSM digest signatures verify as message signatures in node:crypto, and back",
    async ({ alg, crv, bits }) => {
      const key = ec.get(crv)!;
      const nodeKey = { key: nodePublicKey(await s.getPublicJwk(key)), dsaEncoding: "ieee-p1363" as const };
      for (let i = 0; i < 8; i++) {
        const message = randomBytes(40 + i);
        const digest = digestOf(HASH_OF[bits], message);
        const signature = await s.signDigest(key, alg, digest);
        expect(nodeVerify(HASH_OF[bits], message, nodeKey, signature)).toBe(true);
        expect(nodeVerify(HASH_OF[bits], digest, nodeKey, signature)).toBe(false); // not hashed twice
        expect(await s.verifyDigest(key, alg, digest, signature)).toBe(true);
        const flipped = Uint8Array.from(signature);
        flipped[3]! ^= 1;
        expect(await s.verifyDigest(key, alg, digest, flipped)).toBe(false);
      }
      const privateKey = createPrivateKey({
        key: revealKeyForTest(s, key).serialized,
        format: "der",
        type: "pkcs8",
      });
      const message = randomBytes(64);
      const theirs = nodeSign(HASH_OF[bits], message, { key: privateKey, dsaEncoding: "ieee-p1363" });
      expect(await s.verifyDigest(key, alg, digestOf(HASH_OF[bits], message), theirs)).toBe(true);
      expect(await s.verifyDigest(key, alg, digestOf(HASH_OF[bits], randomBytes(64)), theirs)).toBe(false);
    },
  );
});

describe("RSA over a digest", () => {
  const cases = (["RS", "PS"] as const).flatMap((kind) =>
    ([256, 384, 512] as const).map((bits) => ({ kind, bits })),
  );
  test.each(cases)("$kind $bits agrees with node:crypto both ways", async ({ kind, bits }) => {
    const alg = `${kind}${bits}`;
    const options = {
      key: nodePublicKey(await s.getPublicJwk(rsaKey)),
      padding: kind === "PS" ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
    };
    const message = randomBytes(100);
    const digest = digestOf(HASH_OF[bits], message);
    const signature = await s.signDigest(rsaKey, alg, digest);
    expect(nodeVerify(HASH_OF[bits], message, options, signature)).toBe(true);
    expect(nodeVerify(HASH_OF[bits], digest, options, signature)).toBe(false);
    expect(await s.verifyDigest(rsaKey, alg, digest, signature)).toBe(true);
    const flipped = Uint8Array.from(signature);
    flipped[10]! ^= 1;
    expect(await s.verifyDigest(rsaKey, alg, digest, flipped)).toBe(false);
    const privateKey = createPrivateKey({
      key: revealKeyForTest(s, rsaKey).serialized,
      format: "der",
      type: "pkcs8",
    });
    const theirs = nodeSign(HASH_OF[bits], message, { ...options, key: privateKey });
    expect(await s.verifyDigest(rsaKey, alg, digest, theirs)).toBe(true);
  });
});

describe("bad digest input", () => {
  test("a digest of the wrong length is BadParameter, naming the expected length", async () => {
    await expectHsmError(s.signDigest(ec.get("P-256")!, "ES256", randomBytes(48)), "BadParameter", /32-byte/);
    await expectHsmError(s.signDigest(rsaKey, "PS512", randomBytes(32)), "BadParameter", /64-byte/);
  });
  test("an algorithm for another key type is BadParameter", async () => {
    await expectHsmError(s.signDigest(ec.get("P-384")!, "ES256", randomBytes(32)), "BadParameter", /P-256/);
    await expectHsmError(s.signDigest(rsaKey, "ES256", randomBytes(32)), "BadParameter");
  });
});
