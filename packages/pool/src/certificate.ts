/**
 * Pool certificates: small canonical signed structures (deliberately not X.509).
 *
 * - The owner root certificate is self-signed by the owner root key, which is made in
 *   the first primary's HSM partition and never leaves an HSM except ECDH-wrapped.
 * - A partition certificate binds a member's partition transfer key (the ECDH key the
 *   DEK is wrapped to) to this pool; it is signed by the owner root key.
 *
 * Signed bytes ("to-be-signed", TBS), big-endian, strings u32-length-prefixed UTF-8:
 *
 *   "HPCT" | version 1 (u8) | role (u8: 1 ownerRoot, 2 partition) | poolId | subject
 *   | partitionId | publicKey (canonical JWK: u32 count, sorted name/value pairs)
 *   | issuerFingerprint
 *
 * signature = ES384 (ECDSA P-384 over SHA-384, JOSE r||s, 96 bytes) over the TBS.
 * Fingerprints are lowercase hex SHA-256: of the TBS followed by the signature for a
 * certificate, of "hsmpool/public-key/v1\n" + canonical JWK for a public key.
 */
import { type ByteReader, ByteWriter, concatBytes, utf8 } from "@hsmpool/codec";
import { fail } from "@hsmpool/errors";
import { p384 } from "@noble/curves/nist.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { base64UrlDecode, type P384PublicJwk, readJwk, validateP384Jwk, writeJwk } from "./jwk.js";
import { bad, requireFingerprint, requireIdentifier } from "./validate.js";

const sha256Hex = (...parts: Uint8Array[]): string => bytesToHex(sha256(concatBytes(...parts)));

export type CertificateRole = "ownerRoot" | "partition";

export interface PoolCertificate {
  readonly role: CertificateRole;
  readonly poolId: string;
  /** The node whose HSM partition holds the certified key. */
  readonly subject: string;
  /** That partition's id (the HSM's "<device id>/p<index>"). */
  readonly partitionId: string;
  readonly publicKey: P384PublicJwk;
  /** publicKeyFingerprint of the signing key (the owner root; its own key for the root itself). */
  readonly issuerFingerprint: string;
  /** ES384 over certificateSigningBytes, JOSE r||s. */
  readonly signature: Uint8Array;
}

export type UnsignedCertificate = Omit<PoolCertificate, "signature">;

export const SIGNATURE_BYTES = 96;
const ROLES: readonly CertificateRole[] = ["ownerRoot", "partition"];
const MAX_FIELD_BYTES = 512;

export function publicKeyFingerprint(jwk: P384PublicJwk): string {
  const w = new ByteWriter();
  writeJwk(w, jwk);
  return sha256Hex(utf8("hsmpool/public-key/v1\n"), w.finish());
}

/** Fingerprint of an HSM key by its id (the DEK, the pool key): stable across transfer, reveals nothing. */
export function keyFingerprint(keyId: string): string {
  return sha256Hex(utf8(`hsmpool/hsm-key-id/v1\n${keyId}`));
}

export function validateUnsignedCertificate(input: unknown, field = "certificate"): UnsignedCertificate {
  const c = input as Partial<Record<keyof PoolCertificate, unknown>> | null;
  if (typeof c !== "object" || c === null) bad(field, `${field} must be an object`);
  if (!ROLES.includes(c.role as CertificateRole))
    bad(field, `${field}.role must be "ownerRoot" or "partition"`);
  return {
    role: c.role as CertificateRole,
    poolId: requireIdentifier(c.poolId, `${field}.poolId`),
    subject: requireIdentifier(c.subject, `${field}.subject`),
    partitionId: requireIdentifier(c.partitionId, `${field}.partitionId`),
    publicKey: validateP384Jwk(c.publicKey, `${field}.publicKey`),
    issuerFingerprint: requireFingerprint(c.issuerFingerprint, `${field}.issuerFingerprint`),
  };
}

export function validateCertificate(input: unknown, field = "certificate"): PoolCertificate {
  const body = validateUnsignedCertificate(input, field);
  const signature = (input as { signature?: unknown }).signature;
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_BYTES) {
    bad(field, `${field}.signature must be a ${SIGNATURE_BYTES}-byte ES384 signature`);
  }
  return Object.freeze({ ...body, signature: Uint8Array.from(signature) });
}

/** The exact bytes the owner root key signs. */
export function certificateSigningBytes(cert: UnsignedCertificate): Uint8Array {
  const w = new ByteWriter()
    .raw(utf8("HPCT"))
    .u8(1)
    .u8(ROLES.indexOf(cert.role) + 1)
    .string(cert.poolId)
    .string(cert.subject)
    .string(cert.partitionId);
  writeJwk(w, cert.publicKey);
  return w.string(cert.issuerFingerprint).finish();
}

export function certificateFingerprint(cert: PoolCertificate): string {
  return sha256Hex(certificateSigningBytes(cert), cert.signature);
}

/**
 * Signatures already found valid, by issuer key, signature and signed bytes (the whole
 * input, so a hit is exactly a repeated verification). A member checks the same few
 * certificates again on every Genesis apply, restart, sync and DEK request, and one
 * pure-JS P-384 verification costs milliseconds. Only successes are kept; bounded.
 */
const verifiedSignatures = new Set<string>();
const MAX_VERIFIED_SIGNATURES = 256;

/** True when `cert.signature` is a valid ES384 signature of its TBS bytes by `issuerKey`. */
export function signatureValid(cert: PoolCertificate, issuerKey: P384PublicJwk): boolean {
  const x = base64UrlDecode(issuerKey.x);
  const y = base64UrlDecode(issuerKey.y);
  if (!x || !y) return false;
  const point = new Uint8Array(97);
  point[0] = 4;
  point.set(x, 1);
  point.set(y, 49);
  const tbs = certificateSigningBytes(cert);
  const memo = `${bytesToHex(point)}.${bytesToHex(cert.signature)}.${bytesToHex(tbs)}`;
  if (verifiedSignatures.has(memo)) return true;
  let valid: boolean;
  try {
    // HSM (OpenSSL) signatures are not low-S normalised, so high-S must be accepted.
    valid = p384.verify(cert.signature, tbs, point, { lowS: false });
  } catch {
    return false;
  }
  if (valid) {
    if (verifiedSignatures.size >= MAX_VERIFIED_SIGNATURES) verifiedSignatures.clear();
    verifiedSignatures.add(memo);
  }
  return valid;
}

/** Checks an owner root certificate: role, pool, self-issued and self-signed. Throws Forbidden. */
export function verifyOwnerRootCertificate(cert: PoolCertificate, poolId: string): void {
  if (cert.role !== "ownerRoot") fail("Forbidden", "certificate is not an owner root certificate");
  if (cert.poolId !== poolId) {
    fail("Forbidden", `owner root certificate belongs to pool ${cert.poolId}, not ${poolId}`);
  }
  if (cert.issuerFingerprint !== publicKeyFingerprint(cert.publicKey)) {
    fail("Forbidden", "owner root certificate is not self-issued (issuer fingerprint is not its own key)");
  }
  if (!signatureValid(cert, cert.publicKey)) {
    fail("Forbidden", "owner root certificate signature does not verify under its own key");
  }
}

/**
 * Checks that a partition certificate chains to the pool's owner root: same pool,
 * issued by the owner root key, signature valid. Throws Forbidden naming the failure.
 */
export function verifyPartitionCertificate(cert: PoolCertificate, ownerRoot: PoolCertificate): void {
  if (cert.role !== "partition") fail("Forbidden", "certificate is not a partition certificate");
  if (cert.poolId !== ownerRoot.poolId) {
    fail("Forbidden", `partition certificate belongs to pool ${cert.poolId}, not ${ownerRoot.poolId}`);
  }
  if (cert.issuerFingerprint !== publicKeyFingerprint(ownerRoot.publicKey)) {
    fail("Forbidden", "partition certificate was not issued by this pool's owner root");
  }
  if (!signatureValid(cert, ownerRoot.publicKey)) {
    fail("Forbidden", "partition certificate is not signed by this pool's owner root");
  }
}

export function writeCertificate(w: ByteWriter, cert: PoolCertificate): void {
  w.u8(ROLES.indexOf(cert.role) + 1)
    .string(cert.poolId)
    .string(cert.subject)
    .string(cert.partitionId);
  writeJwk(w, cert.publicKey);
  w.string(cert.issuerFingerprint).bytes(cert.signature);
}

export function readCertificate(r: ByteReader, field: string): PoolCertificate {
  const role = ROLES[r.u8(`${field} role`) - 1];
  if (!role) r.corrupt(`${field} has an unknown role`);
  const raw = {
    role,
    poolId: r.string(`${field} poolId`, MAX_FIELD_BYTES),
    subject: r.string(`${field} subject`, MAX_FIELD_BYTES),
    partitionId: r.string(`${field} partitionId`, MAX_FIELD_BYTES),
    publicKey: readJwk(r, `${field} publicKey`),
    issuerFingerprint: r.string(`${field} issuerFingerprint`, MAX_FIELD_BYTES),
    signature: r.bytes(`${field} signature`, SIGNATURE_BYTES),
  };
  const cert = validateCertificate(raw, field);
  // A JWK with extra members would be silently dropped by validation: refuse instead.
  if (Object.keys(raw.publicKey).length !== 4) r.corrupt(`${field} publicKey has unexpected members`);
  return cert;
}
