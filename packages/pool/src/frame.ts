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
  const { out, bodyEnd } = frameBuffer(format, payload);
  out.set(checksum(out.subarray(0, bodyEnd)), bodyEnd);
  return out;
}

/** Bytes hashed between two pauses of frameSteps. */
export const FRAME_HASH_BYTES_PER_STEP = 256 * 1024;

/**
 * frame() in steps, for a payload of tens of MB (a snapshot): the generator pauses after
 * hashing every FRAME_HASH_BYTES_PER_STEP bytes (SHA-256 in JS: ~1 s for 20 MB on a
 * loaded machine) and returns the same bytes as frame().
 */
export function* frameSteps(format: FrameFormat, payload: Uint8Array): Generator<void, Uint8Array, void> {
  const { out, bodyEnd } = frameBuffer(format, payload);
  const hash = sha256.create();
  for (let at = 0; at < bodyEnd; at += FRAME_HASH_BYTES_PER_STEP) {
    if (at > 0) yield;
    hash.update(out.subarray(at, Math.min(bodyEnd, at + FRAME_HASH_BYTES_PER_STEP)));
  }
  out.set(hash.digest().subarray(0, CHECKSUM_BYTES), bodyEnd);
  return out;
}

/** The frame's one buffer with its header and payload in place; the checksum goes at bodyEnd. */
function frameBuffer(format: FrameFormat, payload: Uint8Array): { out: Uint8Array; bodyEnd: number } {
  // One buffer, filled in place (a snapshot's payload is tens of MB: no extra copies).
  const magic = utf8(format.magic);
  if (magic.length !== 4) fail("Internal", `frame magic ${format.magic} is not 4 bytes`);
  const out = new Uint8Array(HEADER_BYTES + payload.length + CHECKSUM_BYTES);
  out.set(magic);
  out[4] = format.version;
  out.set(payload, HEADER_BYTES);
  return { out, bodyEnd: HEADER_BYTES + payload.length };
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
  const body = frameBody(format, data);
  return readFrame(format, versions, body, checksum(body), data as Uint8Array);
}

/**
 * unframeVersions in steps, for tens of MB (a snapshot being installed): the checksum is
 * hashed FRAME_HASH_BYTES_PER_STEP bytes at a time with a pause (yield) between two.
 */
export function* unframeVersionsSteps(
  format: FrameFormat,
  versions: readonly number[],
  data: unknown,
): Generator<void, { reader: ByteReader; version: number }, void> {
  const body = frameBody(format, data);
  const hash = sha256.create();
  for (let at = 0; at < body.length; at += FRAME_HASH_BYTES_PER_STEP) {
    if (at > 0) yield;
    hash.update(body.subarray(at, Math.min(body.length, at + FRAME_HASH_BYTES_PER_STEP)));
  }
  return readFrame(format, versions, body, hash.digest().subarray(0, CHECKSUM_BYTES), data as Uint8Array);
}

/** The framed bytes without their checksum (refused: not bytes, or too short to be a frame). */
function frameBody(format: FrameFormat, data: unknown): Uint8Array {
  if (!(data instanceof Uint8Array)) fail("BadParameter", `${format.what} must be bytes (Uint8Array)`);
  if (data.length < HEADER_BYTES + CHECKSUM_BYTES) {
    fail("IntegrityError", `${format.what} is truncated: ${data.length} bytes is shorter than any valid one`);
  }
  return data.subarray(0, data.length - CHECKSUM_BYTES);
}

/** Checks the body's checksum (`sum`), magic and version; returns a reader on the payload. */
function readFrame(
  format: FrameFormat,
  versions: readonly number[],
  body: Uint8Array,
  sum: Uint8Array,
  data: Uint8Array,
): { reader: ByteReader; version: number } {
  if (!bytesEqual(sum, data.subarray(data.length - CHECKSUM_BYTES))) {
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
