/**
 * The security-domain file (versioned JSON, see README): a payload made inside the TEE,
 * encrypted under a fresh AES-256-GCM key whose Shamir shares are each encrypted to one
 * customer RSA key (RSA-OAEP-256). The header (everything but the ciphertexts) is the
 * payload's AAD, so no field can be changed without the file being refused.
 */
import { randomBytes } from "node:crypto";
import { fail } from "@hsmpool/errors";
import { aesGcmOpen, aesGcmSeal, type Sealed } from "./aes-gcm.js";
import { fromBase64Url, toBase64Url } from "./base64url.js";
import { parseCertificates, rsaOaep256Encrypt } from "./certificates.js";
import { MAX_SHARES, MIN_SHARES, requireQuorum, splitSecret } from "./shamir.js";

export const SD_FORMAT = "hsmpool-security-domain";
export const SD_VERSION = 1;

export interface EncryptedShare {
  /** x5t#S256 of the customer's certificate. */
  readonly "x5t#S256": string;
  /** base64url SHA-256 of the public key (SPKI DER): finds the share for a private key. */
  readonly kid: string;
  readonly alg: "RSA-OAEP-256";
  /** base64url RSA-OAEP-256 ciphertext of one Shamir share of the domain key. */
  readonly encryptedShare: string;
}

export interface SealedJson {
  readonly enc: "A256GCM";
  readonly iv: string;
  readonly ciphertext: string;
  readonly tag: string;
}

export interface SecurityDomainFile {
  readonly format: typeof SD_FORMAT;
  readonly version: typeof SD_VERSION;
  /** Public id of the domain (derived from its secret, never the secret). */
  readonly sdId: string;
  readonly poolId: string;
  readonly createdAt: string;
  readonly quorum: number;
  readonly shares: readonly EncryptedShare[];
  /** The TEE-made payload under the domain key. */
  readonly encryptedData: SealedJson;
}

export interface CreateDomainInput {
  sdId: string;
  poolId: string;
  createdAt: string;
  /** PEM certificates, 3..10. */
  certificates: readonly string[];
  quorum: number;
  /** The secrets, as bytes; encrypted here and never written in the clear. */
  payload: Uint8Array;
}

/** The canonical header bytes: the AAD of the payload. */
export function headerAad(file: Omit<SecurityDomainFile, "encryptedData">): Buffer {
  const shares = file.shares.map((s) => [s["x5t#S256"], s.kid, s.alg, s.encryptedShare]);
  return Buffer.from(
    JSON.stringify([file.format, file.version, file.sdId, file.poolId, file.createdAt, file.quorum, shares]),
  );
}

export function sealedToJson(s: Sealed): SealedJson {
  return {
    enc: "A256GCM",
    iv: toBase64Url(s.iv),
    ciphertext: toBase64Url(s.ciphertext),
    tag: toBase64Url(s.tag),
  };
}

export function sealedFromJson(v: unknown, what: string): Sealed {
  const o = requireObject(v, what);
  if (o.enc !== "A256GCM") fail("BadParameter", `${what}.enc must be "A256GCM"`);
  return {
    iv: fromBase64Url(o.iv, `${what}.iv`),
    ciphertext: fromBase64Url(o.ciphertext, `${what}.ciphertext`),
    tag: fromBase64Url(o.tag, `${what}.tag`),
  };
}

/** Made inside the TEE: encrypt the payload, split the key, encrypt each share to one certificate. */
export async function createSecurityDomain(input: CreateDomainInput): Promise<SecurityDomainFile> {
  const certs = parseCertificates(input.certificates, MIN_SHARES, MAX_SHARES);
  const quorum = requireQuorum(input.quorum, certs.length);
  const domainKey = randomBytes(32);
  try {
    const parts = await splitSecret(domainKey, certs.length, quorum);
    const shares: EncryptedShare[] = certs.map((c, i) => ({
      "x5t#S256": c.thumbprint,
      kid: c.keyId,
      alg: "RSA-OAEP-256",
      encryptedShare: toBase64Url(rsaOaep256Encrypt(c.publicKey, parts[i] as Uint8Array)),
    }));
    for (const p of parts) p.fill(0);
    const header = {
      format: SD_FORMAT,
      version: SD_VERSION,
      sdId: input.sdId,
      poolId: input.poolId,
      createdAt: input.createdAt,
      quorum,
      shares,
    } as const;
    const encryptedData = sealedToJson(aesGcmSeal(domainKey, input.payload, headerAad(header)));
    return { ...header, encryptedData };
  } finally {
    domainKey.fill(0);
  }
}

/** Parses and validates a security-domain file (JSON text or value); refuses anything malformed. */
export function parseSecurityDomain(input: unknown): SecurityDomainFile {
  let v = input;
  if (typeof input === "string") {
    try {
      v = JSON.parse(input);
    } catch {
      return fail("BadParameter", "the security domain file is not JSON");
    }
  }
  const o = requireObject(v, "security domain");
  if (o.format !== SD_FORMAT)
    fail("BadParameter", `not a security domain file (format must be "${SD_FORMAT}")`);
  if (o.version !== SD_VERSION)
    fail(
      "BadParameter",
      `security domain version ${String(o.version)} is not supported (this build reads ${SD_VERSION})`,
    );
  const shares = Array.isArray(o.shares) ? o.shares.map((s, i) => parseShare(s, i)) : [];
  if (shares.length < MIN_SHARES || shares.length > MAX_SHARES)
    fail("BadParameter", `a security domain holds ${MIN_SHARES} to ${MAX_SHARES} shares`);
  if (new Set(shares.map((s) => s.kid)).size !== shares.length)
    fail("BadParameter", "the security domain lists one key twice");
  const file: SecurityDomainFile = {
    format: SD_FORMAT,
    version: SD_VERSION,
    sdId: requireText(o.sdId, "sdId"),
    poolId: requireText(o.poolId, "poolId"),
    createdAt: requireText(o.createdAt, "createdAt"),
    quorum: requireQuorum(o.quorum, shares.length),
    shares,
    encryptedData: sealedToJson(sealedFromJson(o.encryptedData, "encryptedData")),
  };
  if (Object.keys(o).length !== Object.keys(file).length)
    fail("BadParameter", "the security domain file has unknown fields");
  return file;
}

/** Opens the payload with the reconstructed domain key; a wrong key or any altered byte is refused. */
export function openPayload(file: SecurityDomainFile, domainKey: Uint8Array): Buffer {
  return aesGcmOpen(
    domainKey,
    sealedFromJson(file.encryptedData, "encryptedData"),
    headerAad(file),
    "the security domain does not open with these shares (altered, or shares from another security domain)",
  );
}

function parseShare(v: unknown, i: number): EncryptedShare {
  const o = requireObject(v, `share ${i + 1}`);
  if (o.alg !== "RSA-OAEP-256") fail("BadParameter", `share ${i + 1}: alg must be RSA-OAEP-256`);
  fromBase64Url(o["x5t#S256"], `share ${i + 1} x5t#S256`);
  fromBase64Url(o.kid, `share ${i + 1} kid`);
  fromBase64Url(o.encryptedShare, `share ${i + 1} encryptedShare`);
  if (Object.keys(o).length !== 4) fail("BadParameter", `share ${i + 1} has unknown fields`);
  return {
    "x5t#S256": o["x5t#S256"] as string,
    kid: o.kid as string,
    alg: "RSA-OAEP-256",
    encryptedShare: o.encryptedShare as string,
  };
}

export function requireObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    fail("BadParameter", `${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

export function requireText(v: unknown, what: string): string {
  if (typeof v !== "string" || v.length === 0 || v.length > 256)
    fail("BadParameter", `${what} must be a short string`);
  return v;
}
