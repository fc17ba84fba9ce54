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

function encodeHeader(h: KeyBlobHeader, nonce: Buffer): Buffer {
  const source = idBytes(h.sourceId, "source id");
  const target = idBytes(h.targetId, "target id");
  const label = Buffer.from(h.key.label ?? []);
  const shape = shapeOf(h.key);
  const fixed = Buffer.alloc(5);
  fixed.writeUInt8(KEY_TYPES.indexOf(shape.kty) + 1, 0);
  fixed.writeUInt16BE(shape.kty === "EC" ? 0 : shape.size, 1);
  fixed.writeUInt8(shape.kty === "EC" ? CURVES.indexOf(shape.crv) + 1 : 0, 3);
  fixed.writeUInt8(opsToMask(h.key.ops), 4);
  const labelLength = Buffer.alloc(2);
  labelLength.writeUInt16BE(label.length);
  return Buffer.concat([
    MAGIC,
    Buffer.from([KEY_BLOB_VERSION, h.mode]),
    Buffer.from(h.key.id, "hex"),
    Buffer.from([source.length]),
    source,
    Buffer.from([target.length]),
    target,
    fixed,
    labelLength,
    label,
    Buffer.from(h.salt),
    nonce,
  ]);
}

/** Encrypts `plaintext` under `aeadKey` (32 bytes) with the encoded header as additional data. */
export function sealKeyBlob(header: KeyBlobHeader, aeadKey: Uint8Array, plaintext: Uint8Array): Buffer {
  if (header.salt.length !== SALT_BYTES) fail("Internal", "key blob salt must be 32 bytes");
  const nonce = randomBytes(NONCE_BYTES);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(plaintext.length);
  const aad = Buffer.concat([encodeHeader(header, nonce), length]);
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
  const r = new Reader(Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength));
  if (!r.take(4).equals(MAGIC)) bad("it does not start with the HSMK magic");
  const version = r.u8();
  if (version !== KEY_BLOB_VERSION) bad(`version ${version} is not supported (expected ${KEY_BLOB_VERSION})`);
  const mode = r.u8();
  if (mode !== BlobMode.wrapped && mode !== BlobMode.transfer) bad(`unknown mode ${mode}`);
  const id = r.take(16).toString("hex");
  const sourceId = r.utf8(r.u8());
  const targetId = r.utf8(r.u8());
  const shape = readShape(r.u8(), r.u16(), r.u8());
  const ops = maskToOps(r.u8());
  const labelLength = r.u16();
  if (labelLength > MAX_LABEL_BYTES) bad("label too long");
  const label = r.take(labelLength);
  const salt = r.take(SALT_BYTES);
  const nonce = r.take(NONCE_BYTES);
  const ciphertextLength = r.u32();
  const aad = r.consumed();
  const ciphertext = r.take(ciphertextLength);
  const tag = r.take(TAG_BYTES);
  if (!r.atEnd()) bad("it has trailing bytes");
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

/** Bounds-checked cursor; running off the end is a malformed (e.g. truncated) blob. */
class Reader {
  private offset = 0;
  constructor(private readonly bytes: Buffer) {}
  take(n: number): Buffer {
    if (this.offset + n > this.bytes.length) bad("it is truncated");
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
  u8(): number {
    return this.take(1).readUInt8();
  }
  u16(): number {
    return this.take(2).readUInt16BE();
  }
  u32(): number {
    return this.take(4).readUInt32BE();
  }
  utf8(n: number): string {
    const raw = this.take(n);
    const text = raw.toString("utf8");
    if (!Buffer.from(text, "utf8").equals(raw)) bad("an id is not valid UTF-8");
    return text;
  }
  consumed(): Buffer {
    return this.bytes.subarray(0, this.offset);
  }
  atEnd(): boolean {
    return this.offset === this.bytes.length;
  }
}
