/**
 * The customer's side of the ceremony: an RSA key pair and a self-signed certificate to
 * download a security domain with (what `openssl req -x509 -newkey rsa:2048` makes).
 * `hsmpool up` uses it for its one-command default; tests use it too.
 */
import "reflect-metadata";
import { generateKeyPair, webcrypto } from "node:crypto";
import { promisify } from "node:util";
import * as x509 from "@peculiar/x509";

// @peculiar/x509 is typed against the DOM `Crypto`; Node's webcrypto is that object at runtime.
const crypto = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];
const SIGNING = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;

export interface CustomerKeyPair {
  /** PKCS#8 PEM private key: keep it on the customer's side only. */
  readonly privateKeyPem: string;
  readonly certificatePem: string;
}

export async function createCustomerKeyPair(
  commonName: string,
  bits = 2048,
  now = new Date(),
): Promise<CustomerKeyPair> {
  const { privateKey, publicKey } = await promisify(generateKeyPair)("rsa", { modulusLength: bits });
  const keys = {
    privateKey: await webcrypto.subtle.importKey(
      "pkcs8",
      privateKey.export({ type: "pkcs8", format: "der" }),
      SIGNING,
      false,
      ["sign"],
    ),
    publicKey: await webcrypto.subtle.importKey(
      "spki",
      publicKey.export({ type: "spki", format: "der" }),
      SIGNING,
      true,
      ["verify"],
    ),
  } as unknown as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: Date.now().toString(16),
      name: `CN=${commonName}`,
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + 10 * 365 * 24 * 3600_000),
      keys,
      signingAlgorithm: SIGNING,
    },
    crypto,
  );
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    certificatePem: cert.toString("pem"),
  };
}
