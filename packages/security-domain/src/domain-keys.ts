/**
 * What the security domain's secret S gives a pool that holds it: its public id, the
 * key that protects backups (full and per key), and the escrow key under which the
 * HSM exports the ownership keys into the security domain. All HKDF-SHA256 of S with
 * distinct labels, so none reveals another.
 */
import { hkdfSync } from "node:crypto";
import { fail } from "@hsmpool/errors";
import { aesGcmOpen, aesGcmSeal } from "./aes-gcm.js";

export interface DomainKeys {
  readonly sdId: string;
  readonly backupKey: Buffer;
  readonly escrowKey: Buffer;
  /** HSM key id (32 hex) the escrow key is imported under: blobs name it. */
  readonly escrowKeyId: string;
}

function derive(secret: Uint8Array, label: string, length: number): Buffer {
  return Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), `hsmpool-sd/${label}/v1`, length));
}

export function deriveDomainKeys(secret: Uint8Array): DomainKeys {
  if (secret.length !== 32) fail("BadParameter", "a security domain secret is 32 bytes");
  return {
    // Hex, not base64url: the pool validates ids as starting with a letter or digit, and a
    // base64url id starts with "-" or "_" one time in 32 (hsmpool up then failed at random).
    sdId: derive(secret, "id", 12).toString("hex"),
    backupKey: derive(secret, "backup", 32),
    escrowKey: derive(secret, "escrow", 32),
    escrowKeyId: derive(secret, "escrow-id", 16).toString("hex"),
  };
}

const MAGIC = Buffer.from("HSBK");
const VERSION = 1;

/**
 * Backup blob: "HSBK" | version u8 | u8 len + sdId | iv 12 | tag 16 | ciphertext;
 * AES-256-GCM under the domain's backup key, AAD = everything before the IV.
 */
export function sealBackup(keys: DomainKeys, plaintext: Uint8Array): Buffer {
  const header = backupHeader(keys.sdId);
  const s = aesGcmSeal(keys.backupKey, plaintext, header);
  return Buffer.concat([header, s.iv, s.tag, s.ciphertext]);
}

function backupHeader(sdId: string): Buffer {
  const id = Buffer.from(sdId);
  return Buffer.concat([MAGIC, Buffer.from([VERSION, id.length]), id]);
}

/** The sdId a backup names (public), or a refusal if the bytes are not a backup. */
export function backupDomainId(blob: Uint8Array): string {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (b.length < 6 || !b.subarray(0, 4).equals(MAGIC))
    fail("BadParameter", "not an hsmpool backup (bad magic)");
  if (b[4] !== VERSION) fail("BadParameter", `backup version ${b[4]} is not supported`);
  const len = b[5] ?? 0;
  if (b.length < 6 + len + 28) fail("BadParameter", "the backup is truncated");
  return b.subarray(6, 6 + len).toString();
}

export function openBackup(keys: DomainKeys, blob: Uint8Array): Buffer {
  const sdId = backupDomainId(blob);
  if (sdId !== keys.sdId) {
    fail(
      "BadParameter",
      `the backup was made by a pool with another security domain (${sdId}; this pool holds ${keys.sdId})`,
      { backupSdId: sdId, poolSdId: keys.sdId },
    );
  }
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const at = 6 + Buffer.byteLength(sdId);
  return aesGcmOpen(
    keys.backupKey,
    { iv: b.subarray(at, at + 12), tag: b.subarray(at + 12, at + 28), ciphertext: b.subarray(at + 28) },
    b.subarray(0, at),
    "the backup does not open under this pool's security domain (altered or truncated)",
  );
}
