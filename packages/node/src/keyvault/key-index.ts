/**
 * Which HSM key (by id) holds each key version the log created. Versions are
 * imported into this node's partition lazily — on first use — from their blob
 * wrapped under the pool DEK (HSM importWrapped keeps the key's id, and importing a
 * key the partition already holds is a no-op). A deleted version's key is removed
 * from the partition by id, whether or not it was ever imported here.
 *
 * The key id is read from the blob header (packages/hsm README, key blob v1:
 * "HSMK" | version 1 | mode | key id (16 bytes) | ...): a public identifier.
 */
import { fail, isHsmPoolError } from "@hsmpool/errors";
import type { KeyStore, KeyStoreEffect } from "@hsmpool/pool";
import type { HsmSession } from "../seams/hsm.js";

const BLOB_MAGIC = [0x48, 0x53, 0x4d, 0x4b]; // "HSMK"
const KEY_ID_OFFSET = 6;
const KEY_ID_BYTES = 16;

/** The HSM key id inside a wrapped key blob (IntegrityError if it is not an HSM key blob v1). */
export function keyIdOfWrappedBlob(blob: Uint8Array): string {
  if (
    blob.length < KEY_ID_OFFSET + KEY_ID_BYTES ||
    BLOB_MAGIC.some((b, i) => blob[i] !== b) ||
    blob[4] !== 1
  ) {
    fail("IntegrityError", "wrapped key material is not an HSM key blob (v1)");
  }
  return Buffer.from(blob.subarray(KEY_ID_OFFSET, KEY_ID_OFFSET + KEY_ID_BYTES)).toString("hex");
}

const slot = (name: string, version: number): string => `${name}/${version}`;

/**
 * Holds no entry per key of the store: a key id is read from the version's blob when a
 * version is used or forgotten (a joiner restoring 100,000 keys builds nothing here), and
 * cached for versions this node uses.
 */
export class KeyIndex {
  /** Key ids of versions this node used (the id is also in each version's blob). */
  private readonly ids = new Map<string, string>();
  private readonly imported = new Set<string>();

  /** Forgets what it knew: after a snapshot restore, or at start (the partition may hold keys from before). */
  reset(): void {
    this.ids.clear();
    this.imported.clear();
  }

  /** Applies a key-store effect; returns the HSM key ids that must leave the partition. */
  onEffect(effect: KeyStoreEffect): string[] {
    if (effect.kind === "importKeyVersion") {
      // Imported on first use; a version of that name and number before it was forgotten.
      this.ids.delete(slot(effect.name, effect.version));
      return [];
    }
    const doomed = effect.versions.map((version, i) => {
      const blob = effect.wrappedMaterial[i];
      const id = this.ids.get(slot(effect.name, version)) ?? (blob ? keyIdOfWrappedBlob(blob) : null);
      this.ids.delete(slot(effect.name, version));
      return id;
    });
    const ids = doomed.filter((id): id is string => id !== null);
    for (const id of ids) this.imported.delete(id);
    return ids;
  }

  /** Records that this partition holds the key already (e.g. the primary generated it). */
  markImported(keyId: string): void {
    this.imported.add(keyId);
  }

  /** The key id of a version, importing it into the partition first if needed. */
  async ensureImported(
    session: HsmSession,
    store: KeyStore,
    dekKeyId: string,
    name: string,
    version: number,
  ): Promise<string> {
    const cached = this.ids.get(slot(name, version));
    if (cached && this.imported.has(cached)) return cached;
    const blob = store.wrappedMaterialOf(name, version);
    const id = cached ?? keyIdOfWrappedBlob(blob);
    if (!this.imported.has(id)) {
      const handle = await session.importWrapped(blob, dekKeyId);
      this.imported.add(handle.id);
      this.ids.set(slot(name, version), handle.id);
      return handle.id;
    }
    this.ids.set(slot(name, version), id);
    return id;
  }
}

/** Deletes keys from the partition; a key it never held is fine. */
export async function deleteHsmKeys(session: HsmSession, keyIds: readonly string[]): Promise<void> {
  for (const id of keyIds) {
    await session.deleteKey(id).catch((e: unknown) => {
      if (!isHsmPoolError(e, "KeyNotFound")) throw e;
    });
  }
}
