/**
 * The fabric PKI: a self-signed vendor root CA and, per server, a platform
 * attestation CA certificate issued by it. The platform cert is a CA (pathLen 0) so
 * that certificates its quoting enclave issues (RA-TLS leaves) pass ordinary X.509
 * chain verification with the vendor root as the only trust anchor.
 */
import "reflect-metadata";
import { randomBytes, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

type CryptoKeyPair = webcrypto.CryptoKeyPair;

export const EC_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;
/** Certificates are valid from shortly before `now` (clock skew) for twenty years: the simulated hardware outlives any test. */
const BACKDATE_MS = 5 * 60 * 1000;
const VALIDITY_MS = 20 * 365 * 24 * 60 * 60 * 1000;

// @peculiar/x509 is typed against the DOM `Crypto`; Node's webcrypto is that object at runtime.
const crypto = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];

function serialNumber(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive INTEGER
  return b.toString("hex");
}

export function generateEcKeyPair(extractable: boolean): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_P256, extractable, ["sign", "verify"]) as Promise<CryptoKeyPair>;
}

export interface IssuedCert {
  der: Uint8Array;
  pem: string;
  subject: string;
}

function issued(cert: x509.X509Certificate): IssuedCert {
  return { der: new Uint8Array(cert.rawData), pem: cert.toString("pem"), subject: cert.subject };
}

export async function createVendorRoot(
  keys: CryptoKeyPair,
  fabricId: string,
  now: Date,
): Promise<IssuedCert> {
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: `CN=hsmpool vendor root ${fabricId}, O=hsmpool simulated CPU vendor`,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + VALIDITY_MS),
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 1, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return issued(cert);
}

export async function createPlatformCert(params: {
  serverId: string;
  rackId: string;
  platformPublicKey: webcrypto.CryptoKey;
  rootKeys: CryptoKeyPair;
  rootSubject: string;
  now: Date;
}): Promise<IssuedCert> {
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: `CN=${params.serverId}, OU=${params.rackId}, O=hsmpool simulated platform`,
      issuer: params.rootSubject,
      notBefore: new Date(params.now.getTime() - BACKDATE_MS),
      notAfter: new Date(params.now.getTime() + VALIDITY_MS),
      signingKey: params.rootKeys.privateKey,
      publicKey: params.platformPublicKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(params.platformPublicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(params.rootKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return issued(cert);
}

export function derToPem(der: Uint8Array): string {
  return x509.PemConverter.encode(der, "CERTIFICATE");
}
