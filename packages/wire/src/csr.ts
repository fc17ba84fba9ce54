/**
 * An in-memory key pair plus the PKCS#10 CSR for it — how a data-plane client (the
 * CLI, the SDK, the HFC's own health poller) asks the fabric CA for a certificate.
 * The private key exists only in this process's memory; grpc-js wants it as PEM
 * bytes, so it is handed out as a Buffer the caller may zero when done.
 */
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

const crypto = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];
const EC_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;

export interface CsrKeyPair {
  csrDer: Uint8Array;
  /** PKCS#8 PEM of the private key, in memory only. Never write it anywhere. */
  privateKeyPem: Buffer;
}

export async function createCsrKeyPair(commonName = "hsmpool-client"): Promise<CsrKeyPair> {
  const keys = (await webcrypto.subtle.generateKey(EC_P256, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    { name: `CN=${commonName}`, keys, signingAlgorithm: { name: "ECDSA", hash: "SHA-256" } },
    crypto,
  );
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  const privateKeyPem = Buffer.from(x509.PemConverter.encode(pkcs8, "PRIVATE KEY"));
  pkcs8.fill(0);
  return { csrDer: new Uint8Array(csr.rawData), privateKeyPem };
}

export function certDerToPem(der: Uint8Array): string {
  return x509.PemConverter.encode(Uint8Array.from(der), "CERTIFICATE");
}
