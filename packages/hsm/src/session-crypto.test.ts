/**
 * Every algorithm / key-size pair of the managed-HSM API, checked against a second
 * implementation: signatures verify with node:crypto (from the exported JWK) and, for
 * EC, with @noble/curves; RSA ciphertexts made by node:crypto decrypt in the HSM; AES
 * outputs decrypt with node:crypto given the key (revealed through the test-only door).
 */
import {
  constants,
  createDecipheriv,
  createPublicKey,
  type JsonWebKey,
  verify as nodeVerify,
  publicEncrypt,
  randomBytes,
} from "node:crypto";
import { p256, p384, p521 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Curve, KeyHandle, Session } from "./index.js";
import { deviceWithSession, expectHsmError, type Fixture, removeTempDirs, text } from "./testing/fixtures.js";
import { revealKeyForTest } from "./testing/key-material-door.js";

const RSA_SIZES = [2048, 3072, 4096] as const;
const HASH_OF = { 256: "sha256", 384: "sha384", 512: "sha512" } as const;

let fx: Fixture;
let s: Session;
const rsa = new Map<number, KeyHandle>();
const ec = new Map<Curve, KeyHandle>();
const aes = new Map<number, KeyHandle>();

beforeAll(async () => {
  fx = await deviceWithSession(1);
  s = fx.session;
  const allRsaOps = ["sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey"];
  await Promise.all([
    ...RSA_SIZES.map(async (size) =>
      rsa.set(size, await s.generateKey({ kty: "RSA", size, ops: allRsaOps })),
    ),
    ...(["P-256", "P-256K", "P-384", "P-521"] as const).map(async (crv) =>
      ec.set(crv, await s.generateKey({ kty: "EC", crv, ops: ["sign", "verify"] })),
    ),
    ...[128, 192, 256].map(async (size) =>
      aes.set(
        size,
        await s.generateKey({ kty: "oct", size, ops: ["encrypt", "decrypt", "wrapKey", "unwrapKey"] }),
      ),
    ),
  ]);
});

afterAll(async () => {
  await fx.device.close();
  await removeTempDirs();
});

/** node:crypto knows secp256k1 by its own name; Key Vault (and this HSM) call it P-256K. */
function nodePublicKey(jwk: JsonWebKey) {
  const { kid: _kid, key_ops: _ops, ...plain } = jwk as JsonWebKey & { kid?: string };
  return createPublicKey({
    key: plain.crv === "P-256K" ? { ...plain, crv: "secp256k1" } : plain,
    format: "jwk",
  });
}

const b64url = (s: string | undefined) => Buffer.from(s ?? "", "base64url");
const NOBLE = { "P-256": p256, "P-256K": secp256k1, "P-384": p384, "P-521": p521 } as const;

describe("RSA signatures verify with node:crypto from the exported JWK", () => {
  const cases = RSA_SIZES.flatMap((size) =>
    (["RS", "PS"] as const).flatMap((kind) =>
      ([256, 384, 512] as const).map((bits) => ({ size, kind, bits })),
    ),
  );
  test.each(cases)("$kind$bits with RSA $size", async ({ size, kind, bits }) => {
    const key = rsa.get(size)!;
    const alg = `${kind}${bits}`;
    const message = randomBytes(100);
    const signature = await s.sign(key, alg, message);
    expect(signature.length).toBe(size / 8);
    const jwk = await s.getPublicJwk(key);
    expect(jwk).toMatchObject({ kty: "RSA", e: "AQAB", kid: key.id });
    const options = {
      key: nodePublicKey(jwk),
      padding: kind === "PS" ? constants.RSA_PKCS1_PSS_PADDING : constants.RSA_PKCS1_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
    };
    expect(nodeVerify(HASH_OF[bits], message, options, signature)).toBe(true);
    expect(nodeVerify(HASH_OF[bits], text("other message"), options, signature)).toBe(false);
    expect(await s.verify(key, alg, message, signature)).toBe(true);
    expect(await s.verify(key, alg, text("other message"), signature)).toBe(false);
  });
});

describe("ECDSA signatures (JOSE r||s) verify with node:crypto and @noble/curves", () => {
  const cases = [
    { alg: "ES256", crv: "P-256", bits: 256, coordBytes: 32 },
    { alg: "ES256K", crv: "P-256K", bits: 256, coordBytes: 32 },
    { alg: "ES384", crv: "P-384", bits: 384, coordBytes: 48 },
    { alg: "ES512", crv: "P-521", bits: 512, coordBytes: 66 },
  ] as const;
  test.each(cases)("$alg on $crv", async ({ alg, crv, bits, coordBytes }) => {
    const key = ec.get(crv)!;
    const message = randomBytes(77);
    const signature = await s.sign(key, alg, message);
    expect(signature.length).toBe(2 * coordBytes);
    const jwk = await s.getPublicJwk(key);
    expect(jwk).toMatchObject({ kty: "EC", crv, kid: key.id });
    const nodeKey = { key: nodePublicKey(jwk), dsaEncoding: "ieee-p1363" as const };
    expect(nodeVerify(HASH_OF[bits], message, nodeKey, signature)).toBe(true);
    expect(nodeVerify(HASH_OF[bits], text("tampered"), nodeKey, signature)).toBe(false);
    // noble hashes the message with the curve's hash (sha256/sha256/sha384/sha512), as the alg does.
    const publicKey = Buffer.concat([Buffer.from([4]), b64url(jwk.x), b64url(jwk.y)]);
    const noble = NOBLE[crv];
    expect(noble.verify(signature, message, publicKey, { prehash: true, lowS: false })).toBe(true);
    expect(noble.verify(signature, text("tampered"), publicKey, { prehash: true, lowS: false })).toBe(false);
    expect(await s.verify(key, alg, message, signature)).toBe(true);
    const flipped = Uint8Array.from(signature);
    flipped[5]! ^= 1;
    expect(await s.verify(key, alg, message, flipped)).toBe(false);
  });

  test("secp256k1 public keys are exported with Key Vault's curve name P-256K", async () => {
    const jwk = await s.getPublicJwk(ec.get("P-256K")!);
    expect(jwk.crv).toBe("P-256K");
    expect(nodePublicKey(jwk).asymmetricKeyDetails?.namedCurve).toBe("secp256k1");
  });
});

describe("RSA encryption: ciphertexts from node:crypto decrypt in the HSM", () => {
  const ALGS = {
    "RSA-OAEP": { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" },
    "RSA-OAEP-256": { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    RSA1_5: { padding: constants.RSA_PKCS1_PADDING, oaepHash: undefined },
  } as const;
  const cases = RSA_SIZES.flatMap((size) =>
    (Object.keys(ALGS) as (keyof typeof ALGS)[]).map((alg) => ({ size, alg })),
  );
  test.each(cases)("$alg with RSA $size", async ({ size, alg }) => {
    const key = rsa.get(size)!;
    const plaintext = randomBytes(32);
    const { padding, oaepHash } = ALGS[alg];
    const external = publicEncrypt(
      { key: nodePublicKey(await s.getPublicJwk(key)), padding, oaepHash },
      plaintext,
    );
    expect(Buffer.from(await s.decrypt(key, alg, external))).toEqual(plaintext);
    const internal = await s.encrypt(key, alg, plaintext);
    expect(internal.ciphertext.length).toBe(size / 8);
    expect(Buffer.from(await s.decrypt(key, alg, internal.ciphertext))).toEqual(plaintext);
  });

  test.each(["RSA-OAEP", "RSA-OAEP-256", "RSA1_5"])(
    "%s: a corrupted ciphertext is an IntegrityError",
    async (alg) => {
      const key = rsa.get(2048)!;
      const { ciphertext } = await s.encrypt(key, alg, text("secret"));
      const corrupted = Uint8Array.from(ciphertext);
      corrupted[10]! ^= 0x40;
      await expectHsmError(s.decrypt(key, alg, corrupted), "IntegrityError", /decryption failed/);
    },
  );
});

describe("AES encryption round trips and matches node:crypto", () => {
  const sizes = [128, 192, 256] as const;
  test.each(sizes)("A%iGCM: HSM-made iv/tag, aad echoed, node decrypts with the key", async (size) => {
    const key = aes.get(size)!;
    const plaintext = randomBytes(45);
    const aad = text("header");
    const out = await s.encrypt(key, `A${size}GCM`, plaintext, { aad });
    expect(out.iv?.length).toBe(12);
    expect(out.tag?.length).toBe(16);
    expect(Buffer.from(out.aad!)).toEqual(Buffer.from(aad));
    const back = await s.decrypt(key, `A${size}GCM`, out.ciphertext, { iv: out.iv!, tag: out.tag!, aad });
    expect(Buffer.from(back)).toEqual(plaintext);
    const d = createDecipheriv(`aes-${size}-gcm`, revealKeyForTest(s, key).serialized, out.iv!);
    d.setAAD(aad);
    d.setAuthTag(out.tag!);
    expect(Buffer.concat([d.update(out.ciphertext), d.final()])).toEqual(plaintext);
    await expectHsmError(
      s.decrypt(key, `A${size}GCM`, out.ciphertext, { iv: out.iv!, tag: out.tag!, aad: text("other") }),
      "IntegrityError",
    );
  });

  test.each(sizes)(
    "A%iCBC: block-aligned data, caller iv kept, node decrypts without padding",
    async (size) => {
      const key = aes.get(size)!;
      const plaintext = randomBytes(64);
      const iv = randomBytes(16);
      const out = await s.encrypt(key, `A${size}CBC`, plaintext, { iv });
      expect(out.ciphertext.length).toBe(64);
      expect(Buffer.from(out.iv!)).toEqual(iv);
      expect(Buffer.from(await s.decrypt(key, `A${size}CBC`, out.ciphertext, { iv }))).toEqual(plaintext);
      const d = createDecipheriv(`aes-${size}-cbc`, revealKeyForTest(s, key).serialized, iv).setAutoPadding(
        false,
      );
      expect(Buffer.concat([d.update(out.ciphertext), d.final()])).toEqual(plaintext);
    },
  );

  test.each(sizes)("A%iCBCPAD: PKCS#7 padding, iv generated when absent, node decrypts", async (size) => {
    const key = aes.get(size)!;
    const plaintext = randomBytes(37);
    const out = await s.encrypt(key, `A${size}CBCPAD`, plaintext);
    expect(out.iv?.length).toBe(16);
    expect(out.ciphertext.length).toBe(48);
    expect(Buffer.from(await s.decrypt(key, `A${size}CBCPAD`, out.ciphertext, { iv: out.iv! }))).toEqual(
      plaintext,
    );
    const d = createDecipheriv(`aes-${size}-cbc`, revealKeyForTest(s, key).serialized, out.iv!);
    expect(Buffer.concat([d.update(out.ciphertext), d.final()])).toEqual(plaintext);
  });
});

describe("wrapKey / unwrapKey", () => {
  test.each([128, 192, 256] as const)(
    "A%iKW round trips and is RFC 3394 output under the key",
    async (size) => {
      const key = aes.get(size)!;
      const cek = randomBytes(32);
      const wrapped = await s.wrapKey(key, `A${size}KW`, cek);
      expect(wrapped.length).toBe(40);
      expect(Buffer.from(await s.unwrapKey(key, `A${size}KW`, wrapped))).toEqual(cek);
      const kek = revealKeyForTest(s, key).serialized;
      const d = createDecipheriv(`id-aes${size}-wrap`, kek, Buffer.from("a6a6a6a6a6a6a6a6", "hex"));
      expect(Buffer.concat([d.update(wrapped), d.final()])).toEqual(cek);
    },
  );

  const cases = RSA_SIZES.flatMap((size) =>
    (["RSA-OAEP", "RSA-OAEP-256"] as const).map((alg) => ({ size, alg })),
  );
  test.each(cases)("$alg with RSA $size: node-wrapped keys unwrap in the HSM", async ({ size, alg }) => {
    const key = rsa.get(size)!;
    const cek = randomBytes(32);
    const oaepHash = alg === "RSA-OAEP" ? "sha1" : "sha256";
    const jwk = await s.getPublicJwk(key);
    const external = publicEncrypt(
      { key: nodePublicKey(jwk), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash },
      cek,
    );
    expect(Buffer.from(await s.unwrapKey(key, alg, external))).toEqual(cek);
    expect(Buffer.from(await s.unwrapKey(key, alg, await s.wrapKey(key, alg, cek)))).toEqual(cek);
  });
});
