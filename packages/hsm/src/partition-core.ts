/**
 * One partition's state inside the device: its record, its loaded keys and its
 * transfer key, and every change to them. Each change writes the sealed files first
 * and updates memory only once they are durable, one change at a time (SerialQueue),
 * so a failed write leaves the partition exactly as it was.
 */
import { createHmac, createPrivateKey, createPublicKey, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fail } from "@hsmpool/errors";
import { type DeviceFiles, keyFile, keysDir, partitionDir, partitionStateFile } from "./device-files.js";
import { copyHandle, describeKey, type KeyHandle, sameAttributes, shapeOf } from "./key-attributes.js";
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
  encodeKeyRecord,
  encodePartitionRecord,
  type PartitionRecord,
} from "./records.js";
import { SerialQueue } from "./serial-queue.js";
import { generateTransferKeyPair, type TransferKeyPair } from "./transfer-key.js";

export const CREDENTIAL_BYTES = 32;
const CREDENTIAL_SALT_BYTES = 16;

function credentialVerifier(salt: Uint8Array, credential: Uint8Array): Buffer {
  return createHmac("sha256", salt).update(credential).digest();
}

export class PartitionCore {
  readonly queue = new SerialQueue();

  private constructor(
    readonly index: number,
    /** Stable name of this partition: "<device id>/p<index>". */
    readonly id: string,
    private readonly files: DeviceFiles,
    private record: PartitionRecord,
    readonly keys: Map<string, LoadedKey>,
    private transferKeyPair: TransferKeyPair | undefined,
  ) {}

  static async create(files: DeviceFiles, deviceId: string, index: number): Promise<PartitionCore> {
    await mkdir(join(files.dir, partitionDir(index)), { recursive: true });
    const record: PartitionRecord = { index, epoch: 0, initialized: false, keyIds: [] };
    await files.write(partitionStateFile(index), encodePartitionRecord(record));
    return new PartitionCore(index, `${deviceId}/p${index}`, files, record, new Map(), undefined);
  }

  /** Loads the partition record and every key it lists; drops crash leftovers (temp files, unlisted key files). */
  static async load(files: DeviceFiles, deviceId: string, index: number): Promise<PartitionCore> {
    await files.removeTempFiles(partitionDir(index));
    await files.removeTempFiles(keysDir(index));
    const record = decodePartitionRecord(await files.read(partitionStateFile(index)), index);
    const keys = new Map<string, LoadedKey>();
    for (const id of record.keyIds) {
      const plaintext = await files.read(keyFile(index, id));
      try {
        const { handle, material } = decodeKeyRecord(plaintext, id);
        keys.set(id, loadKey(handle, importMaterial(shapeOf(handle), material)));
      } finally {
        plaintext.fill(0);
      }
    }
    const listed = new Set(record.keyIds.map((id) => `${id}.key`));
    for (const name of await files.list(keysDir(index))) {
      if (!listed.has(name)) await files.remove(join(keysDir(index), name));
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
    return new PartitionCore(index, `${deviceId}/p${index}`, files, record, keys, transfer);
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

  /** Stores a new key: key file first, then the partition record that lists it. Call inside the queue. */
  async addKey(handle: KeyHandle, material: Material): Promise<KeyHandle> {
    const existing = this.keys.get(handle.id);
    if (existing)
      return sameKey(existing, handle, material) ? copyHandle(existing.handle) : conflict(existing, this.id);
    const plaintext = encodeKeyRecord(handle, exportMaterial(material));
    try {
      await mkdir(join(this.files.dir, keysDir(this.index)), { recursive: true });
      await this.files.write(keyFile(this.index, handle.id), plaintext);
    } finally {
      plaintext.fill(0);
    }
    await this.persist({ ...this.record, keyIds: [...this.record.keyIds, handle.id] });
    this.keys.set(handle.id, loadKey(handle, material));
    return copyHandle(handle);
  }

  /** Unlists the key (the commit point), then deletes its file. Call inside the queue. */
  async deleteKey(id: string): Promise<void> {
    this.getKey(id);
    await this.persist({ ...this.record, keyIds: this.record.keyIds.filter((k) => k !== id) });
    this.keys.delete(id);
    await this.files.remove(keyFile(this.index, id));
    await this.files.sync(keysDir(this.index));
  }

  /** Destroys every key and the credential, on disk too. Call inside the queue. */
  async zeroize(): Promise<void> {
    await this.persist({ index: this.index, epoch: this.record.epoch + 1, initialized: false, keyIds: [] });
    this.keys.clear();
    this.transferKeyPair = undefined;
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
    const transfer = generateTransferKeyPair();
    // Kept in the in-memory record: later writes of the partition record carry it again.
    const transferKey = transfer.privateKey.export({ type: "pkcs8", format: "der" });
    await this.persist({
      index: this.index,
      epoch: this.record.epoch + 1,
      initialized: true,
      credentialSalt,
      credentialVerifier: credentialVerifier(credentialSalt, credential),
      transferKey,
      keyIds: [],
    });
    this.transferKeyPair = transfer;
    const forCaller = new Uint8Array(credential);
    credential.fill(0);
    return forCaller;
  }
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
