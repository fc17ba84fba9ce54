/**
 * One partition's state inside the device: its record, its loaded keys and its
 * transfer key, and every change to them. Each change is made durable first and
 * applied to memory only after, one change at a time (SerialQueue), so a failed write
 * leaves the partition exactly as it was. Keys live in the partition's journal
 * (key-journal.ts); adds that arrive together are written as one batch (one append,
 * one fdatasync), each caller answered once its batch is durable.
 */
import { createHmac, createPrivateKey, createPublicKey, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fail } from "@hsmpool/errors";
import { type DeviceFiles, keyFile, keysDir, partitionDir, partitionStateFile } from "./device-files.js";
import { copyHandle, describeKey, type KeyHandle, sameAttributes, shapeOf } from "./key-attributes.js";
import { KeyJournal } from "./key-journal.js";
import {
  exportMaterial,
  importMaterial,
  type LoadedKey,
  loadKey,
  type Material,
  materialOf,
} from "./key-material.js";
import {
  decodeKeyRecord,
  decodePartitionRecord,
  encodePartitionRecord,
  type PartitionRecord,
} from "./records.js";
import { SerialQueue } from "./serial-queue.js";
import { generateTransferKeyPair, type TransferKeyPair } from "./transfer-key.js";

export const CREDENTIAL_BYTES = 32;
const CREDENTIAL_SALT_BYTES = 16;
/** Adds written in one journal frame at most (bounds a frame's size and the time one batch holds the queue). */
const MAX_BATCH = 512;

function credentialVerifier(salt: Uint8Array, credential: Uint8Array): Buffer {
  return createHmac("sha256", salt).update(credential).digest();
}

interface PendingAdd {
  handle: KeyHandle;
  material: Material;
  /** The partition epoch the caller's session belongs to: a zeroize in between voids the add. */
  epoch: number;
  /** False for a session object: kept in memory only, never journaled. */
  persist: boolean;
  resolve(handle: KeyHandle): void;
  reject(error: unknown): void;
}

export class PartitionCore {
  readonly queue = new SerialQueue();
  private pendingAdds: PendingAdd[] = [];

  private constructor(
    readonly index: number,
    /** Stable name of this partition: "<device id>/p<index>". */
    readonly id: string,
    private readonly files: DeviceFiles,
    private record: PartitionRecord,
    readonly keys: Map<string, LoadedKey>,
    private transferKeyPair: TransferKeyPair | undefined,
    private journal: KeyJournal | undefined,
  ) {}

  static async create(files: DeviceFiles, deviceId: string, index: number): Promise<PartitionCore> {
    await mkdir(join(files.dir, partitionDir(index)), { recursive: true });
    const record: PartitionRecord = { index, epoch: 0, initialized: false };
    await files.write(partitionStateFile(index), encodePartitionRecord(record));
    return new PartitionCore(index, `${deviceId}/p${index}`, files, record, new Map(), undefined, undefined);
  }

  /** Loads the partition record and replays its journal; drops crash leftovers (temp files, other epochs' journals). */
  static async load(files: DeviceFiles, deviceId: string, index: number): Promise<PartitionCore> {
    await files.removeTempFiles(partitionDir(index));
    await files.removeTempFiles(keysDir(index));
    const record = decodePartitionRecord(await files.read(partitionStateFile(index)), index);
    let keys = new Map<string, LoadedKey>();
    let journal: KeyJournal | undefined;
    if (record.legacyKeyIds) {
      // Format 1: keys in one file each. Journal them, then commit by writing a format 2 record.
      keys = await loadLegacyKeys(files, index, record.legacyKeyIds);
      await KeyJournal.removeAll(files, index);
      if (record.initialized) journal = await KeyJournal.rewrite(files, index, record.epoch, keys);
      delete record.legacyKeyIds;
      await files.write(partitionStateFile(index), encodePartitionRecord(record));
      await files.remove(keysDir(index));
    } else if (record.initialized) {
      ({ journal, keys } = await KeyJournal.open(files, index, record.epoch));
    } else {
      await KeyJournal.removeAll(files, index);
    }
    let transfer: TransferKeyPair | undefined;
    if (record.transferKey) {
      const privateKey = createPrivateKey({
        key: Buffer.from(record.transferKey),
        format: "der",
        type: "pkcs8",
      });
      transfer = { privateKey, publicKey: createPublicKey(privateKey) };
    }
    return new PartitionCore(index, `${deviceId}/p${index}`, files, record, keys, transfer, journal);
  }

  get initialized(): boolean {
    return this.record.initialized;
  }

  get epoch(): number {
    return this.record.epoch;
  }

  get transferKey(): TransferKeyPair {
    return (
      this.transferKeyPair ??
      fail("NotInitialized", `partition ${this.id} has no transfer key; initialize it first`)
    );
  }

  requireInitialized(): void {
    if (!this.record.initialized) {
      fail(
        "NotInitialized",
        `partition ${this.id} is not initialized (zeroized or new); initialize it first`,
      );
    }
  }

  checkCredential(credential: Uint8Array): boolean {
    const { credentialSalt, credentialVerifier: expected } = this.record;
    if (!credentialSalt || !expected || credential.length !== CREDENTIAL_BYTES) return false;
    return timingSafeEqual(credentialVerifier(credentialSalt, credential), expected);
  }

  getKey(id: string): LoadedKey {
    return this.keys.get(id) ?? fail("KeyNotFound", `no key ${id} in partition ${this.id}`, { keyId: id });
  }

  private async persist(next: PartitionRecord): Promise<void> {
    await this.files.write(partitionStateFile(this.index), encodePartitionRecord(next));
    this.record = next;
  }

  private requireJournal(): KeyJournal {
    return this.journal ?? fail("NotInitialized", `partition ${this.id} is not initialized`);
  }

  /**
   * Stores a new key for a session of `epoch` (an identical key already there is a
   * no-op, a different one a Conflict). Call OUTSIDE the queue: adds made meanwhile
   * join one batch, written by one queued flush.
   */
  addKey(handle: KeyHandle, material: Material, epoch: number, persist = true): Promise<KeyHandle> {
    return new Promise<KeyHandle>((resolve, reject) => {
      this.pendingAdds.push({ handle, material, epoch, persist, resolve, reject });
      if (this.pendingAdds.length === 1) void this.queue.run(() => this.flushAdds());
    });
  }

  /** Writes the adds pending now as one journal frame, then answers each. Runs inside the queue. */
  private async flushAdds(): Promise<void> {
    const batch = this.pendingAdds.splice(0, MAX_BATCH);
    if (this.pendingAdds.length > 0) void this.queue.run(() => this.flushAdds());
    const fresh = new Map<string, LoadedKey>();
    const journaled = new Set<string>();
    const written: { add: PendingAdd; key: LoadedKey }[] = [];
    for (const add of batch) {
      try {
        this.requireEpoch(add.epoch);
        const prior = this.keys.get(add.handle.id) ?? fresh.get(add.handle.id);
        if (!prior) fresh.set(add.handle.id, loadKey(add.handle, add.material));
        else if (!sameKey(prior, add.handle, add.material)) conflict(prior, this.id);
        if (!prior && add.persist) journaled.add(add.handle.id);
        written.push({ add, key: prior ?? (fresh.get(add.handle.id) as LoadedKey) });
      } catch (e) {
        add.reject(e);
      }
    }
    try {
      if (journaled.size > 0) {
        await this.requireJournal().append({
          adds: [...journaled].map((id) => {
            const k = fresh.get(id) as LoadedKey;
            return { handle: k.handle, material: materialOf(k) };
          }),
          removals: [],
        });
      }
      for (const [id, key] of fresh) this.keys.set(id, key);
    } catch (e) {
      for (const { add } of written) add.reject(e);
      return;
    }
    for (const { add, key } of written) add.resolve(copyHandle(key.handle));
  }

  private requireEpoch(epoch: number): void {
    if (!this.record.initialized || this.record.epoch !== epoch) {
      fail(
        "Unauthenticated",
        `partition ${this.id} was zeroized or re-initialized after this session logged in; log in again`,
      );
    }
  }

  /** Journals the key's removal (the commit point), then forgets it. Call inside the queue. */
  async deleteKey(id: string): Promise<void> {
    this.getKey(id);
    const journal = this.requireJournal();
    await journal.append({ adds: [], removals: [id] });
    this.keys.delete(id);
    // Deleted keys' sealed records stay in the journal until it is rewritten without them.
    if (journal.needsCompaction(this.keys.size)) await journal.compact(this.keys);
  }

  /** Destroys every key and the credential, on disk too. Call inside the queue. */
  async zeroize(): Promise<void> {
    await this.persist({ index: this.index, epoch: this.record.epoch + 1, initialized: false });
    this.keys.clear();
    this.transferKeyPair = undefined;
    this.journal = undefined;
    await KeyJournal.removeAll(this.files, this.index);
    await this.files.remove(keysDir(this.index));
    await this.files.sync(partitionDir(this.index));
  }

  /** Sets a fresh random credential and transfer key; returns the credential. Call inside the queue. */
  async initialize(): Promise<Uint8Array> {
    if (this.record.initialized) {
      fail("Conflict", `partition ${this.id} is already initialized; zeroize it first`);
    }
    const credential = randomBytes(CREDENTIAL_BYTES);
    const credentialSalt = randomBytes(CREDENTIAL_SALT_BYTES);
    const transfer = await generateTransferKeyPair();
    // Kept in the in-memory record: later writes of the partition record carry it again.
    const transferKey = transfer.privateKey.export({ type: "pkcs8", format: "der" });
    const epoch = this.record.epoch + 1;
    // The journal first: until the record names the new epoch, open() removes it as a leftover.
    const journal = await KeyJournal.create(this.files, this.index, epoch);
    await this.persist({
      index: this.index,
      epoch,
      initialized: true,
      credentialSalt,
      credentialVerifier: credentialVerifier(credentialSalt, credential),
      transferKey,
    });
    this.journal = journal;
    this.transferKeyPair = transfer;
    const forCaller = new Uint8Array(credential);
    credential.fill(0);
    return forCaller;
  }
}

/** Format 1 keys: one sealed file per listed id. */
async function loadLegacyKeys(
  files: DeviceFiles,
  index: number,
  ids: readonly string[],
): Promise<Map<string, LoadedKey>> {
  const keys = new Map<string, LoadedKey>();
  for (const id of ids) {
    const plaintext = await files.read(keyFile(index, id));
    try {
      const { handle, material } = decodeKeyRecord(plaintext, id);
      keys.set(id, loadKey(handle, importMaterial(shapeOf(handle), material)));
    } finally {
      plaintext.fill(0);
    }
  }
  return keys;
}

function sameKey(existing: LoadedKey, handle: KeyHandle, material: Material): boolean {
  if (!sameAttributes(existing.handle, handle)) return false;
  const a = exportMaterial(materialOf(existing));
  const b = exportMaterial(material);
  try {
    return a.length === b.length && timingSafeEqual(a, b);
  } finally {
    a.fill(0);
    b.fill(0);
  }
}

function conflict(existing: LoadedKey, partitionId: string): never {
  return fail(
    "Conflict",
    `partition ${partitionId} already holds ${describeKey(existing.handle)} with different attributes or material`,
    { keyId: existing.handle.id },
  );
}
