/**
 * Ownership messages between members, carried over the attested (RA-TLS) channel.
 * Blobs are opaque HSM transfer blobs (ECDH-wrapped between two partitions); nothing
 * in a message is secret in the clear.
 *
 * Wire bytes = frame("HPM1", version 1, kind (u8) | fields) with an 8-byte SHA-256
 * checksum. `nonce` matches a response to its request (a stale answer is ignored).
 */

import { type ByteReader, ByteWriter } from "@hsmpool/codec";
import { type ErrorCode, fail, isErrorCode, isHsmPoolError } from "@hsmpool/errors";
import {
  type PoolCertificate,
  readCertificate,
  validateCertificate,
  writeCertificate,
} from "./certificate.js";
import { frame, unframe } from "./frame.js";
import { type P384PublicJwk, readJwk, validateP384Jwk, writeJwk } from "./jwk.js";
import { bad, requireBytes, requireIdentifier } from "./validate.js";

export const MESSAGE_FORMAT = { magic: "HPM1", version: 1, what: "ownership message" } as const;
export const MAX_TRANSFER_BLOB_BYTES = 16 * 1024;
const MAX_STRING_BYTES = 1024;
const MAX_REASON_CHARS = 512;

/** "Send me the owner root key": names the partition (and its transfer key) it is to be wrapped to. */
export interface OwnershipRequest {
  readonly kind: "ownershipRequest";
  readonly poolId: string;
  readonly nonce: string;
  readonly partitionId: string;
  readonly transferPublicKey: P384PublicJwk;
}

/** The owner root key as a transfer blob, and the sender's partition certificate (the blob's source). */
export interface OwnershipResponse {
  readonly kind: "ownershipResponse";
  readonly nonce: string;
  readonly ownerRootBlob: Uint8Array;
  readonly sourcePartitionCert: PoolCertificate;
}

/** "Send me the DEK and pool key": proves the requester's partition is in the ownership hierarchy. */
export interface DekRequest {
  readonly kind: "dekRequest";
  readonly poolId: string;
  readonly nonce: string;
  readonly partitionCert: PoolCertificate;
}

export interface DekResponse {
  readonly kind: "dekResponse";
  readonly nonce: string;
  readonly dekBlob: Uint8Array;
  readonly poolKeyBlob: Uint8Array;
  readonly sourcePartitionCert: PoolCertificate;
}

/** The server will not serve this request; `code` says why (OwnershipPending, Forbidden, ...). */
export interface OwnershipRefused {
  readonly kind: "refused";
  readonly nonce: string;
  readonly code: ErrorCode;
  readonly reason: string;
}

export type OwnershipMessage =
  | OwnershipRequest
  | OwnershipResponse
  | DekRequest
  | DekResponse
  | OwnershipRefused;

const KINDS: readonly OwnershipMessage["kind"][] = [
  "ownershipRequest",
  "ownershipResponse",
  "dekRequest",
  "dekResponse",
  "refused",
];

export function validateMessage(input: unknown): OwnershipMessage {
  if (typeof input !== "object" || input === null) bad("message", "ownership message must be an object");
  const m = input as Record<string, unknown>;
  const nonce = requireIdentifier(m.nonce, "nonce");
  switch (m.kind) {
    case "ownershipRequest":
      return Object.freeze({
        kind: m.kind,
        poolId: requireIdentifier(m.poolId, "poolId"),
        nonce,
        partitionId: requireIdentifier(m.partitionId, "partitionId"),
        transferPublicKey: validateP384Jwk(m.transferPublicKey, "transferPublicKey"),
      });
    case "ownershipResponse":
      return Object.freeze({
        kind: m.kind,
        nonce,
        ownerRootBlob: requireBytes(m.ownerRootBlob, "ownerRootBlob", MAX_TRANSFER_BLOB_BYTES),
        sourcePartitionCert: validateCertificate(m.sourcePartitionCert, "sourcePartitionCert"),
      });
    case "dekRequest":
      return Object.freeze({
        kind: m.kind,
        poolId: requireIdentifier(m.poolId, "poolId"),
        nonce,
        partitionCert: validateCertificate(m.partitionCert, "partitionCert"),
      });
    case "dekResponse":
      return Object.freeze({
        kind: m.kind,
        nonce,
        dekBlob: requireBytes(m.dekBlob, "dekBlob", MAX_TRANSFER_BLOB_BYTES),
        poolKeyBlob: requireBytes(m.poolKeyBlob, "poolKeyBlob", MAX_TRANSFER_BLOB_BYTES),
        sourcePartitionCert: validateCertificate(m.sourcePartitionCert, "sourcePartitionCert"),
      });
    case "refused":
      if (typeof m.code !== "string" || !isErrorCode(m.code))
        bad("code", "refusal code must be an error code");
      if (typeof m.reason !== "string" || m.reason.length > MAX_REASON_CHARS) {
        bad("reason", `refusal reason must be a string of at most ${MAX_REASON_CHARS} characters`);
      }
      return Object.freeze({ kind: m.kind, nonce, code: m.code, reason: m.reason });
    default:
      return bad("kind", `unknown ownership message kind ${JSON.stringify(m.kind)}`);
  }
}

export function encodeMessage(message: OwnershipMessage): Uint8Array {
  const m = validateMessage(message);
  const w = new ByteWriter().u8(KINDS.indexOf(m.kind) + 1).string(m.nonce);
  switch (m.kind) {
    case "ownershipRequest":
      w.string(m.poolId).string(m.partitionId);
      writeJwk(w, m.transferPublicKey);
      break;
    case "ownershipResponse":
      w.bytes(m.ownerRootBlob);
      writeCertificate(w, m.sourcePartitionCert);
      break;
    case "dekRequest":
      w.string(m.poolId);
      writeCertificate(w, m.partitionCert);
      break;
    case "dekResponse":
      w.bytes(m.dekBlob).bytes(m.poolKeyBlob);
      writeCertificate(w, m.sourcePartitionCert);
      break;
    case "refused":
      w.string(m.code).string(m.reason);
      break;
  }
  return frame(MESSAGE_FORMAT, w.finish());
}

/** Decodes a peer's message; corrupt bytes are an IntegrityError, invalid fields a BadParameter. */
export function decodeMessage(data: Uint8Array): OwnershipMessage {
  const r = unframe(MESSAGE_FORMAT, data);
  let fields: Record<string, unknown>;
  try {
    fields = readFields(r);
  } catch (e) {
    if (isHsmPoolError(e, "BadParameter"))
      fail("IntegrityError", `${MESSAGE_FORMAT.what} is corrupt: ${e.message}`);
    throw e;
  }
  r.end();
  return validateMessage(fields);
}

function readFields(r: ByteReader): Record<string, unknown> {
  const kind = KINDS[r.u8("kind") - 1] ?? r.corrupt("unknown message kind");
  const nonce = r.string("nonce", MAX_STRING_BYTES);
  switch (kind) {
    case "ownershipRequest":
      return {
        kind,
        nonce,
        poolId: r.string("poolId", MAX_STRING_BYTES),
        partitionId: r.string("partitionId", MAX_STRING_BYTES),
        transferPublicKey: readP384(r, "transferPublicKey"),
      };
    case "ownershipResponse":
      return {
        kind,
        nonce,
        ownerRootBlob: r.bytes("ownerRootBlob", MAX_TRANSFER_BLOB_BYTES),
        sourcePartitionCert: readCertificate(r, "sourcePartitionCert"),
      };
    case "dekRequest":
      return {
        kind,
        nonce,
        poolId: r.string("poolId", MAX_STRING_BYTES),
        partitionCert: readCertificate(r, "partitionCert"),
      };
    case "dekResponse":
      return {
        kind,
        nonce,
        dekBlob: r.bytes("dekBlob", MAX_TRANSFER_BLOB_BYTES),
        poolKeyBlob: r.bytes("poolKeyBlob", MAX_TRANSFER_BLOB_BYTES),
        sourcePartitionCert: readCertificate(r, "sourcePartitionCert"),
      };
    case "refused":
      return {
        kind,
        nonce,
        code: r.string("code", MAX_STRING_BYTES),
        reason: r.string("reason", MAX_STRING_BYTES * 4),
      };
  }
}

/** A P-384 JWK must have exactly kty, crv, x, y: extra members would not survive re-encoding. */
function readP384(r: ByteReader, field: string): Record<string, string> {
  const jwk = readJwk(r, field);
  if (Object.keys(jwk).length !== 4) r.corrupt(`${field} has unexpected members`);
  return jwk;
}
