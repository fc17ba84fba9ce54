/**
 * Sign and verify a DIGEST the caller already computed, as the Key Vault REST API
 * does (`sign`/`verify` take `value` = the hash of the message). node:crypto only
 * signs messages (it always hashes), so:
 * - RSASSA-PKCS1-v1_5: DigestInfo(hash) ‖ digest through `privateEncrypt` (type-1 padding);
 * - RSASSA-PSS: EMSA-PSS encoding (RFC 8017 §9.1.1, MGF1 with the same hash, salt = hash
 *   length, as node:crypto's RSA_PSS_SALTLEN_DIGEST) through raw RSA;
 * - ECDSA: the nonce point k·G comes from OpenSSL (an ECDH key pair: k is uniformly
 *   random in [1, n-1]), then s = k⁻¹(e + r·d) mod n in BigInt (FIPS 186-5 §6.4.1);
 *   verification is @noble/curves' (prehash off).
 * The digest length must be the algorithm's hash length, as the real service requires.
 */
import {
  constants,
  createECDH,
  createHash,
  type KeyObject,
  privateEncrypt,
  publicDecrypt,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import { fail } from "@hsmpool/errors";
import { p256, p384, p521 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import {
  CURVE_INFO,
  type Curve,
  type HashName,
  lookupAlgorithm,
  SIGN_ALGORITHMS,
  type SignAlgorithm,
} from "./algorithms.js";
import { requireBytes } from "./bytes.js";
import { requireOp } from "./crypto-ops.js";
import { describeKey } from "./key-attributes.js";
import type { LoadedKey } from "./key-material.js";

const HASH_BYTES: Readonly<Record<HashName, number>> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

/** DER prefix of DigestInfo { AlgorithmIdentifier(hash, NULL), OCTET STRING(digest) } (RFC 8017 §9.2 note 1). */
const DIGEST_INFO_PREFIX: Readonly<Record<HashName, string>> = {
  sha1: "3021300906052b0e03021a05000414",
  sha256: "3031300d060960864801650304020105000420",
  sha384: "3041300d060960864801650304020205000430",
  sha512: "3051300d060960864801650304020305000440",
};

const NOBLE = { "P-256": p256, "P-256K": secp256k1, "P-384": p384, "P-521": p521 } as const;
const curveOrder = (crv: Curve): bigint => NOBLE[crv].Point.Fn.ORDER;

const toBig = (bytes: Uint8Array): bigint =>
  bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString("hex")}`);
const toBytes = (n: bigint, length: number): Buffer =>
  Buffer.from(n.toString(16).padStart(2 * length, "0"), "hex");

function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1] = [((a % m) + m) % m, m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}

/** The private scalar of each EC key, read once from its KeyObject (stays in this module's memory). */
const scalars = new WeakMap<KeyObject, bigint>();
function privateScalar(key: KeyObject): bigint {
  let d = scalars.get(key);
  if (d === undefined) {
    d = toBig(Buffer.from(key.export({ format: "jwk" }).d as string, "base64url"));
    scalars.set(key, d);
  }
  return d;
}

function ecdsaSignDigest(key: KeyObject, crv: Curve, digest: Uint8Array): Buffer {
  const n = curveOrder(crv);
  const width = CURVE_INFO[crv].coordBytes;
  const d = privateScalar(key);
  const e = toBig(digest); // digest bit length ≤ order bit length for every Key Vault pairing
  for (;;) {
    const ephemeral = createECDH(CURVE_INFO[crv].openssl);
    const point = ephemeral.generateKeys();
    const k = toBig(ephemeral.getPrivateKey());
    const r = toBig(point.subarray(1, 1 + width)) % n;
    if (r === 0n) continue;
    const s = (modInverse(k, n) * ((e + r * d) % n)) % n;
    if (s === 0n) continue;
    return Buffer.concat([toBytes(r, width), toBytes(s, width)]);
  }
}

function ecPublicPoint(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: "jwk" });
  return Buffer.concat([
    Buffer.from([4]),
    Buffer.from(jwk.x as string, "base64url"),
    Buffer.from(jwk.y as string, "base64url"),
  ]);
}

function mgf1(hash: HashName, seed: Uint8Array, length: number): Buffer {
  const out: Buffer[] = [];
  for (let counter = 0; out.length * HASH_BYTES[hash] < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    out.push(createHash(hash).update(seed).update(c).digest());
  }
  return Buffer.concat(out).subarray(0, length);
}

/** EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with salt length = hash length. */
function pssEncode(hash: HashName, digest: Uint8Array, emBits: number): Buffer {
  const hLen = HASH_BYTES[hash];
  const emLen = Math.ceil(emBits / 8);
  const salt = randomBytes(hLen);
  const h = createHash(hash).update(Buffer.alloc(8)).update(digest).update(salt).digest();
  const db = Buffer.alloc(emLen - hLen - 1);
  db[emLen - 2 * hLen - 2] = 1;
  salt.copy(db, emLen - 2 * hLen - 1);
  const mask = mgf1(hash, h, db.length);
  for (let i = 0; i < db.length; i++) db[i] = (db[i] as number) ^ (mask[i] as number);
  db[0] = (db[0] as number) & (0xff >> (8 * emLen - emBits));
  return Buffer.concat([db, h, Buffer.from([0xbc])]);
}

/** EMSA-PSS-VERIFY (RFC 8017 §9.1.2) with salt length = hash length. */
function pssVerify(hash: HashName, digest: Uint8Array, em: Buffer, emBits: number): boolean {
  const hLen = HASH_BYTES[hash];
  const emLen = Math.ceil(emBits / 8);
  if (em.length !== emLen || em[emLen - 1] !== 0xbc) return false;
  const db = Buffer.from(em.subarray(0, emLen - hLen - 1));
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  if (((db[0] as number) & ~(0xff >> (8 * emLen - emBits)) & 0xff) !== 0) return false;
  const mask = mgf1(hash, h, db.length);
  for (let i = 0; i < db.length; i++) db[i] = (db[i] as number) ^ (mask[i] as number);
  db[0] = (db[0] as number) & (0xff >> (8 * emLen - emBits));
  const ps = db.subarray(0, emLen - 2 * hLen - 2);
  if (ps.some((b) => b !== 0) || db[emLen - 2 * hLen - 2] !== 1) return false;
  const salt = db.subarray(db.length - hLen);
  const expected = createHash(hash).update(Buffer.alloc(8)).update(digest).update(salt).digest();
  return timingSafeEqual(expected, h);
}

interface DigestInput {
  alg: SignAlgorithm;
  hash: HashName;
  digest: Uint8Array;
}

function checkDigest(key: LoadedKey, algName: unknown, data: unknown): DigestInput & { crv?: Curve } {
  const { name, spec } = lookupAlgorithm(SIGN_ALGORITHMS, algName, "signing");
  const digest = requireBytes(data, "digest");
  if (spec.kty === "oct") {
    return fail("BadParameter", `${name} (HMAC) runs over the message, not a digest: use sign/verify`);
  }
  if (
    spec.kty === "RSA" ? key.handle.kty !== "RSA" : key.handle.kty !== "EC" || key.handle.crv !== spec.crv
  ) {
    fail(
      "BadParameter",
      `${name} needs ${spec.kty === "RSA" ? "an RSA key" : `an EC ${spec.crv} key`}; ${describeKey(key.handle)} is not one`,
    );
  }
  if (digest.length !== HASH_BYTES[spec.hash]) {
    fail(
      "BadParameter",
      `${name} signs a ${HASH_BYTES[spec.hash]}-byte ${spec.hash.toUpperCase()} digest; got ${digest.length} bytes`,
      { field: "value" },
    );
  }
  return { alg: name, hash: spec.hash, digest, ...(spec.kty === "EC" ? { crv: spec.crv } : {}) };
}

const rsaBits = (key: LoadedKey): number => (key.handle.kty === "RSA" ? key.handle.size : 0);

/** Signs a digest (Key Vault semantics). ECDSA output is JOSE r‖s. */
export function signDigest(key: LoadedKey, algName: unknown, data: unknown): Buffer {
  const input = checkDigest(key, algName, data);
  requireOp(key, "sign");
  if (!("privateKey" in key)) return fail("BadParameter", `${describeKey(key.handle)} cannot sign`);
  if (input.crv) return ecdsaSignDigest(key.privateKey, input.crv, input.digest);
  if (SIGN_ALGORITHMS[input.alg].kty === "RSA" && (SIGN_ALGORITHMS[input.alg] as { pss: boolean }).pss) {
    const em = pssEncode(input.hash, input.digest, rsaBits(key) - 1);
    const padded = Buffer.concat([Buffer.alloc(rsaBits(key) / 8 - em.length), em]);
    return privateEncrypt({ key: key.privateKey, padding: constants.RSA_NO_PADDING }, padded);
  }
  const digestInfo = Buffer.concat([Buffer.from(DIGEST_INFO_PREFIX[input.hash], "hex"), input.digest]);
  return privateEncrypt({ key: key.privateKey, padding: constants.RSA_PKCS1_PADDING }, digestInfo);
}

/** True when `signature` is valid for the digest; a malformed signature is simply invalid. */
export function verifyDigest(key: LoadedKey, algName: unknown, data: unknown, signature: unknown): boolean {
  const input = checkDigest(key, algName, data);
  const sig = requireBytes(signature, "signature");
  requireOp(key, "verify");
  if (!("publicKey" in key)) return false;
  try {
    if (input.crv) {
      if (sig.length !== 2 * CURVE_INFO[input.crv].coordBytes) return false;
      return NOBLE[input.crv].verify(sig, input.digest, ecPublicPoint(key.publicKey), {
        prehash: false,
        lowS: false,
      });
    }
    if (sig.length !== rsaBits(key) / 8) return false;
    if ((SIGN_ALGORITHMS[input.alg] as { pss?: boolean }).pss) {
      const em = publicDecrypt({ key: key.publicKey, padding: constants.RSA_NO_PADDING }, sig);
      const emBits = rsaBits(key) - 1;
      return pssVerify(input.hash, input.digest, em.subarray(em.length - Math.ceil(emBits / 8)), emBits);
    }
    const recovered = publicDecrypt({ key: key.publicKey, padding: constants.RSA_PKCS1_PADDING }, sig);
    const expected = Buffer.concat([Buffer.from(DIGEST_INFO_PREFIX[input.hash], "hex"), input.digest]);
    return recovered.length === expected.length && timingSafeEqual(recovered, expected);
  } catch {
    return false;
  }
}
