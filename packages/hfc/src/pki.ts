/**
 * The fabric PKI (DESIGN.md step 6): a CA that signs node data-plane server
 * certificates and client certificates from CSRs. The CA never sees a subject's
 * private key, ignores the names a CSR asks for and sets them itself. Its own
 * private key lives in memory as a non-extractable WebCrypto key and on disk only
 * sealed (ca-key-store.ts).
 *
 * Names it issues: node certs `CN=<nodeId>, O=hsmpool pool <poolId>` with SAN
 * DNS:<nodeId>, DNS:hsmpool-node, DNS:localhost, IP:127.0.0.1 and EKU serverAuth +
 * clientAuth; client certs `CN=hsmpool-client-<serial>` with EKU clientAuth only
 * (so a client certificate can never pass as a node's server certificate).
 */
import "reflect-metadata";
import { randomBytes, webcrypto } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fail } from "@hsmpool/errors";
import { writeFileAtomic } from "@hsmpool/files";
import { NODE_TLS_NAME, PUBLIC_FILE_MODE } from "@hsmpool/wire";
import * as x509 from "@peculiar/x509";
import { loadOrCreateKek, sealCaKey, unsealCaKey } from "./ca-key-store.js";

// @peculiar/x509 is typed against the DOM `Crypto`; Node's webcrypto is that object at runtime.
const crypto = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];
x509.cryptoProvider.set(crypto);

/** Clients set this TLS server name; every node certificate carries it as a DNS SAN. */
export const CA_CERT_FILE = "ca.crt";
export const CA_KEY_FILE = "ca.key.enc";
export const CA_KEK_FILE = "ca-kek.bin";

const EC_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;
const BACKDATE_MS = 5 * 60 * 1000;
const CA_VALIDITY_MS = 5 * 365 * 24 * 3600 * 1000;
export const NODE_CERT_VALIDITY_MS = 7 * 24 * 3600 * 1000;
export const CLIENT_CERT_VALIDITY_MS = 24 * 3600 * 1000;
const MAX_CSR_BYTES = 16 * 1024;
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function serialNumber(): string {
  const b = randomBytes(16);
  b[0] = (b[0] as number) & 0x7f; // a positive INTEGER
  return b.toString("hex");
}

export interface IssuedCertificate {
  certDer: Uint8Array;
  certPem: string;
  caCertDer: Uint8Array;
}

/** Parses and checks a PKCS#10 CSR: well-formed, self-signature valid, an accepted key type. */
async function checkedCsr(csrDer: Uint8Array): Promise<x509.Pkcs10CertificateRequest> {
  if (!(csrDer instanceof Uint8Array) || csrDer.length === 0 || csrDer.length > MAX_CSR_BYTES) {
    fail("BadParameter", `csr_der must be a DER PKCS#10 request of 1..${MAX_CSR_BYTES} bytes`, {
      field: "csr_der",
    });
  }
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(Uint8Array.from(csrDer));
  } catch {
    return fail("BadParameter", "csr_der is not a DER PKCS#10 certificate request", { field: "csr_der" });
  }
  const ok = await csr.verify().catch(() => false);
  if (!ok) fail("BadParameter", "the CSR's self-signature does not verify", { field: "csr_der" });
  const alg = csr.publicKey.algorithm as { name: string; namedCurve?: string; modulusLength?: number };
  const accepted =
    (alg.name === "ECDSA" && (alg.namedCurve === "P-256" || alg.namedCurve === "P-384")) ||
    ((alg.name === "RSASSA-PKCS1-v1_5" || alg.name === "RSA-PSS") && (alg.modulusLength ?? 0) >= 2048);
  if (!accepted) {
    fail("BadParameter", "the CSR key must be ECDSA P-256/P-384 or RSA of at least 2048 bits", {
      field: "csr_der",
    });
  }
  return csr;
}

export interface FabricCaOptions {
  /** Clock for validity windows (default: system clock). */
  now?: () => Date;
}

export class FabricCa {
  private constructor(
    private readonly cert: x509.X509Certificate,
    private readonly privateKey: webcrypto.CryptoKey,
    private readonly now: () => Date,
  ) {}

  /** Opens the CA in `pkiDir`, or creates it there (cert, sealed key, 0600 key-encryption key). */
  static async openOrCreate(pkiDir: string, opts: FabricCaOptions = {}): Promise<FabricCa> {
    const now = opts.now ?? (() => new Date());
    const certPem = await readFile(join(pkiDir, CA_CERT_FILE), "utf8").catch(() => null);
    if (certPem !== null) return FabricCa.open(pkiDir, certPem, now);
    return FabricCa.create(pkiDir, now);
  }

  private static async open(pkiDir: string, certPem: string, now: () => Date): Promise<FabricCa> {
    let cert: x509.X509Certificate;
    try {
      cert = new x509.X509Certificate(certPem);
    } catch {
      return fail("IntegrityError", `${join(pkiDir, CA_CERT_FILE)} is not a PEM certificate`);
    }
    const kek = await loadOrCreateKek(join(pkiDir, CA_KEK_FILE), false);
    const sealed = await readFile(join(pkiDir, CA_KEY_FILE)).catch(() =>
      fail("IntegrityError", `${join(pkiDir, CA_KEY_FILE)} is missing: the fabric CA cannot sign`),
    );
    const pkcs8 = unsealCaKey(new Uint8Array(sealed), kek, new Uint8Array(cert.rawData));
    kek.fill(0);
    try {
      const privateKey = await webcrypto.subtle.importKey("pkcs8", pkcs8, EC_P256, false, ["sign"]);
      return new FabricCa(cert, privateKey, now);
    } finally {
      pkcs8.fill(0);
    }
  }

  private static async create(pkiDir: string, now: () => Date): Promise<FabricCa> {
    const keys = (await webcrypto.subtle.generateKey(EC_P256, true, [
      "sign",
      "verify",
    ])) as webcrypto.CryptoKeyPair;
    const t = now().getTime();
    const cert = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: serialNumber(),
        name: `CN=hsmpool fabric CA ${randomBytes(4).toString("hex")}, O=hsmpool fabric PKI`,
        notBefore: new Date(t - BACKDATE_MS),
        notAfter: new Date(t + CA_VALIDITY_MS),
        keys,
        signingAlgorithm: SIGNING_ALGORITHM,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        ],
      },
      crypto,
    );
    const certDer = new Uint8Array(cert.rawData);
    const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
    const kek = await loadOrCreateKek(join(pkiDir, CA_KEK_FILE), true);
    try {
      await writeFileAtomic(join(pkiDir, CA_KEY_FILE), sealCaKey(pkcs8, kek, certDer), 0o600);
      const privateKey = await webcrypto.subtle.importKey("pkcs8", pkcs8, EC_P256, false, ["sign"]);
      // The certificate goes last: its presence marks a complete CA directory.
      await writeFileAtomic(join(pkiDir, CA_CERT_FILE), cert.toString("pem"), PUBLIC_FILE_MODE);
      return new FabricCa(cert, privateKey, now);
    } finally {
      pkcs8.fill(0);
      kek.fill(0);
    }
  }

  get caCertDer(): Uint8Array {
    return new Uint8Array(this.cert.rawData);
  }

  get caCertPem(): string {
    return this.cert.toString("pem");
  }

  /** A node's data-plane server certificate for the key in its CSR. */
  async issueNodeCert(nodeId: string, poolId: string, csrDer: Uint8Array): Promise<IssuedCertificate> {
    if (!NODE_ID.test(nodeId))
      fail("BadParameter", `node_id ${JSON.stringify(nodeId)} is not a node id`, { field: "node_id" });
    const csr = await checkedCsr(csrDer);
    return this.issue({
      subject: `CN=${nodeId}, O=hsmpool pool ${poolId}`,
      publicKey: csr.publicKey,
      validityMs: NODE_CERT_VALIDITY_MS,
      extensions: [
        new x509.ExtendedKeyUsageExtension([
          x509.ExtendedKeyUsage.serverAuth,
          x509.ExtendedKeyUsage.clientAuth,
        ]),
        new x509.SubjectAlternativeNameExtension([
          { type: "dns", value: nodeId },
          { type: "dns", value: NODE_TLS_NAME },
          { type: "dns", value: "localhost" },
          { type: "ip", value: "127.0.0.1" },
        ]),
      ],
    });
  }

  /** A data-plane client certificate for the key in the CSR (the subject it asks for is ignored). */
  async issueClientCert(csrDer: Uint8Array): Promise<IssuedCertificate> {
    const csr = await checkedCsr(csrDer);
    return this.issue({
      subject: `CN=hsmpool-client-${randomBytes(6).toString("hex")}, O=hsmpool clients`,
      publicKey: csr.publicKey,
      validityMs: CLIENT_CERT_VALIDITY_MS,
      extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
    });
  }

  private async issue(params: {
    subject: string;
    publicKey: x509.PublicKey;
    validityMs: number;
    extensions: x509.Extension[];
  }): Promise<IssuedCertificate> {
    const t = this.now().getTime();
    const subjectKey = await params.publicKey.export(crypto);
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serialNumber(),
        subject: params.subject,
        issuer: this.cert.subject,
        notBefore: new Date(t - BACKDATE_MS),
        notAfter: new Date(t + params.validityMs),
        signingKey: this.privateKey,
        publicKey: params.publicKey,
        signingAlgorithm: SIGNING_ALGORITHM,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(
            x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
            true,
          ),
          await x509.SubjectKeyIdentifierExtension.create(subjectKey, false, crypto),
          await x509.AuthorityKeyIdentifierExtension.create(this.cert, false, crypto),
          ...params.extensions,
        ],
      },
      crypto,
    );
    return {
      certDer: new Uint8Array(cert.rawData),
      certPem: cert.toString("pem"),
      caCertDer: this.caCertDer,
    };
  }
}
