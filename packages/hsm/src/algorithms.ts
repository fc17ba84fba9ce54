/**
 * The key types, curves, operations and algorithm names of the managed-HSM API
 * (Azure Key Vault Managed HSM), and what each algorithm needs from a key. Pure data
 * plus validators that turn a wrong name or size into a BadParameter a person can act on.
 */
import { fail } from "@hsmpool/errors";

export const KEY_TYPES = ["RSA", "EC", "oct"] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export const RSA_SIZES = [2048, 3072, 4096] as const;
export type RsaSizeBits = (typeof RSA_SIZES)[number];

export const AES_SIZES = [128, 192, 256] as const;
export type AesSizeBits = (typeof AES_SIZES)[number];

/** Key Vault curve names. "P-256K" is secp256k1 (Key Vault's name, not a JOSE registry name). */
export const CURVES = ["P-256", "P-256K", "P-384", "P-521"] as const;
export type Curve = (typeof CURVES)[number];

/** OpenSSL names node:crypto uses for each curve, and the coordinate width in bytes. */
export const CURVE_INFO: Readonly<Record<Curve, { openssl: string; coordBytes: number }>> = {
  "P-256": { openssl: "prime256v1", coordBytes: 32 },
  "P-256K": { openssl: "secp256k1", coordBytes: 32 },
  "P-384": { openssl: "secp384r1", coordBytes: 48 },
  "P-521": { openssl: "secp521r1", coordBytes: 66 },
};

/** `import` is the BYOK key-exchange key's only operation (Key Vault: a KEK allows nothing else). */
export const KEY_OPS = ["sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey", "import"] as const;
export type KeyOp = (typeof KEY_OPS)[number];

/** Which operations each key type can ever perform (EC: signatures only; oct: HMAC signatures, AES; RSA: also BYOK import). */
export const OPS_BY_TYPE: Readonly<Record<KeyType, readonly KeyOp[]>> = {
  RSA: KEY_OPS,
  EC: ["sign", "verify"],
  oct: ["sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey"],
};

export type HashName = "sha1" | "sha256" | "sha384" | "sha512";

export type SignAlgorithm =
  | "RS256"
  | "RS384"
  | "RS512"
  | "PS256"
  | "PS384"
  | "PS512"
  | SignEcAlgorithm
  | SignHmacAlgorithm;
type SignEcAlgorithm = "ES256" | "ES256K" | "ES384" | "ES512";
type SignHmacAlgorithm = "HS256" | "HS384" | "HS512";

export type SignSpec =
  | { kty: "RSA"; hash: HashName; pss: boolean }
  | { kty: "EC"; hash: HashName; crv: Curve }
  | { kty: "oct"; hash: HashName };

export const SIGN_ALGORITHMS: Readonly<Record<SignAlgorithm, SignSpec>> = {
  RS256: { kty: "RSA", hash: "sha256", pss: false },
  RS384: { kty: "RSA", hash: "sha384", pss: false },
  RS512: { kty: "RSA", hash: "sha512", pss: false },
  PS256: { kty: "RSA", hash: "sha256", pss: true },
  PS384: { kty: "RSA", hash: "sha384", pss: true },
  PS512: { kty: "RSA", hash: "sha512", pss: true },
  ES256: { kty: "EC", hash: "sha256", crv: "P-256" },
  ES256K: { kty: "EC", hash: "sha256", crv: "P-256K" },
  ES384: { kty: "EC", hash: "sha384", crv: "P-384" },
  ES512: { kty: "EC", hash: "sha512", crv: "P-521" },
  HS256: { kty: "oct", hash: "sha256" },
  HS384: { kty: "oct", hash: "sha384" },
  HS512: { kty: "oct", hash: "sha512" },
};

export type RsaPadding = { kind: "oaep"; hash: HashName } | { kind: "pkcs1" };

export type EncryptAlgorithm =
  | "RSA-OAEP"
  | "RSA-OAEP-256"
  | "RSA1_5"
  | "A128GCM"
  | "A192GCM"
  | "A256GCM"
  | "A128CBC"
  | "A192CBC"
  | "A256CBC"
  | "A128CBCPAD"
  | "A192CBCPAD"
  | "A256CBCPAD";

export type EncryptSpec =
  | { kty: "RSA"; padding: RsaPadding }
  | { kty: "oct"; sizeBits: AesSizeBits; mode: "gcm" }
  | { kty: "oct"; sizeBits: AesSizeBits; mode: "cbc"; pkcs7: boolean };

export const ENCRYPT_ALGORITHMS: Readonly<Record<EncryptAlgorithm, EncryptSpec>> = {
  "RSA-OAEP": { kty: "RSA", padding: { kind: "oaep", hash: "sha1" } },
  "RSA-OAEP-256": { kty: "RSA", padding: { kind: "oaep", hash: "sha256" } },
  RSA1_5: { kty: "RSA", padding: { kind: "pkcs1" } },
  A128GCM: { kty: "oct", sizeBits: 128, mode: "gcm" },
  A192GCM: { kty: "oct", sizeBits: 192, mode: "gcm" },
  A256GCM: { kty: "oct", sizeBits: 256, mode: "gcm" },
  A128CBC: { kty: "oct", sizeBits: 128, mode: "cbc", pkcs7: false },
  A192CBC: { kty: "oct", sizeBits: 192, mode: "cbc", pkcs7: false },
  A256CBC: { kty: "oct", sizeBits: 256, mode: "cbc", pkcs7: false },
  A128CBCPAD: { kty: "oct", sizeBits: 128, mode: "cbc", pkcs7: true },
  A192CBCPAD: { kty: "oct", sizeBits: 192, mode: "cbc", pkcs7: true },
  A256CBCPAD: { kty: "oct", sizeBits: 256, mode: "cbc", pkcs7: true },
};

export type WrapAlgorithm = "A128KW" | "A192KW" | "A256KW" | "RSA-OAEP" | "RSA-OAEP-256" | "RSA1_5";

export type WrapSpec = { kty: "RSA"; padding: RsaPadding } | { kty: "oct"; sizeBits: AesSizeBits };

export const WRAP_ALGORITHMS: Readonly<Record<WrapAlgorithm, WrapSpec>> = {
  A128KW: { kty: "oct", sizeBits: 128 },
  A192KW: { kty: "oct", sizeBits: 192 },
  A256KW: { kty: "oct", sizeBits: 256 },
  "RSA-OAEP": { kty: "RSA", padding: { kind: "oaep", hash: "sha1" } },
  "RSA-OAEP-256": { kty: "RSA", padding: { kind: "oaep", hash: "sha256" } },
  // Key Vault lists RSA1_5 for wrapKey/unwrapKey too (its own REST examples unwrap with it).
  RSA1_5: { kty: "RSA", padding: { kind: "pkcs1" } },
};

/** Looks `name` up in an algorithm table; an unknown name lists the valid ones. */
export function lookupAlgorithm<K extends string, V>(
  table: Readonly<Record<K, V>>,
  name: unknown,
  purpose: string,
): { name: K; spec: V } {
  if (typeof name === "string" && Object.hasOwn(table, name)) {
    return { name: name as K, spec: table[name as K] };
  }
  return fail(
    "BadParameter",
    `unknown ${purpose} algorithm ${JSON.stringify(name)}; expected one of ${Object.keys(table).join(", ")}`,
  );
}

export function isOneOf<T extends string | number>(list: readonly T[], value: unknown): value is T {
  return (list as readonly unknown[]).includes(value);
}
