/**
 * The content of a key backup (`keys backup`): every version of one key as the log
 * recorded it — attributes, public key and the material still wrapped under the pool
 * DEK — plus the pool it came from. Bytes = frame("HPB1", version 1, poolId |
 * dekFingerprint | name | versions) with the frame's checksum. No plaintext material
 * is ever inside; the node shell encrypts these bytes once more under the pool's
 * backup key, so the blob opens only in a pool holding the same key.
 */

import { ByteWriter } from "@hsmpool/codec";
import { fail, isHsmPoolError } from "@hsmpool/errors";
import { MAX_RESTORED_VERSIONS, readVersion, writeVersion } from "./commands.js";
import { frame, unframe } from "./frame.js";
import { requireKeyName } from "./key-request.js";
import type { KeyVersionRecord } from "./keystore-state.js";
import { requireFingerprint, requireIdentifier } from "./validate.js";

export const KEY_BACKUP_FORMAT = { magic: "HPB1", version: 1, what: "key backup" } as const;

export interface KeyBackupContent {
  readonly poolId: string;
  readonly dekFingerprint: string;
  readonly name: string;
  readonly versions: readonly KeyVersionRecord[];
}

export function encodeKeyBackup(b: KeyBackupContent): Uint8Array {
  const w = new ByteWriter()
    .string(requireIdentifier(b.poolId, "poolId"))
    .string(requireFingerprint(b.dekFingerprint, "dekFingerprint"))
    .string(requireKeyName(b.name));
  w.list(b.versions, writeVersion);
  return frame(KEY_BACKUP_FORMAT, w.finish());
}

/** IntegrityError for anything but a valid backup (corrupt, truncated, another format). */
export function decodeKeyBackup(data: Uint8Array): KeyBackupContent {
  const r = unframe(KEY_BACKUP_FORMAT, data);
  try {
    const poolId = requireIdentifier(r.string("poolId", 256), "poolId");
    const dekFingerprint = requireFingerprint(r.string("dekFingerprint", 128), "dekFingerprint");
    const name = requireKeyName(r.string("name", 256));
    const versions = r.list("versions", MAX_RESTORED_VERSIONS, (r) => readVersion(r, name));
    if (versions.length === 0) r.corrupt("a key backup has no versions");
    r.end();
    return { poolId, dekFingerprint, name, versions };
  } catch (e) {
    if (isHsmPoolError(e, "BadParameter"))
      fail("IntegrityError", `${KEY_BACKUP_FORMAT.what} holds an invalid value: ${e.message}`);
    throw e;
  }
}
