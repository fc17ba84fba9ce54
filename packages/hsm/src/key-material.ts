/**
 * Key material inside the device: generation, the in-memory form (node:crypto
 * KeyObjects cached per handle so no operation re-imports a key), and the one
 * serialised form that only ever goes into encryption (PKCS#8 DER for RSA/EC,
 * raw bytes for AES).
 */
import {
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  generateKeySync,
  type JsonWebKey,
  type KeyObject,
} from "node:crypto";
import { fail } from "@hsmpool/errors";
import { generateIsolatedKeyPair } from "@hsmpool/platform";
import { CURVE_INFO, type Curve } from "./algorithms.js";
import type { KeyHandle, KeyShape } from "./key-attributes.js";

/** A key ready for use: its handle plus cached KeyObjects. */
export type LoadedKey =
  | {
      readonly handle: KeyHandle & { kty: "RSA" };
      readonly privateKey: KeyObject;
      readonly publicKey: KeyObject;
    }
  | {
      readonly handle: KeyHandle & { kty: "EC" };
      readonly privateKey: KeyObject;
      readonly publicKey: KeyObject;
    }
  | { readonly handle: KeyHandle & { kty: "oct" }; readonly secretKey: KeyObject };

/** The private/secret KeyObject of a freshly generated or decoded key (public half derived). */
export type Material =
  | { kind: "asymmetric"; privateKey: KeyObject; publicKey: KeyObject }
  | { kind: "secret"; secretKey: KeyObject };

/**
 * Key pairs come from the thread pool, never the synchronous generator: a JWK export of a
 * synchronously generated key could deadlock the thread (platform key-pairs.ts).
 */
export async function generateMaterial(shape: KeyShape): Promise<Material> {
  switch (shape.kty) {
    case "RSA": {
      const pair = await generateIsolatedKeyPair({ type: "rsa", modulusLength: shape.size });
      return { kind: "asymmetric", ...pair };
    }
    case "EC": {
      const pair = await generateIsolatedKeyPair({ type: "ec", namedCurve: CURVE_INFO[shape.crv].openssl });
      return { kind: "asymmetric", ...pair };
    }
    case "oct":
      return { kind: "secret", secretKey: generateKeySync("aes", { length: shape.size }) };
  }
}

export function loadKey(handle: KeyHandle, material: Material): LoadedKey {
  if ((handle.kty === "oct") !== (material.kind === "secret")) {
    fail("Internal", `${handle.kty} key ${handle.id} does not match its ${material.kind} material`);
  }
  return (
    material.kind === "secret"
      ? { handle, secretKey: material.secretKey }
      : { handle, privateKey: material.privateKey, publicKey: material.publicKey }
  ) as LoadedKey;
}

export function materialOf(key: LoadedKey): Material {
  return "secretKey" in key
    ? { kind: "secret", secretKey: key.secretKey }
    : { kind: "asymmetric", privateKey: key.privateKey, publicKey: key.publicKey };
}

/**
 * The serialised private/secret material. Callers must only feed it to an encryption
 * and then wipe it (`fill(0)`): this is the one place plaintext key bytes exist.
 */
export function exportMaterial(material: Material): Buffer {
  return material.kind === "secret"
    ? material.secretKey.export()
    : material.privateKey.export({ type: "pkcs8", format: "der" });
}

/**
 * Rebuilds material from its serialised form and checks it has the shape the
 * (authenticated) attributes claim; a mismatch means the record is not what it says.
 */
export function importMaterial(shape: KeyShape, bytes: Uint8Array): Material {
  if (shape.kty === "oct") {
    if (bytes.length * 8 !== shape.size) {
      fail(
        "IntegrityError",
        `AES key material is ${bytes.length * 8} bits but its attributes say ${shape.size}`,
      );
    }
    return { kind: "secret", secretKey: createSecretKey(bytes) };
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: Buffer.from(bytes), format: "der", type: "pkcs8" });
  } catch {
    return fail("IntegrityError", `${shape.kty} key material is not a valid PKCS#8 private key`);
  }
  const details = privateKey.asymmetricKeyDetails ?? {};
  if (shape.kty === "RSA") {
    if (privateKey.asymmetricKeyType !== "rsa" || details.modulusLength !== shape.size) {
      fail("IntegrityError", `key material is not an RSA ${shape.size}-bit key as its attributes say`);
    }
  } else if (privateKey.asymmetricKeyType !== "ec" || details.namedCurve !== CURVE_INFO[shape.crv].openssl) {
    fail("IntegrityError", `key material is not an EC ${shape.crv} key as its attributes say`);
  }
  return { kind: "asymmetric", privateKey, publicKey: createPublicKey(privateKey) };
}

/** Public JWK of an RSA or EC key as Key Vault shows it (secp256k1 is crv "P-256K"). */
export function publicJwk(key: LoadedKey): JsonWebKey & { kid: string } {
  if (!("publicKey" in key)) {
    return fail("BadParameter", `key ${key.handle.id} is an AES (oct) key; it has no public key to export`);
  }
  const jwk = key.publicKey.export({ format: "jwk" });
  if (key.handle.kty === "EC") jwk.crv = key.handle.crv satisfies Curve;
  return { ...jwk, kid: key.handle.id, key_ops: [...key.handle.ops] };
}

/**
 * Material handed in from outside (JWK import, a BYOK-unwrapped target): its shape is
 * read from the key itself; a type, size or curve the HSM does not hold is BadParameter.
 */
export function materialFromKeyObject(key: KeyObject): { shape: KeyShape; material: Material } {
  if (key.type === "secret") {
    const bits = (key.symmetricKeySize ?? 0) * 8;
    if (bits !== 128 && bits !== 192 && bits !== 256)
      fail("BadParameter", `an oct key must be 128, 192 or 256 bits; got ${bits}`);
    return { shape: { kty: "oct", size: bits }, material: { kind: "secret", secretKey: key } };
  }
  if (key.type !== "private")
    fail("BadParameter", "an imported key must hold its private part (a public key cannot be used)");
  const details = key.asymmetricKeyDetails ?? {};
  const publicKey = createPublicKey(key);
  if (key.asymmetricKeyType === "rsa") {
    const size = details.modulusLength;
    if (size !== 2048 && size !== 3072 && size !== 4096)
      fail("BadParameter", `an RSA key must be 2048, 3072 or 4096 bits; got ${size}`);
    return { shape: { kty: "RSA", size }, material: { kind: "asymmetric", privateKey: key, publicKey } };
  }
  if (key.asymmetricKeyType === "ec") {
    const crv = (Object.keys(CURVE_INFO) as Curve[]).find(
      (c) => CURVE_INFO[c].openssl === details.namedCurve,
    );
    if (!crv)
      fail(
        "BadParameter",
        `unsupported EC curve ${details.namedCurve}; expected P-256, P-256K, P-384 or P-521`,
      );
    return { shape: { kty: "EC", crv }, material: { kind: "asymmetric", privateKey: key, publicKey } };
  }
  return fail("BadParameter", `unsupported key type ${key.asymmetricKeyType}; expected RSA, EC or oct`);
}
