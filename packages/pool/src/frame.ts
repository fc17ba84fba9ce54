/**
 * Versioned, checksummed framing for every byte format of this package:
 *
 *   magic (4 ASCII bytes) | format version (u8) | payload | checksum (8 bytes)
 *
 * checksum = the first 8 bytes of SHA-256(magic | version | payload). Any flipped,
 * dropped or appended byte fails the checksum (or the magic/version check) and is an
 * IntegrityError before a single payload field is interpreted, so a corrupt Raft
 * entry or snapshot can never be applied as a different valid one.
 */

import { ByteReader, bytesEqual, utf8 } from "@hsmpool/codec";
import { fail } from "@hsmpool/errors";
import { sha256 } from "@noble/hashes/sha2.js";

export const CHECKSUM_BYTES = 8;
const HEADER_BYTES = 5;

export interface FrameFormat {
  /** Four ASCII characters naming the format, e.g. "HPC1". */
  magic: string;
  version: number;
  /** Human name used in error messages ("pool log entry"). */
  what: string;
}

function checksum(body: Uint8Array): Uint8Array {
  return sha256(body).subarray(0, CHECKSUM_BYTES);
}

export function frame(format: FrameFormat, payload: Uint8Array): Uint8Array {
  // One buffer, filled in place (a snapshot's payload is tens of MB: no extra copies).
  const magic = utf8(format.magic);
  if (magic.length !== 4) fail("Internal", `frame magic ${format.magic} is not 4 bytes`);
  const out = new Uint8Array(HEADER_BYTES + payload.length + CHECKSUM_BYTES);
  out.set(magic);
  out[4] = format.version;
  out.set(payload, HEADER_BYTES);
  const bodyEnd = HEADER_BYTES + payload.length;
  out.set(checksum(out.subarray(0, bodyEnd)), bodyEnd);
  return out;
}

/** Checks magic, version and checksum; returns a reader positioned on the payload. */
export function unframe(format: FrameFormat, data: unknown): ByteReader {
  return unframeVersions(format, [format.version], data).reader;
}

/**
 * Like unframe, for a format with more than one readable version (a newer version
 * extends an older one): returns the reader and the version the bytes carry.
 */
export function unframeVersions(
  format: FrameFormat,
  versions: readonly number[],
  data: unknown,
): { reader: ByteReader; version: number } {
  if (!(data instanceof Uint8Array)) fail("BadParameter", `${format.what} must be bytes (Uint8Array)`);
  if (data.length < HEADER_BYTES + CHECKSUM_BYTES) {
    fail("IntegrityError", `${format.what} is truncated: ${data.length} bytes is shorter than any valid one`);
  }
  const body = data.subarray(0, data.length - CHECKSUM_BYTES);
  if (!bytesEqual(checksum(body), data.subarray(data.length - CHECKSUM_BYTES))) {
    fail("IntegrityError", `${format.what} failed its checksum: the bytes were corrupted or truncated`);
  }
  if (!bytesEqual(body.subarray(0, 4), utf8(format.magic))) {
    fail("IntegrityError", `${format.what} has the wrong magic: this is not a ${format.what}`);
  }
  const version = body[4] ?? 0;
  if (!versions.includes(version)) {
    fail(
      "IntegrityError",
      `${format.what} has format version ${version}; this build reads version ${versions.join(" or ")} only`,
    );
  }
  return { reader: new ByteReader(body.subarray(HEADER_BYTES), format.what), version };
}
