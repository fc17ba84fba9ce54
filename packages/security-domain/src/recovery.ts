/**
 * Disaster recovery: the customer's offline step (`restoreBlob`: decrypt a quorum of
 * shares with their private keys, rebuild the domain key, re-wrap it to the blank
 * pool's exchange key) and the TEE's step (`openUpload`: unwrap with the exchange
 * private key, open the payload). The upload blob carries the security domain itself,
 * so the pool checks the whole chain.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { fail } from "@hsmpool/errors";
import { fromBase64Url, toBase64Url } from "./base64url.js";
import {
  keyIdOf,
  MIN_RSA_BITS,
  parsePrivateKey,
  publicKeyIdOfPrivate,
  rsaOaep256Decrypt,
  rsaOaep256Encrypt,
} from "./certificates.js";
import {
  openPayload,
  parseSecurityDomain,
  requireObject,
  requireText,
  type SecurityDomainFile,
} from "./document.js";
import { combineShares } from "./shamir.js";

export const UPLOAD_FORMAT = "hsmpool-security-domain-upload";
export const UPLOAD_VERSION = 1;

export interface UploadBlob {
  readonly format: typeof UPLOAD_FORMAT;
  readonly version: typeof UPLOAD_VERSION;
  readonly sdId: string;
  /** kid (SPKI SHA-256) of the pool's exchange key this blob is wrapped to. */
  readonly exchangeKeyId: string;
  /** base64url RSA-OAEP-256 of the domain key under the exchange key. */
  readonly wrappedDomainKey: string;
  readonly securityDomain: SecurityDomainFile;
}

export interface RestoreBlobInput {
  securityDomain: unknown;
  /** The customer's private keys (PEM); at least the quorum. */
  privateKeys: readonly string[];
  /** The blank pool's exchange public key (PEM). */
  exchangeKey: string;
}

export function parseExchangeKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    return fail("BadParameter", "the exchange key is not a PEM public key");
  }
  if (key.asymmetricKeyType !== "rsa" || (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS)
    fail("BadParameter", `the exchange key must be RSA of at least ${MIN_RSA_BITS} bits`);
  return key;
}

/** The domain key from a quorum of shares; refuses too few, unknown keys and shares that do not fit. */
export async function recoverDomainKey(
  file: SecurityDomainFile,
  privateKeyPems: readonly string[],
): Promise<Buffer> {
  const byKid = new Map(file.shares.map((s) => [s.kid, s]));
  const used = new Map<string, KeyObject>();
  privateKeyPems.forEach((pem, i) => {
    const key = parsePrivateKey(pem, `private key ${i + 1}`);
    const kid = publicKeyIdOfPrivate(key);
    if (!byKid.has(kid))
      fail(
        "BadParameter",
        `private key ${i + 1} holds no share of security domain ${file.sdId} (a key of another security domain?)`,
      );
    used.set(kid, key);
  });
  if (used.size < file.quorum) {
    fail(
      "BadParameter",
      `security domain ${file.sdId} needs ${file.quorum} of its ${file.shares.length} shares; ${used.size} given`,
      { required: file.quorum, given: used.size },
    );
  }
  const parts = [...used].map(([kid, key]) =>
    rsaOaep256Decrypt(key, fromBase64Url(byKid.get(kid)?.encryptedShare, "share"), `the share for ${kid}`),
  );
  const domainKey = Buffer.from(await combineShares(parts));
  for (const p of parts) p.fill(0);
  try {
    openPayload(file, domainKey).fill(0);
  } catch (e) {
    domainKey.fill(0);
    throw e;
  }
  return domainKey;
}

/** Offline, on the customer's side: the blob `sd upload` sends. */
export async function restoreBlob(input: RestoreBlobInput): Promise<UploadBlob> {
  const file = parseSecurityDomain(input.securityDomain);
  const exchangeKey = parseExchangeKey(input.exchangeKey);
  const domainKey = await recoverDomainKey(file, input.privateKeys);
  try {
    return {
      format: UPLOAD_FORMAT,
      version: UPLOAD_VERSION,
      sdId: file.sdId,
      exchangeKeyId: keyIdOf(exchangeKey),
      wrappedDomainKey: toBase64Url(rsaOaep256Encrypt(exchangeKey, domainKey)),
      securityDomain: file,
    };
  } finally {
    domainKey.fill(0);
  }
}

export function parseUploadBlob(input: unknown): UploadBlob {
  let v = input;
  if (typeof input === "string") {
    try {
      v = JSON.parse(input);
    } catch {
      return fail("BadParameter", "the upload blob is not JSON");
    }
  }
  const o = requireObject(v, "upload blob");
  if (o.format !== UPLOAD_FORMAT)
    fail("BadParameter", `not a security domain upload blob (format must be "${UPLOAD_FORMAT}")`);
  if (o.version !== UPLOAD_VERSION)
    fail("BadParameter", `upload blob version ${String(o.version)} is not supported`);
  const securityDomain = parseSecurityDomain(o.securityDomain);
  const blob: UploadBlob = {
    format: UPLOAD_FORMAT,
    version: UPLOAD_VERSION,
    sdId: requireText(o.sdId, "sdId"),
    exchangeKeyId: requireText(o.exchangeKeyId, "exchangeKeyId"),
    wrappedDomainKey: toBase64Url(fromBase64Url(o.wrappedDomainKey, "wrappedDomainKey")),
    securityDomain,
  };
  if (Object.keys(o).length !== Object.keys(blob).length)
    fail("BadParameter", "the upload blob has unknown fields");
  if (blob.sdId !== securityDomain.sdId)
    fail("BadParameter", "the upload blob's sdId does not match its security domain");
  return blob;
}

/** In the TEE: the security domain's payload, if the blob was made for this exchange key. */
export function openUpload(input: unknown, exchangePrivateKey: KeyObject): { sdId: string; payload: Buffer } {
  const blob = parseUploadBlob(input);
  if (blob.exchangeKeyId !== publicKeyIdOfPrivate(exchangePrivateKey)) {
    fail(
      "BadParameter",
      "the upload blob was made for another exchange key: run sd init-recovery and restore-blob again",
    );
  }
  const domainKey = rsaOaep256Decrypt(
    exchangePrivateKey,
    fromBase64Url(blob.wrappedDomainKey, "wrappedDomainKey"),
    "the upload blob's wrapped key",
  );
  try {
    return { sdId: blob.sdId, payload: openPayload(blob.securityDomain, domainKey) };
  } finally {
    domainKey.fill(0);
  }
}
