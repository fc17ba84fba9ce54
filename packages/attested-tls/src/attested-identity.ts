/**
 * The node's own RA-TLS identity, made inside a launched enclave: a fresh ECDSA
 * P-256 TLS key, a quote whose report data binds that key, and a leaf certificate
 * issued by the platform's quoting issuer carrying the quote. The private key stays
 * in process memory only: it is held in a module-private WeakMap, never on the
 * identity object, so it cannot reach a file, a log line or JSON by accident.
 */
import "reflect-metadata";
import { createHash, randomBytes, webcrypto, X509Certificate } from "node:crypto";
import { fail } from "@hsmpool/errors";
import {
  type Enclave,
  type EnclaveIdentity,
  generateIsolatedKeyPairSync,
  type QuotingIssuer,
} from "@hsmpool/platform";
import * as x509 from "@peculiar/x509";
import { RA_TLS_QUOTE_OID, reportDataForSpki } from "./quote-binding.js";

/** Default leaf lifetime: short, because a node re-attests whenever it restarts. */
export const DEFAULT_CERT_VALIDITY_MS = 24 * 60 * 60 * 1000;
const MAX_CERT_VALIDITY_MS = 30 * 24 * 60 * 60 * 1000;
/** notBefore is backdated a little so peers with slightly slow clocks accept a fresh cert. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;

// @peculiar/x509 is typed against the DOM `Crypto`; Node's webcrypto is that object at runtime.
const cryptoProvider = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];

/** Public parts of a node's RA-TLS identity (no private key: see {@link tlsPrivateKeyPem}). */
export interface AttestedIdentity {
  /** The enclave this identity was made in (its own view of itself). */
  readonly enclave: EnclaveIdentity;
  /** Leaf first, then the platform attestation certificate (the vendor root does not travel). */
  readonly certChainDer: readonly Uint8Array[];
  readonly certChainPem: string;
  /** SHA-256 of the leaf DER, lower-case hex. */
  readonly certFingerprint: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface CreateAttestedIdentityOptions {
  /** Leaf lifetime (default 24 h, at most 30 days). */
  validityMs?: number;
  /** Clock for the validity window (default: now). */
  now?: Date;
}

const privateKeys = new WeakMap<AttestedIdentity, string>();

/** The PKCS#8 PEM of an identity's TLS key, for this package's TLS contexts only. Never export it further. */
export function tlsPrivateKeyPem(identity: AttestedIdentity): string {
  return (
    privateKeys.get(identity) ??
    fail("BadParameter", "not an attested identity made by createAttestedIdentity (no TLS key for it)")
  );
}

function serialNumber(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive INTEGER
  return b.toString("hex");
}

function toPem(der: Uint8Array): string {
  return new X509Certificate(Buffer.from(der)).toString();
}

export const sha256Hex = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");

export interface IssueLeafParams {
  issuer: QuotingIssuer;
  /** SubjectPublicKeyInfo DER of the key being certified. */
  spkiDer: Uint8Array;
  quote: Uint8Array;
  commonName: string;
  notBefore: Date;
  notAfter: Date;
}

/**
 * The quoting issuer's half of RA-TLS: certifies `spkiDer` with the quote in the
 * extension, serverAuth + clientAuth, SANs for loopback. It does NOT check that the
 * quote binds the key; verifiers do (see verifyPeer's key-binding check).
 */
export async function issueAttestedLeaf(p: IssueLeafParams): Promise<Uint8Array> {
  const platformCertDer = p.issuer.chainDer[0] ?? fail("BadParameter", "quoting issuer has no certificate");
  const platformCert = new x509.X509Certificate(platformCertDer);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: new x509.Name([{ CN: [p.commonName] }, { O: ["hsmpool TEE node"] }]),
      // The issuer's own encoded name, byte for byte, so OpenSSL's name chaining matches.
      issuer: platformCert.subjectName,
      notBefore: p.notBefore,
      notAfter: p.notAfter,
      publicKey: p.spkiDer,
      signingKey: p.issuer.signingKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension(
          [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
          false,
        ),
        new x509.SubjectAlternativeNameExtension(
          [
            { type: "ip", value: "127.0.0.1" },
            { type: "dns", value: "localhost" },
          ],
          false,
        ),
        await x509.AuthorityKeyIdentifierExtension.create(platformCert.publicKey, false, cryptoProvider),
        new x509.Extension(RA_TLS_QUOTE_OID, false, p.quote),
      ],
    },
    cryptoProvider,
  );
  return new Uint8Array(cert.rawData);
}

function checkValidity(validityMs: number): void {
  if (!Number.isInteger(validityMs) || validityMs <= 0 || validityMs > MAX_CERT_VALIDITY_MS) {
    fail(
      "BadParameter",
      `certificate validity must be a whole number of milliseconds from 1 to ${MAX_CERT_VALIDITY_MS}, got ${validityMs}`,
      { field: "validityMs" },
    );
  }
}

/** Makes the node's RA-TLS key and certificate inside `enclave` (see the module comment). */
export async function createAttestedIdentity(
  enclave: Enclave,
  opts: CreateAttestedIdentityOptions = {},
): Promise<AttestedIdentity> {
  const validityMs = opts.validityMs ?? DEFAULT_CERT_VALIDITY_MS;
  checkValidity(validityMs);
  const now = opts.now ?? new Date();
  if (Number.isNaN(now.getTime())) fail("BadParameter", "now must be a valid date", { field: "now" });

  const { privateKey, publicKey } = generateIsolatedKeyPairSync({ type: "ec", namedCurve: "P-256" });
  const spkiDer = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
  const quote = enclave.getQuote(reportDataForSpki(spkiDer));
  const issuer = await enclave.quotingIssuer();
  const notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  const notAfter = new Date(now.getTime() + validityMs);
  const leafDer = await issueAttestedLeaf({
    issuer,
    spkiDer,
    quote,
    commonName: `hsmpool node ${enclave.identity.serverId} ${enclave.identity.mrenclave.slice(0, 16)}`,
    notBefore,
    notAfter,
  });
  const certChainDer = [leafDer, ...issuer.chainDer.map((d) => new Uint8Array(d))];
  const identity: AttestedIdentity = Object.freeze({
    enclave: Object.freeze({ ...enclave.identity }),
    certChainDer: Object.freeze(certChainDer),
    certChainPem: certChainDer.map(toPem).join(""),
    certFingerprint: sha256Hex(leafDer),
    notBefore,
    notAfter,
  });
  privateKeys.set(identity, privateKey.export({ type: "pkcs8", format: "pem" }) as string);
  return identity;
}
