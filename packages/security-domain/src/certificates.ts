/**
 * The customer's RSA keys: certificates (PEM) to encrypt shares to, private keys (PEM)
 * to decrypt them offline. A share is labelled with its certificate's thumbprint
 * (x5t#S256 = base64url SHA-256 of the DER, as JOSE names it) and with the SHA-256 of
 * the public key, so a private key finds its share without its certificate.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  constants as rsa,
  X509Certificate,
} from "node:crypto";
import { fail } from "@hsmpool/errors";
import { toBase64Url } from "./base64url.js";

export const MIN_RSA_BITS = 2048;

export interface CustomerCertificate {
  /** x5t#S256 of the certificate. */
  readonly thumbprint: string;
  /** base64url SHA-256 of the public key's SubjectPublicKeyInfo DER. */
  readonly keyId: string;
  readonly publicKey: KeyObject;
}

export function keyIdOf(publicKey: KeyObject): string {
  return toBase64Url(
    createHash("sha256")
      .update(publicKey.export({ type: "spki", format: "der" }))
      .digest(),
  );
}

function requireRsa(key: KeyObject, what: string): void {
  if (key.asymmetricKeyType !== "rsa")
    fail("BadParameter", `${what} is a ${key.asymmetricKeyType ?? "non-RSA"} key; an RSA key is required`);
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS)
    fail("BadParameter", `${what} is RSA-${bits}; at least RSA-${MIN_RSA_BITS} is required`);
}

/** One PEM certificate; refuses anything but an RSA key of at least 2048 bits. */
export function parseCertificate(pem: string, what: string): CustomerCertificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return fail("BadParameter", `${what} is not a PEM X.509 certificate`);
  }
  requireRsa(cert.publicKey, what);
  return {
    thumbprint: toBase64Url(createHash("sha256").update(cert.raw).digest()),
    keyId: keyIdOf(cert.publicKey),
    publicKey: cert.publicKey,
  };
}

/** 3..10 distinct certificates. */
export function parseCertificates(pems: readonly string[], min: number, max: number): CustomerCertificate[] {
  if (pems.length < min || pems.length > max)
    fail("BadParameter", `the security domain needs ${min} to ${max} RSA certificates, not ${pems.length}`);
  const certs = pems.map((pem, i) => parseCertificate(pem, `certificate ${i + 1}`));
  const ids = new Set(certs.map((c) => c.keyId));
  if (ids.size !== certs.length)
    fail("BadParameter", "two certificates hold the same public key; every share needs its own key");
  return certs;
}

export function parsePrivateKey(pem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    return fail("BadParameter", `${what} is not a PEM private key`);
  }
  requireRsa(key, what);
  return key;
}

export function publicKeyIdOfPrivate(key: KeyObject): string {
  return keyIdOf(createPublicKey(key));
}

const OAEP_256 = { padding: rsa.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" } as const;

/** RSA-OAEP-256 encryption (JOSE's name), as the real security domain uses for shares. */
export function rsaOaep256Encrypt(publicKey: KeyObject, data: Uint8Array): Buffer {
  return publicEncrypt({ key: publicKey, ...OAEP_256 }, data);
}

export function rsaOaep256Decrypt(privateKey: KeyObject, data: Uint8Array, what: string): Buffer {
  try {
    return privateDecrypt({ key: privateKey, ...OAEP_256 }, data);
  } catch {
    return fail(
      "BadParameter",
      `${what} does not decrypt with the given key (altered, or meant for another key)`,
    );
  }
}
