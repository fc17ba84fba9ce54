/**
 * Protection of key backups: the backup content (pool/key-backup.ts, no plaintext
 * material) wrapped whole under an AES key inside the HSM (RFC 3394 key wrap with
 * the HSM's A256KW: integrity over every byte), so a blob opens only in a pool whose
 * partition holds the same key. Blob = "HKB1" | u8 version 1 | A256KW(u32 BE length |
 * content | zero padding to a multiple of 8).
 */
import { fail, isHsmPoolError } from "@hsmpool/errors";
import type { HsmSession } from "../seams/hsm.js";

const MAGIC = Buffer.from("HKB1");
const VERSION = 1;
const MAX_BLOB_BYTES = 8 * 1024 * 1024;

export async function sealKeyBackup(
  session: HsmSession,
  keyId: string,
  content: Uint8Array,
): Promise<Uint8Array> {
  const padded = Buffer.alloc(Math.max(16, Math.ceil((content.length + 4) / 8) * 8));
  padded.writeUInt32BE(content.length, 0);
  padded.set(content, 4);
  const wrapped = await session.wrapKey(keyId, "A256KW", padded);
  return Buffer.concat([MAGIC, Buffer.of(VERSION), wrapped]);
}

/** The backup content; BadParameter for a file that is no key backup, Forbidden for another pool's. */
export async function openKeyBackup(
  session: HsmSession,
  keyId: string,
  blob: Uint8Array,
): Promise<Uint8Array> {
  if (
    blob.length > MAX_BLOB_BYTES ||
    blob.length < MAGIC.length + 1 + 24 ||
    !MAGIC.equals(blob.subarray(0, 4))
  ) {
    fail("BadParameter", "this is not an hsmpool key backup (made by `keys backup`)", { field: "backup" });
  }
  if (blob[4] !== VERSION)
    fail("BadParameter", `key backup version ${blob[4]} is not supported`, { field: "backup" });
  let padded: Uint8Array;
  try {
    padded = await session.unwrapKey(keyId, "A256KW", blob.subarray(5));
  } catch (e) {
    if (isHsmPoolError(e, "IntegrityError") || isHsmPoolError(e, "BadParameter")) {
      fail(
        "Forbidden",
        "the key backup does not open with this pool's backup key: it was made by another pool (another security domain) or altered",
        { field: "backup" },
      );
    }
    throw e;
  }
  const length = Buffer.from(padded).readUInt32BE(0);
  if (length > padded.length - 4) fail("IntegrityError", "the key backup's length field is corrupt");
  return padded.subarray(4, 4 + length);
}
