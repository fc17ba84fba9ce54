/**
 * Wrapped export and import of partition keys: (a) under a symmetric key held in the
 * partition (e.g. the pool DEK) and (b) partition-to-partition via ECDH between
 * transfer keys. Builds and opens key blobs (see key-blob.ts); never returns plaintext
 * material to a caller outside the device.
 */
import { createHash, diffieHellman, hkdfSync, type KeyObject } from "node:crypto";
import { fail } from "@hsmpool/errors";
import { describeKey, type KeyHandle, shapeOf } from "./key-attributes.js";
import { BlobMode, newSalt, openKeyBlob, type ParsedKeyBlob, parseKeyBlob, sealKeyBlob } from "./key-blob.js";
import { exportMaterial, importMaterial, type LoadedKey, type Material, materialOf } from "./key-material.js";
import type { TransferKeyPair } from "./transfer-key.js";

export interface ImportedKey {
  handle: KeyHandle;
  material: Material;
}

type OctKey = Extract<LoadedKey, { handle: { kty: "oct" } }>;

/**
 * The AES-256-GCM key of a blob wrapped under a partition's symmetric key. Derived
 * with HKDF (not the wrapping key itself) so no encrypt() call with that key can forge a blob.
 */
function wrappedBlobKey(wrappingKey: KeyObject, salt: Uint8Array): Buffer {
  const raw = wrappingKey.export();
  try {
    return Buffer.from(hkdfSync("sha256", raw, salt, "hsmpool-hsm/export-wrap/v1", 32));
  } finally {
    raw.fill(0);
  }
}

function spkiDigest(key: KeyObject): Buffer {
  return createHash("sha256")
    .update(key.export({ type: "spki", format: "der" }))
    .digest();
}

/**
 * The AES-256-GCM key of one transfer blob: HKDF-SHA256 over the static-static P-384
 * ECDH secret, with the blob's salt, and both public keys in the info so it is bound
 * to exactly this source and target.
 */
function transferBlobKey(
  own: KeyObject,
  peer: KeyObject,
  source: KeyObject,
  target: KeyObject,
  salt: Uint8Array,
): Buffer {
  const shared = diffieHellman({ privateKey: own, publicKey: peer });
  const info = Buffer.concat([
    Buffer.from("hsmpool-hsm/transfer/v1\0"),
    spkiDigest(source),
    spkiDigest(target),
  ]);
  try {
    return Buffer.from(hkdfSync("sha256", shared, salt, info, 32));
  } finally {
    shared.fill(0);
  }
}

function seal(
  key: LoadedKey,
  mode: BlobMode,
  sourceId: string,
  targetId: string,
  deriveKey: (salt: Uint8Array) => Buffer,
) {
  const salt = newSalt();
  const aeadKey = deriveKey(salt);
  const material = exportMaterial(materialOf(key));
  try {
    return sealKeyBlob({ mode, key: key.handle, sourceId, targetId, salt }, aeadKey, material);
  } finally {
    material.fill(0);
    aeadKey.fill(0);
  }
}

function open(blob: ParsedKeyBlob, deriveKey: (salt: Uint8Array) => Buffer): ImportedKey {
  const aeadKey = deriveKey(blob.header.salt);
  const plaintext = openKeyBlob(blob, aeadKey);
  aeadKey.fill(0);
  try {
    return { handle: blob.header.key, material: importMaterial(shapeOf(blob.header.key), plaintext) };
  } finally {
    plaintext.fill(0);
  }
}

function parseMode(blob: unknown, mode: BlobMode): ParsedKeyBlob {
  const parsed = parseKeyBlob(blob);
  if (parsed.header.mode !== mode) {
    const other = mode === BlobMode.wrapped ? "importFromTransfer" : "importWrapped";
    fail("IntegrityError", `key blob has mode ${parsed.header.mode}; it belongs to ${other}`);
  }
  return parsed;
}

/** Blob of `key` wrapped under the symmetric `wrappingKey`; source = this partition, target = the wrapping key id. */
export function exportWrappedKey(key: LoadedKey, wrappingKey: OctKey, sourcePartitionId: string): Buffer {
  return seal(key, BlobMode.wrapped, sourcePartitionId, wrappingKey.handle.id, (salt) =>
    wrappedBlobKey(wrappingKey.secretKey, salt),
  );
}

export function importWrappedKey(blob: unknown, wrappingKey: OctKey): ImportedKey {
  const parsed = parseMode(blob, BlobMode.wrapped);
  const imported = open(parsed, (salt) => wrappedBlobKey(wrappingKey.secretKey, salt));
  if (parsed.header.targetId !== wrappingKey.handle.id) {
    fail(
      "IntegrityError",
      `key blob names wrapping key ${parsed.header.targetId}, not ${describeKey(wrappingKey.handle)}`,
    );
  }
  return imported;
}

export function exportTransferKey(
  key: LoadedKey,
  own: TransferKeyPair,
  sourceId: string,
  targetPublic: KeyObject,
  targetId: string,
): Buffer {
  return seal(key, BlobMode.transfer, sourceId, targetId, (salt) =>
    transferBlobKey(own.privateKey, targetPublic, own.publicKey, targetPublic, salt),
  );
}

export function importTransferKey(
  blob: unknown,
  own: TransferKeyPair,
  ownId: string,
  sourcePublic: KeyObject,
  sourceId: string,
): ImportedKey {
  const parsed = parseMode(blob, BlobMode.transfer);
  const imported = open(parsed, (salt) =>
    transferBlobKey(own.privateKey, sourcePublic, sourcePublic, own.publicKey, salt),
  );
  if (parsed.header.sourceId !== sourceId || parsed.header.targetId !== ownId) {
    fail(
      "IntegrityError",
      `transfer blob is from ${JSON.stringify(parsed.header.sourceId)} to ${JSON.stringify(parsed.header.targetId)}, ` +
        `not from ${JSON.stringify(sourceId)} to this partition ${JSON.stringify(ownId)}`,
    );
  }
  return imported;
}
