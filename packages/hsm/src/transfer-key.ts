/**
 * Per-partition transfer keys: P-384 ECDH key pairs whose public halves a partition
 * publishes (JWK or SPKI DER) so another partition's owner can certify them.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import { fail } from "@hsmpool/errors";
import { generateIsolatedKeyPair } from "@hsmpool/platform";

export const TRANSFER_CURVE = "P-384";
const TRANSFER_CURVE_OPENSSL = "secp384r1";

/** A transfer public key as callers pass it: a JWK, SPKI DER bytes, or a node KeyObject. */
export type TransferPublicKeyInput = JsonWebKey | Uint8Array | KeyObject;

export interface TransferPublicKey {
  /** `{ kty: "EC", crv: "P-384", x, y }` */
  jwk: JsonWebKey;
  /** SubjectPublicKeyInfo, DER. */
  spki: Uint8Array;
}

export interface TransferKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** On the thread pool, never synchronously (platform key-pairs.ts: its JWK export could deadlock). */
export function generateTransferKeyPair(): Promise<TransferKeyPair> {
  return generateIsolatedKeyPair({ type: "ec", namedCurve: TRANSFER_CURVE_OPENSSL });
}

export function describeTransferPublicKey(publicKey: KeyObject): TransferPublicKey {
  return {
    jwk: publicKey.export({ format: "jwk" }),
    spki: publicKey.export({ type: "spki", format: "der" }),
  };
}

/** Accepts a peer's transfer public key in any supported form; anything but P-384 is BadParameter. */
export function parseTransferPublicKey(input: unknown, what: string): KeyObject {
  let key: KeyObject;
  try {
    if (input instanceof Uint8Array) {
      key = createPublicKey({ key: Buffer.from(input), format: "der", type: "spki" });
    } else if (isKeyObject(input)) {
      key = input.type === "private" ? createPublicKey(input) : input;
    } else if (typeof input === "object" && input !== null) {
      key = createPublicKey({ key: input as JsonWebKey, format: "jwk" });
    } else {
      return fail("BadParameter", `${what} must be a JWK, SPKI DER bytes or a KeyObject`);
    }
  } catch {
    return fail(
      "BadParameter",
      `${what} is not a valid public key (expected EC ${TRANSFER_CURVE} as JWK or SPKI DER)`,
    );
  }
  if (
    key.type !== "public" ||
    key.asymmetricKeyType !== "ec" ||
    key.asymmetricKeyDetails?.namedCurve !== TRANSFER_CURVE_OPENSSL
  ) {
    fail("BadParameter", `${what} must be an EC ${TRANSFER_CURVE} public key`);
  }
  return key;
}

function isKeyObject(x: unknown): x is KeyObject {
  return typeof x === "object" && x !== null && typeof (x as KeyObject).export === "function" && "type" in x;
}
