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

export class KeyIndex {
  private readonly ids = new Map<string, string>();
  private readonly imported = new Set<string>();

  /** Rebuilds the index from a store (after a snapshot restore or at start). */
  rebuild(store: KeyStore): void {
    this.ids.clear();
    this.imported.clear();
    for (const latest of store.list()) {
      for (const v of store.listVersions(latest.name)) {
        this.ids.set(slot(v.name, v.version), keyIdOfWrappedBlob(store.wrappedMaterialOf(v.name, v.version)));
      }
    }
  }

  /** Applies a key-store effect; returns the HSM key ids that must leave the partition. */
  onEffect(effect: KeyStoreEffect): string[] {
    if (effect.kind === "importKeyVersion") {
      this.ids.set(slot(effect.name, effect.version), keyIdOfWrappedBlob(effect.wrappedMaterial));
      return [];
    }
    const doomed: string[] = [];
    for (const version of effect.versions) {
      const id = this.ids.get(slot(effect.name, version));
      if (id) doomed.push(id);
      this.ids.delete(slot(effect.name, version));
    }
    for (const id of doomed) this.imported.delete(id);
    return doomed;
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
    const id = this.ids.get(slot(name, version));
    if (id && this.imported.has(id)) return id;
    const handle = await session.importWrapped(store.wrappedMaterialOf(name, version), dekKeyId);
    this.ids.set(slot(name, version), handle.id);
    this.imported.add(handle.id);
    return handle.id;
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
