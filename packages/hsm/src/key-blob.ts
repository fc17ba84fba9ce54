/**
 * Codec for wrapped key blobs (version 1). The header travels in the clear and is
 * the AES-256-GCM additional data, so source, target and every key attribute are
 * authenticated: change any byte and opening fails. Layout (big-endian):
 *
 *   magic "HSMK" (4) | version 1 (1) | mode (1: wrapped under a partition key,
 *   2: partition-to-partition transfer) | key id (16) | source id (u8 len + UTF-8)
 *   | target id (u8 len + UTF-8) | kty (1) | size bits (u16, 0 for EC) | crv (1)
 *   | ops bitmask (1) | label (u16 len + bytes) | HKDF salt (32) | GCM nonce (12)
 *   | ciphertext length (u32) | ciphertext | GCM tag (16)
 *
 * The plaintext is the key material: PKCS#8 DER (RSA, EC) or raw bytes (AES).
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { ByteReader, ByteWriter, bytesEqual } from "@hsmpool/codec";
import { fail } from "@hsmpool/errors";
import { AES_SIZES, CURVES, isOneOf, KEY_TYPES, OPS_BY_TYPE, RSA_SIZES } from "./algorithms.js";
import {
  isKeyId,
  type KeyHandle,
  type KeyShape,
  MAX_LABEL_BYTES,
  makeHandle,
  maskToOps,
  opsToMask,
  shapeOf,
} from "./key-attributes.js";

const MAGIC = Buffer.from("HSMK", "ascii");
export const KEY_BLOB_VERSION = 1;
export const SALT_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const MAX_ID_BYTES = 255;

export const BlobMode = { wrapped: 1, transfer: 2 } as const;
export type BlobMode = (typeof BlobMode)[keyof typeof BlobMode];

export interface KeyBlobHeader {
  mode: BlobMode;
  /** Attributes of the key inside (id, type, size/curve, ops, label). */
  key: KeyHandle;
  sourceId: string;
  targetId: string;
  salt: Uint8Array;
}

export interface ParsedKeyBlob {
  header: KeyBlobHeader;
  aad: Buffer;
  nonce: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

export function newSalt(): Buffer {
  return randomBytes(SALT_BYTES);
}

function idBytes(id: string, what: string): Buffer {
  const bytes = Buffer.from(id, "utf8");
  if (bytes.length === 0 || bytes.length > MAX_ID_BYTES) {
    fail("BadParameter", `${what} must be 1..${MAX_ID_BYTES} bytes of UTF-8; got ${bytes.length}`);
  }
  return bytes;
}

function encodeHeader(w: ByteWriter, h: KeyBlobHeader, nonce: Uint8Array): ByteWriter {
  const shape = shapeOf(h.key);
  return w
    .raw(MAGIC)
    .u8(KEY_BLOB_VERSION)
    .u8(h.mode)
    .raw(Buffer.from(h.key.id, "hex"))
    .bytes8(idBytes(h.sourceId, "source id"))
    .bytes8(idBytes(h.targetId, "target id"))
    .u8(KEY_TYPES.indexOf(shape.kty) + 1)
    .u16(shape.kty === "EC" ? 0 : shape.size)
    .u8(shape.kty === "EC" ? CURVES.indexOf(shape.crv) + 1 : 0)
    .u8(opsToMask(h.key.ops))
    .bytes16(h.key.label ?? new Uint8Array(0))
    .raw(h.salt)
    .raw(nonce);
}

/** Encrypts `plaintext` under `aeadKey` (32 bytes) with the encoded header as additional data. */
export function sealKeyBlob(header: KeyBlobHeader, aeadKey: Uint8Array, plaintext: Uint8Array): Buffer {
  if (header.salt.length !== SALT_BYTES) fail("Internal", "key blob salt must be 32 bytes");
  const nonce = randomBytes(NONCE_BYTES);
  const aad = encodeHeader(new ByteWriter(), header, nonce).u32(plaintext.length).finish();
  const cipher = createCipheriv("aes-256-gcm", aeadKey, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([aad, ciphertext, cipher.getAuthTag()]);
}

/** Decrypts a parsed blob; any mismatch (key, header, ciphertext, tag) is an IntegrityError. */
export function openKeyBlob(blob: ParsedKeyBlob, aeadKey: Uint8Array): Buffer {
  const decipher = createDecipheriv("aes-256-gcm", aeadKey, blob.nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(blob.aad);
  decipher.setAuthTag(blob.tag);
  const head = decipher.update(blob.ciphertext);
  try {
    return Buffer.concat([head, decipher.final()]);
  } catch {
    head.fill(0);
    return fail(
      "IntegrityError",
      "key blob failed authentication: it was altered, or it is not meant for this key/partition",
    );
  }
}

/** Splits a blob into header fields and sealed parts, rejecting anything malformed as IntegrityError. */
export function parseKeyBlob(blob: unknown): ParsedKeyBlob {
  if (!(blob instanceof Uint8Array)) fail("BadParameter", "key blob must be a Uint8Array");
  const r = new ByteReader(blob, "key blob", bad);
  if (!bytesEqual(r.raw(4, "magic"), MAGIC)) bad("it does not start with the HSMK magic");
  const version = r.u8("version");
  if (version !== KEY_BLOB_VERSION) bad(`version ${version} is not supported (expected ${KEY_BLOB_VERSION})`);
  const mode = r.u8("mode");
  if (mode !== BlobMode.wrapped && mode !== BlobMode.transfer) bad(`unknown mode ${mode}`);
  const id = Buffer.from(r.raw(16, "key id")).toString("hex");
  const sourceId = idText(r.bytes8("source id"));
  const targetId = idText(r.bytes8("target id"));
  const shape = readShape(r.u8("key type"), r.u16("size"), r.u8("curve"));
  const ops = maskToOps(r.u8("operations"));
  const labelLength = r.u16("label length");
  if (labelLength > MAX_LABEL_BYTES) bad("label too long");
  const label = r.raw(labelLength, "label");
  const salt = Buffer.from(r.raw(SALT_BYTES, "salt"));
  const nonce = Buffer.from(r.raw(NONCE_BYTES, "nonce"));
  const ciphertextLength = r.u32("ciphertext length");
  const aad = Buffer.from(r.consumed());
  const ciphertext = Buffer.from(r.raw(ciphertextLength, "ciphertext"));
  const tag = Buffer.from(r.raw(TAG_BYTES, "tag"));
  if (!r.done) bad("it has trailing bytes");
  if (!isKeyId(id) || sourceId.length === 0 || targetId.length === 0) bad("empty id");
  if (ops.length === 0 || ops.some((op) => !OPS_BY_TYPE[shape.kty].includes(op)))
    bad("invalid key operations");
  const key = makeHandle(id, shape, ops, labelLength > 0 ? label : undefined);
  return { header: { mode, key, sourceId, targetId, salt }, aad, nonce, ciphertext, tag };
}

function readShape(ktyCode: number, sizeBits: number, crvCode: number): KeyShape {
  const kty = KEY_TYPES[ktyCode - 1];
  if (kty === "EC") {
    const crv = CURVES[crvCode - 1];
    if (!crv || sizeBits !== 0) bad("invalid EC curve");
    return { kty, crv };
  }
  if (crvCode !== 0) bad("curve on a non-EC key");
  if (kty === "RSA" && isOneOf(RSA_SIZES, sizeBits)) return { kty, size: sizeBits };
  if (kty === "oct" && isOneOf(AES_SIZES, sizeBits)) return { kty, size: sizeBits };
  return bad("invalid key type or size");
}

function bad(why: string): never {
  return fail("IntegrityError", `not a valid hsmpool key blob: ${why}`);
}

/** An id's UTF-8 text; bytes that are not UTF-8 (the text would not give them back) are a malformed blob. */
function idText(raw: Uint8Array): string {
  const text = Buffer.from(raw).toString("utf8");
  if (!Buffer.from(text, "utf8").equals(raw)) bad("an id is not valid UTF-8");
  return text;
}
