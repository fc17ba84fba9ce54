/**
 * The device directory and its files:
 *
 *   device.key                 32 random bytes (stands for the HSM's internal key storage)
 *   device.state               sealed: device id, partition count
 *   p<N>/partition.state       sealed: epoch, initialised?, credential verifier, transfer key, key ids
 *   p<N>/keys-e<E>-g<G>.log    the partition's keys (key-journal.ts): sealed frames, appended
 *   p<N>/keys/<key id>.key     format 1 only (read once and migrated into the journal)
 *
 * All but device.key and the journal are sealed records (sealed-file.ts) written
 * atomically; the journal is a file of sealed frames, appended durably.
 */
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { fail } from "@hsmpool/errors";
import {
  appendFileDurable,
  fsyncDir,
  readFileIfExists,
  TEMP_MARKER,
  truncateDurable,
  writeFileAtomic,
} from "@hsmpool/files";
import { openRecord, sealRecord } from "./sealed-file.js";

export const DEVICE_KEY_FILE = "device.key";
export const DEVICE_STATE_FILE = "device.state";

export const partitionDir = (index: number) => `p${index}`;
export const partitionStateFile = (index: number) => `p${index}/partition.state`;
export const keysDir = (index: number) => `p${index}/keys`;
export const keyFile = (index: number, keyId: string) => `p${index}/keys/${keyId}.key`;

export function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === "ENOENT";
}

export class DeviceFiles {
  constructor(
    readonly dir: string,
    private readonly storageKey: Buffer,
    /** Binds every record to this device; undefined only while reading device.state itself. */
    private readonly deviceId: string | undefined,
  ) {}

  private place(rel: string): string {
    return this.deviceId === undefined ? rel : `${this.deviceId}/${rel}`;
  }

  async write(rel: string, plaintext: Uint8Array): Promise<void> {
    await writeFileAtomic(join(this.dir, rel), sealRecord(this.storageKey, this.place(rel), plaintext));
  }

  /** Reads and opens a sealed record; a missing file is an IntegrityError (the device lost state). */
  async read(rel: string): Promise<Buffer> {
    let file: Buffer;
    try {
      file = await readFile(join(this.dir, rel));
    } catch (e) {
      if (isNotFound(e))
        fail("IntegrityError", `HSM device file ${rel} is missing from ${this.dir}`, { file: rel });
      throw e;
    }
    return openRecord(this.storageKey, this.place(rel), file);
  }

  /** Seals `plaintext` for the place `rel` (a file or a frame inside one) without writing it. */
  seal(rel: string, plaintext: Uint8Array): Buffer {
    return sealRecord(this.storageKey, this.place(rel), plaintext);
  }

  /** Opens bytes sealed for the place `rel` (IntegrityError if they do not authenticate). */
  open(rel: string, sealed: Buffer): Buffer {
    return openRecord(this.storageKey, this.place(rel), sealed);
  }

  /** A file's raw bytes, or null when it does not exist. */
  async readRaw(rel: string): Promise<Buffer | null> {
    const bytes = await readFileIfExists(join(this.dir, rel));
    return bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : null;
  }

  /** Replaces a file with raw (already sealed) bytes, crash-safely. */
  async writeRaw(rel: string, bytes: Uint8Array): Promise<void> {
    await writeFileAtomic(join(this.dir, rel), bytes);
  }

  async append(rel: string, bytes: Uint8Array): Promise<void> {
    await appendFileDurable(join(this.dir, rel), bytes);
  }

  async truncate(rel: string, length: number): Promise<void> {
    await truncateDurable(join(this.dir, rel), length);
  }

  async remove(rel: string): Promise<void> {
    await rm(join(this.dir, rel), { force: true, recursive: true });
  }

  async sync(rel: string): Promise<void> {
    await fsyncDir(join(this.dir, rel));
  }

  /** Names in a directory (empty if it does not exist). */
  async list(rel: string): Promise<string[]> {
    try {
      return await readdir(join(this.dir, rel));
    } catch (e) {
      if (isNotFound(e)) return [];
      throw e;
    }
  }

  /** Deletes temp files left by a crash during an atomic write. */
  async removeTempFiles(rel: string): Promise<void> {
    for (const name of await this.list(rel)) {
      if (name.includes(TEMP_MARKER)) await this.remove(join(rel, name));
    }
  }
}
