/**
 * Bring-your-own-key transfer blobs in Azure Key Vault's scheme (the "BYOK
 * specification"): the customer's side makes an ephemeral 256-bit AES key, wraps it
 * under the key-exchange key's RSA public key with RSA-OAEP (SHA-1, MGF1-SHA-1), and
 * wraps the target key (PKCS#8 DER for RSA/EC, raw bytes for oct) under that AES key
 * with AES Key Wrap with Padding (RFC 5649) — PKCS#11's CKM_RSA_AES_KEY_WRAP. The
 * ciphertext is the two parts concatenated (RSA part first, modulus-sized).
 *
 * The `.byok` file is Key Vault's JSON: `{schema_version, header: {kid, alg: "dir",
 * enc: "CKM_RSA_AES_KEY_WRAP"}, ciphertext: base64url, generator}`. Wrapping runs on
 * the customer's side (no pool state); unwrapping only inside the HSM (Session.importByok).
 */
import {
  constants,
  createHash,
  createPublicKey,
  createSecretKey,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from "node:crypto";
import { fail } from "@hsmpool/errors";
import { aesKeyUnwrapPad, aesKeyWrapPad } from "./aes-kw.js";

export const BYOK_ENC = "CKM_RSA_AES_KEY_WRAP";
export const BYOK_SCHEMA_VERSION = "1.0.0";
const AES_KEY_BYTES = 32;
const MAX_BLOB_CHARS = 64 * 1024;

export interface ByokBlob {
  schema_version: string;
  header: { kid: string; alg: "dir"; enc: typeof BYOK_ENC };
  ciphertext: string;
  generator: string;
}

/** RSA-OAEP(SHA-1) of a fresh AES key under the KEK, then RFC 5649 of the target under that AES key. */
export function wrapByokCiphertext(
  kekPublic: KeyObject,
  target: Uint8Array,
  aesKey = randomBytes(AES_KEY_BYTES),
): Buffer {
  if (kekPublic.asymmetricKeyType !== "rsa")
    fail("BadParameter", "the key-exchange key must be an RSA public key");
  const bits = kekPublic.asymmetricKeyDetails?.modulusLength ?? 0;
  if (![2048, 3072, 4096].includes(bits))
    fail("BadParameter", `the key-exchange key must be RSA 2048, 3072 or 4096 bits; got ${bits}`);
  try {
    const rsaPart = publicEncrypt(
      { key: kekPublic, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" },
      aesKey,
    );
    return Buffer.concat([rsaPart, aesKeyWrapPad(createSecretKey(aesKey), target)]);
  } finally {
    aesKey.fill(0);
  }
}

/** The target key bytes inside a BYOK ciphertext; IntegrityError for a blob made for another KEK or altered. */
export function unwrapByokCiphertext(
  kekPrivate: KeyObject,
  modulusBytes: number,
  ciphertext: Uint8Array,
): Buffer {
  if (ciphertext.length < modulusBytes + 16) {
    fail(
      "BadParameter",
      `a BYOK ciphertext for a ${modulusBytes * 8}-bit key-exchange key is longer than ${ciphertext.length} bytes`,
    );
  }
  let aesKey: Buffer;
  try {
    aesKey = privateDecrypt(
      { key: kekPrivate, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" },
      ciphertext.subarray(0, modulusBytes),
    );
  } catch {
    return fail("IntegrityError", "the BYOK blob was not made for this key-exchange key (or it was altered)");
  }
  try {
    if (aesKey.length !== AES_KEY_BYTES)
      fail("IntegrityError", "the BYOK blob's wrapping key is not a 256-bit AES key");
    return aesKeyUnwrapPad(createSecretKey(aesKey), ciphertext.subarray(modulusBytes));
  } finally {
    aesKey.fill(0);
  }
}

/** The `.byok` file for a target key wrapped under `kekPublic` (whose key id the header names). */
export function makeByokBlob(
  kekPublic: KeyObject,
  kid: string,
  target: Uint8Array,
  generator: string,
): ByokBlob {
  return {
    schema_version: BYOK_SCHEMA_VERSION,
    header: { kid, alg: "dir", enc: BYOK_ENC },
    ciphertext: wrapByokCiphertext(kekPublic, target).toString("base64url"),
    generator,
  };
}

/** Parses and checks a `.byok` file; BadParameter names what is wrong. */
export function parseByokBlob(text: string): { kid: string; ciphertext: Buffer } {
  if (text.length > MAX_BLOB_CHARS)
    fail("BadParameter", `a BYOK blob is at most ${MAX_BLOB_CHARS} characters`);
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return fail("BadParameter", "the BYOK blob is not JSON (expected Key Vault's .byok format)");
  }
  const b = j as Partial<ByokBlob>;
  if (b?.schema_version !== BYOK_SCHEMA_VERSION)
    fail("BadParameter", `BYOK schema_version must be ${BYOK_SCHEMA_VERSION}`);
  if (b.header?.enc !== BYOK_ENC || b.header.alg !== "dir") {
    fail("BadParameter", `BYOK header must say alg "dir", enc "${BYOK_ENC}"`);
  }
  if (typeof b.header.kid !== "string" || b.header.kid.length === 0)
    fail("BadParameter", "BYOK header.kid is missing");
  if (typeof b.ciphertext !== "string" || !/^[A-Za-z0-9_-]+$/.test(b.ciphertext)) {
    fail("BadParameter", "BYOK ciphertext must be base64url");
  }
  return { kid: b.header.kid, ciphertext: Buffer.from(b.ciphertext, "base64url") };
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA public key: the KEK's id when its JWK has no kid. */
export function rsaThumbprint(publicKey: KeyObject): string {
  const jwk = (publicKey.type === "public" ? publicKey : createPublicKey(publicKey)).export({
    format: "jwk",
  });
  const canonical = JSON.stringify({ e: jwk.e, kty: "RSA", n: jwk.n });
  return createHash("sha256").update(canonical).digest("base64url");
}
