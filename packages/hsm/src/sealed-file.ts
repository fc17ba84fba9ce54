/**
 * The on-disk record format of the device: every file except device.key is
 * AES-256-GCM ciphertext under a storage key derived from the device key. Layout:
 *
 *   magic "HSMF" (4) | version 1 (1) | nonce (12) | body length (u32 BE) | ciphertext | tag (16)
 *
 * The GCM tag is the checksum: it covers the header and the body, plus (as
 * additional data) the file's place in the device ("<device id>/<relative path>"),
 * so a file moved, swapped or copied from another device fails like a corrupted one.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { fail } from "@hsmpool/errors";

const MAGIC = Buffer.from("HSMF", "ascii");
export const SEALED_FILE_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = MAGIC.length + 1 + NONCE_BYTES + 4;
export const DEVICE_KEY_BYTES = 32;

/** The storage key: HKDF-SHA256(device key), so the device key itself is never a cipher key. */
export function deriveStorageKey(deviceKey: Uint8Array): Buffer {
  return Buffer.from(hkdfSync("sha256", deviceKey, Buffer.alloc(0), "hsmpool-hsm/storage/v1", 32));
}

function additionalData(place: string, header: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`hsmpool-hsm/file/v1\0${place}\0`, "utf8"), header]);
}

export function sealRecord(storageKey: Uint8Array, place: string, plaintext: Uint8Array): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt8(SEALED_FILE_VERSION, 4);
  randomBytes(NONCE_BYTES).copy(header, 5);
  header.writeUInt32BE(plaintext.length, 5 + NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", storageKey, header.subarray(5, 5 + NONCE_BYTES), {
    authTagLength: TAG_BYTES,
  });
  cipher.setAAD(additionalData(place, header));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([header, body, cipher.getAuthTag()]);
}

/** Opens a sealed record; anything malformed, truncated, altered or foreign is an IntegrityError. */
export function openRecord(storageKey: Uint8Array, place: string, file: Buffer): Buffer {
  const bad = (why: string): never =>
    fail(
      "IntegrityError",
      `HSM device file ${place} ${why}; the device state was tampered with or corrupted`,
      {
        file: place,
      },
    );
  if (file.length < HEADER_BYTES + TAG_BYTES) bad("is truncated");
  if (!file.subarray(0, 4).equals(MAGIC)) bad("is not an HSM record (bad magic)");
  const version = file.readUInt8(4);
  if (version !== SEALED_FILE_VERSION) bad(`has unsupported version ${version}`);
  const bodyLength = file.readUInt32BE(5 + NONCE_BYTES);
  if (file.length !== HEADER_BYTES + bodyLength + TAG_BYTES)
    bad("has the wrong length (truncated or extended)");
  const header = file.subarray(0, HEADER_BYTES);
  const decipher = createDecipheriv("aes-256-gcm", storageKey, header.subarray(5, 5 + NONCE_BYTES), {
    authTagLength: TAG_BYTES,
  });
  decipher.setAAD(additionalData(place, header));
  decipher.setAuthTag(file.subarray(HEADER_BYTES + bodyLength));
  const head = decipher.update(file.subarray(HEADER_BYTES, HEADER_BYTES + bodyLength));
  try {
    return Buffer.concat([head, decipher.final()]);
  } catch {
    head.fill(0);
    return bad("failed authentication (wrong device key, altered bytes or moved file)");
  }
}
