/**
 * The key shapes, operations and algorithms the pool accepts: the HSM package's
 * tables, restated here because this package must stay free of node:crypto (the HSM
 * package's runtime imports it). The types come from @hsmpool/hsm with `import type`,
 * so a name added there and missing here fails the build (`satisfies Record<...>`),
 * and algorithms.test.ts checks every entry against the HSM's own tables.
 */
import { fail } from "@hsmpool/errors";
import type {
  AesSizeBits,
  Curve,
  EncryptAlgorithm,
  KeyOp,
  KeyType,
  RsaSizeBits,
  SignAlgorithm,
  WrapAlgorithm,
} from "@hsmpool/hsm";

export type { AesSizeBits, Curve, KeyOp, KeyType, RsaSizeBits };

export const KEY_TYPES = ["RSA", "EC", "oct"] as const satisfies readonly KeyType[];
export const RSA_SIZES = [2048, 3072, 4096] as const satisfies readonly RsaSizeBits[];
export const AES_SIZES = [128, 192, 256] as const satisfies readonly AesSizeBits[];
export const CURVES = ["P-256", "P-256K", "P-384", "P-521"] as const satisfies readonly Curve[];
export const KEY_OPS = [
  "sign",
  "verify",
  "encrypt",
  "decrypt",
  "wrapKey",
  "unwrapKey",
  "import",
] as const satisfies readonly KeyOp[];

/** Which operations a key type can ever perform (EC: signatures only; oct: HMAC and AES; RSA: also BYOK import). */
export const OPS_BY_TYPE: Readonly<Record<KeyType, readonly KeyOp[]>> = {
  RSA: KEY_OPS,
  EC: ["sign", "verify"],
  oct: ["sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey"],
};

/** A new key's operations when the request names none: all its type allows except `import` (KEKs are asked for). */
export const DEFAULT_OPS_BY_TYPE: Readonly<Record<KeyType, readonly KeyOp[]>> = {
  RSA: KEY_OPS.filter((op) => op !== "import"),
  EC: OPS_BY_TYPE.EC,
  oct: OPS_BY_TYPE.oct,
};

/** The shape of a key: type plus size (RSA, oct) or curve (EC). */
export type KeyShape =
  | { kty: "RSA"; size: RsaSizeBits }
  | { kty: "EC"; crv: Curve }
  | { kty: "oct"; size: AesSizeBits };

/** What an algorithm needs from the key it runs on. */
export type AlgorithmRequirement =
  | { kty: "RSA" }
  | { kty: "EC"; crv: Curve }
  | { kty: "oct"; size: AesSizeBits }
  /** HMAC: an oct key of any size. */
  | { kty: "oct" };

export const SIGN_ALGORITHMS = {
  RS256: { kty: "RSA" },
  RS384: { kty: "RSA" },
  RS512: { kty: "RSA" },
  PS256: { kty: "RSA" },
  PS384: { kty: "RSA" },
  PS512: { kty: "RSA" },
  ES256: { kty: "EC", crv: "P-256" },
  ES256K: { kty: "EC", crv: "P-256K" },
  ES384: { kty: "EC", crv: "P-384" },
  ES512: { kty: "EC", crv: "P-521" },
  HS256: { kty: "oct" },
  HS384: { kty: "oct" },
  HS512: { kty: "oct" },
} as const satisfies Record<SignAlgorithm, AlgorithmRequirement>;

export const ENCRYPT_ALGORITHMS = {
  "RSA-OAEP": { kty: "RSA" },
  "RSA-OAEP-256": { kty: "RSA" },
  RSA1_5: { kty: "RSA" },
  A128GCM: { kty: "oct", size: 128 },
  A192GCM: { kty: "oct", size: 192 },
  A256GCM: { kty: "oct", size: 256 },
  A128CBC: { kty: "oct", size: 128 },
  A192CBC: { kty: "oct", size: 192 },
  A256CBC: { kty: "oct", size: 256 },
  A128CBCPAD: { kty: "oct", size: 128 },
  A192CBCPAD: { kty: "oct", size: 192 },
  A256CBCPAD: { kty: "oct", size: 256 },
} as const satisfies Record<EncryptAlgorithm, AlgorithmRequirement>;

export const WRAP_ALGORITHMS = {
  A128KW: { kty: "oct", size: 128 },
  A192KW: { kty: "oct", size: 192 },
  A256KW: { kty: "oct", size: 256 },
  "RSA-OAEP": { kty: "RSA" },
  "RSA-OAEP-256": { kty: "RSA" },
  RSA1_5: { kty: "RSA" },
} as const satisfies Record<WrapAlgorithm, AlgorithmRequirement>;

export const BYOK_ALGORITHM = "CKM_RSA_AES_KEY_WRAP";
const IMPORT_ALGORITHMS = { [BYOK_ALGORITHM]: { kty: "RSA" } } as const satisfies Record<
  string,
  AlgorithmRequirement
>;

/** The algorithm table an operation draws from. */
export function algorithmsFor(op: KeyOp): Readonly<Record<string, AlgorithmRequirement>> {
  switch (op) {
    case "sign":
    case "verify":
      return SIGN_ALGORITHMS;
    case "encrypt":
    case "decrypt":
      return ENCRYPT_ALGORITHMS;
    case "import":
      // BYOK: the blob's own format (CKM_RSA_AES_KEY_WRAP) is the only "algorithm".
      return IMPORT_ALGORITHMS;
    default:
      return WRAP_ALGORITHMS;
  }
}

export function isOneOf<T extends string | number>(list: readonly T[], value: unknown): value is T {
  return (list as readonly unknown[]).includes(value);
}

/** Checks that `alg` is an algorithm of `op` and fits the key's shape; BadParameter names the mismatch. */
export function requireAlgorithmFits(op: KeyOp, alg: unknown, shape: KeyShape): void {
  const table = algorithmsFor(op);
  if (typeof alg !== "string" || !Object.hasOwn(table, alg)) {
    fail(
      "BadParameter",
      `unknown ${op} algorithm ${JSON.stringify(alg)}; expected one of ${Object.keys(table).join(", ")}`,
      { field: "alg" },
    );
  }
  const need = table[alg] as AlgorithmRequirement;
  if (need.kty !== shape.kty) {
    fail("BadParameter", `algorithm ${alg} needs a ${need.kty} key; this is ${describeShape(shape)}`, {
      field: "alg",
    });
  }
  if (need.kty === "EC" && shape.kty === "EC" && need.crv !== shape.crv) {
    fail("BadParameter", `algorithm ${alg} needs curve ${need.crv}; this is ${describeShape(shape)}`, {
      field: "alg",
    });
  }
  if (need.kty === "oct" && shape.kty === "oct" && "size" in need && need.size !== shape.size) {
    fail(
      "BadParameter",
      `algorithm ${alg} needs a ${need.size}-bit AES key; this is ${describeShape(shape)}`,
      {
        field: "alg",
      },
    );
  }
}

export function describeShape(shape: KeyShape): string {
  return shape.kty === "EC" ? `an EC ${shape.crv} key` : `a ${shape.kty} ${shape.size}-bit key`;
}
