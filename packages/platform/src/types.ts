/**
 * Public data shapes of @hsmpool/platform. Everything here is public data: no type
 * in this file ever carries a private key, the CPU fuse or a sealing key.
 */

import type { webcrypto } from "node:crypto";

/** Lower-case hex string (SHA-256 digests are 64 hex characters). */
export type Hex = string;

/** Size of the report data every quote carries (SGX-style REPORTDATA). */
export const REPORT_DATA_SIZE_BYTES = 64;

/** The SIGSTRUCT file a signed bundle carries at its root (excluded from the measurement). */
export const SIGSTRUCT_FILE = "sigstruct.bin";

export interface FabricInitOptions {
  /** Number of racks (default 3). */
  racks?: number;
  /** Servers in each rack (default 2). */
  serversPerRack?: number;
  /** Clock injection for certificate validity and `createdAt` (default: now). */
  now?: Date;
  /** Called with a one-line progress message once the directory checks pass and after each rack. */
  onProgress?: (message: string) => void;
}

export interface ServerInfo {
  /** e.g. "r1-s1" */
  id: string;
  /** e.g. "rack-1" */
  rack: string;
  /** SHA-256 of the platform attestation certificate DER, lower-case hex. */
  platformCertFingerprint: Hex;
}

export interface RackInfo {
  /** e.g. "rack-1" */
  id: string;
  servers: ServerInfo[];
}

/** The fabric inventory: public data only (this is what `fabric.json` and `fabric show --json` hold). */
export interface FabricInfo {
  fabricId: string;
  /** ISO-8601 */
  createdAt: string;
  vendorRoot: { subject: string; fingerprintSha256: Hex };
  racks: RackInfo[];
}

/** One simulated server. Public data only; its secrets are opened by `launchEnclave`. */
export interface ServerHandle {
  readonly id: string;
  readonly rackId: string;
  /** `<fabric>/racks/<rack>/<server>` */
  readonly dir: string;
  /** `<server dir>/hsm`: where the HSM device keeps its state. */
  readonly hsmDir: string;
  readonly platformCertDer: Uint8Array;
  readonly platformCertPem: string;
}

export interface Fabric {
  readonly dir: string;
  readonly info: FabricInfo;
  /** The only attestation trust anchor of this fabric. */
  readonly vendorRootCertDer: Uint8Array;
  readonly vendorRootCertPem: string;
  /** Throws NotFound for an unknown server id. */
  server(serverId: string): ServerHandle;
  /** Every server, rack by rack. */
  servers(): ServerHandle[];
}

/** What a launched enclave is: code identity plus where it runs. */
export interface EnclaveIdentity {
  mrenclave: Hex;
  mrsigner: Hex;
  productId: number;
  svn: number;
  debug: boolean;
  serverId: string;
  rackId: string;
}

export type SealPolicy = "mrsigner" | "mrenclave";

export interface SealOptions {
  /** "mrenclave": only this exact code may unseal; "mrsigner": any code of the same signer + product id with SVN >= the sealer's. */
  policy: SealPolicy;
  /** Associated data the caller binds to the blob; the same bytes are needed to unseal. */
  aad?: Uint8Array;
}

export interface UnsealOptions {
  aad?: Uint8Array;
}

export interface QuoteOptions {
  /** Verifier-supplied freshness value (0..64 bytes), signed into the quote. */
  nonce?: Uint8Array;
}

/**
 * A running enclave. `getQuote`, `seal` and `unseal` are synchronous so protocol
 * shells can call them without scheduling.
 */
export interface Enclave {
  readonly identity: EnclaveIdentity;
  /** `reportData` must be exactly 64 bytes (BadParameter otherwise). */
  getQuote(reportData: Uint8Array, opts?: QuoteOptions): Uint8Array;
  /**
   * Models the platform's quoting enclave issuing an attestation certificate for a
   * key this enclave made: the platform attestation cert chain (DER, leaf-most first,
   * vendor root not included) and a non-extractable WebCrypto ECDSA P-256 key that can
   * sign X.509 certificates chaining to the vendor root.
   */
  quotingIssuer(): Promise<QuotingIssuer>;
  seal(plaintext: Uint8Array, opts: SealOptions): Uint8Array;
  /** Throws IntegrityError for any blob this enclave may not open (other server, other code, tampered, wrong aad). */
  unseal(blob: Uint8Array, opts?: UnsealOptions): Uint8Array;
}

export interface QuotingIssuer {
  chainDer: Uint8Array[];
  signingKey: webcrypto.CryptoKey;
}

/** One allowed code signer; optional product id and minimum SVN narrow it. */
export interface SignerRule {
  mrsigner: Hex;
  productId?: number;
  minSvn?: number;
}

/** Verifier policy: plain JSON-serialisable data (load files with `parsePolicy`). */
export interface Policy {
  allowedSigners: SignerRule[];
  /** If given, MRENCLAVE must be one of these. */
  allowedMeasurements?: Hex[];
  /** Default false: debug enclaves are refused. */
  allowDebug?: boolean;
}

export interface VerifyOptions {
  /** If given, the quote's 64-byte report data must equal it. */
  expectedReportData?: Uint8Array;
  /** If given, the quote's nonce must equal it. */
  nonce?: Uint8Array;
  /** Clock for certificate validity (default: now). */
  now?: Date;
}

export interface VerifiedIdentity extends EnclaveIdentity {
  reportData: Uint8Array;
  /** Empty when the quote carries no nonce. */
  nonce: Uint8Array;
}

export interface BundleFile {
  /** Relative path with "/" separators. */
  path: string;
  sha256: Hex;
  sizeBytes: number;
}

/**
 * What a process running a bundle loads besides the bundle (measured with it: closure.ts,
 * docs/enclave-measurement.md): the package whose code runs and every package it reaches through
 * dependencies, plus named data directories its code reads as schema (the proto files).
 */
export interface RuntimeClosure {
  /** The running package (e.g. packages/node): its package.json + dist/, then its dependencies. */
  packageDir: string;
  /** Stable name -> directory; measured as `data/<name>/<file>`. */
  dataDirs?: Readonly<Record<string, string>>;
}

export interface BundleMeasurement {
  mrenclave: Hex;
  /** Sorted by path (byte order); the SIGSTRUCT file is not included. */
  files: BundleFile[];
}

export interface SigstructFields {
  productId: number;
  svn: number;
  debug: boolean;
}

/** A decoded SIGSTRUCT. Decoding checks the format only; `verifySigstruct` checks the signature. */
export interface Sigstruct extends SigstructFields {
  mrenclave: Hex;
  /** SHA-256 of the signer's SubjectPublicKeyInfo DER. */
  mrsigner: Hex;
  signerPublicKeyDer: Uint8Array;
  signature: Uint8Array;
}

/** What `inspectBundle` reports (for `hsmpool bundle show`); never throws for a bad signature. */
export interface BundleInspection {
  measurement: BundleMeasurement;
  sigstruct: Sigstruct | null;
  /** Why the SIGSTRUCT could not be read, if it could not. */
  sigstructError: string | null;
  signatureValid: boolean;
  measurementMatches: boolean;
}
