/**
 * A partition's keys on disk: one append-only journal per partition epoch and
 * generation, `p<N>/keys-e<epoch>-g<gen>.log`. Each frame is one batch of changes
 * (keys added, key ids removed), written with ONE durable append, so adding a batch
 * of keys costs one fdatasync and no rewrite of what is already there.
 *
 * Frame on disk: u32 BE length | u32 BE length XOR 0xffffffff | sealed record (sealed-file.ts) whose place is
 * "<journal file>#<frame number>", so frames cannot be reordered, moved between
 * journals or replayed from another epoch. Frame plaintext: u32 adds | (u32 length |
 * key record)* | u32 removals | (u8 length | key id)*.
 *
 * Crashes: a crash mid-append leaves a short last frame; open() cuts it, so the
 * partition reads as it was before that batch (all of the batch or none of it). A
 * complete frame that does not authenticate, a frame header whose two copies of the
 * length disagree, or a missing journal, is an IntegrityError. Compaction writes the live keys as generation g+1 (temp file,
 * rename) and only then removes generation g; open() keeps the highest generation.
 */
import { fail } from "@hsmpool/errors";
import type { DeviceFiles } from "./device-files.js";
import { type KeyHandle, shapeOf } from "./key-attributes.js";
import {
  exportMaterial,
  importMaterial,
  type LoadedKey,
  loadKey,
  type Material,
  materialOf,
} from "./key-material.js";
import { decodeKeyRecord, encodeKeyRecord } from "./records.js";

const JOURNAL_NAME = /^keys-e(\d+)-g(\d+)\.log$/;
/** A journal is rewritten once it holds this many records more than twice the live keys (deletes pile up). */
const COMPACTION_SLACK = 64;
const FRAME_HEADER_BYTES = 8;

export const journalFile = (index: number, epoch: number, gen: number) =>
  `p${index}/keys-e${epoch}-g${gen}.log`;

export interface KeyChange {
  adds: { handle: KeyHandle; material: Material }[];
  removals: string[];
}

function corrupt(file: string, why: string): never {
  return fail(
    "IntegrityError",
    `HSM device file ${file} ${why}; the device state was tampered with or corrupted`,
    {
      file,
    },
  );
}

/** Seals one frame; the key records' plaintext is wiped once sealed. */
function encodeFrame(files: DeviceFiles, place: string, change: KeyChange): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  parts.push(u32(change.adds.length));
  for (const { handle, material } of change.adds) {
    const record = encodeKeyRecord(handle, exportMaterial(material));
    parts.push(u32(record.length), record);
  }
  parts.push(u32(change.removals.length));
  for (const id of change.removals) parts.push(Buffer.from([id.length]), Buffer.from(id, "ascii"));
  const plaintext = Buffer.concat(parts);
  try {
    const sealed = files.seal(place, plaintext);
    return Buffer.concat([u32(sealed.length), u32((sealed.length ^ 0xffffffff) >>> 0), sealed]);
  } finally {
    plaintext.fill(0);
    for (const p of parts) p.fill(0);
  }
}

/** Applies one opened frame to `keys`; returns how many records it held. */
function applyFrame(file: string, plaintext: Buffer, keys: Map<string, LoadedKey>): number {
  let at = 0;
  const need = (n: number) => {
    if (at + n > plaintext.length) corrupt(file, "holds a malformed frame");
  };
  const u32 = () => {
    need(4);
    const n = plaintext.readUInt32BE(at);
    at += 4;
    return n;
  };
  const adds = u32();
  for (let i = 0; i < adds; i++) {
    const length = u32();
    need(length);
    const record = plaintext.subarray(at, at + length);
    at += length;
    const id = peekKeyId(file, record);
    const { handle, material } = decodeKeyRecord(record, id);
    keys.set(id, loadKey(handle, importMaterial(shapeOf(handle), material)));
  }
  const removals = u32();
  for (let i = 0; i < removals; i++) {
    need(1);
    const length = plaintext[at++] as number;
    need(length);
    keys.delete(plaintext.toString("ascii", at, at + length));
    at += length;
  }
  if (at !== plaintext.length) corrupt(file, "holds a malformed frame");
  return adds + removals;
}

/** The id inside a key record (decodeKeyRecord then checks it against itself and validates the rest). */
function peekKeyId(file: string, record: Buffer): string {
  if (record.length < 4) corrupt(file, "holds a malformed key record");
  const length = record.readUInt32BE(0);
  try {
    const id = (JSON.parse(record.toString("utf8", 4, 4 + length)) as { id?: unknown }).id;
    if (typeof id === "string") return id;
  } catch {
    // reported below
  }
  return corrupt(file, "holds a malformed key record");
}

export class KeyJournal {
  private constructor(
    private readonly files: DeviceFiles,
    private readonly index: number,
    private readonly epoch: number,
    private gen: number,
    /** Frames in the current generation's file (the next frame's number). */
    private frames: number,
    /** Records (adds + removals) in the current file, live or not. */
    private records: number,
  ) {}

  private get file(): string {
    return journalFile(this.index, this.epoch, this.gen);
  }

  /** Journal names of this partition with their epoch and generation. */
  private static async list(files: DeviceFiles, index: number) {
    const found: { name: string; epoch: number; gen: number }[] = [];
    for (const name of await files.list(`p${index}`)) {
      const m = JOURNAL_NAME.exec(name);
      if (m) found.push({ name: `p${index}/${name}`, epoch: Number(m[1]), gen: Number(m[2]) });
    }
    return found;
  }

  /** Starts an empty journal for a newly initialized epoch (before the record that names the epoch is written). */
  static async create(files: DeviceFiles, index: number, epoch: number): Promise<KeyJournal> {
    await files.writeRaw(journalFile(index, epoch, 0), new Uint8Array(0));
    return new KeyJournal(files, index, epoch, 0, 0, 0);
  }

  /** Journals as a new partition of `keys` (format 1 migration), replacing any other of the epoch. */
  static async rewrite(
    files: DeviceFiles,
    index: number,
    epoch: number,
    keys: Map<string, LoadedKey>,
  ): Promise<KeyJournal> {
    const journal = await KeyJournal.create(files, index, epoch);
    await journal.compact(keys);
    return journal;
  }

  /**
   * Opens the journal of `epoch` and replays it into a key map. Journals of other
   * epochs (a zeroize or initialize interrupted by a crash) and older generations
   * (an interrupted compaction) are removed; a torn last frame is cut off.
   */
  static async open(
    files: DeviceFiles,
    index: number,
    epoch: number,
  ): Promise<{ journal: KeyJournal; keys: Map<string, LoadedKey> }> {
    const all = await KeyJournal.list(files, index);
    const mine = all.filter((j) => j.epoch === epoch).sort((a, b) => b.gen - a.gen);
    const current = mine[0] ?? corrupt(journalFile(index, epoch, 0), "is missing");
    const bytes = (await files.readRaw(current.name)) ?? corrupt(current.name, "is missing");
    const keys = new Map<string, LoadedKey>();
    let at = 0;
    let frames = 0;
    let records = 0;
    while (at < bytes.length) {
      if (at + FRAME_HEADER_BYTES > bytes.length) break;
      const length = bytes.readUInt32BE(at);
      if ((bytes.readUInt32BE(at + 4) ^ 0xffffffff) >>> 0 !== length)
        corrupt(current.name, `has a damaged frame header at byte ${at}`);
      if (at + FRAME_HEADER_BYTES + length > bytes.length) break;
      const body = bytes.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + length);
      const plaintext = files.open(`${current.name}#${frames}`, body);
      try {
        records += applyFrame(current.name, plaintext, keys);
      } finally {
        plaintext.fill(0);
      }
      at += FRAME_HEADER_BYTES + length;
      frames++;
    }
    if (at < bytes.length) await files.truncate(current.name, at); // the torn tail of a crashed append
    bytes.fill(0);
    // Only once the current journal has opened: a damaged newer generation must not cost the older one.
    for (const j of all) if (j !== current) await files.remove(j.name);
    if (all.length > 1) await files.sync(`p${index}`);
    return { journal: new KeyJournal(files, index, epoch, current.gen, frames, records), keys };
  }

  /** Makes one batch durable with a single append. */
  async append(change: KeyChange): Promise<void> {
    const frame = encodeFrame(this.files, `${this.file}#${this.frames}`, change);
    try {
      await this.files.append(this.file, frame);
    } catch (e) {
      // The file may hold part of the frame: cut it so the next append starts clean.
      await this.reopenTail().catch(() => {});
      throw e;
    }
    this.frames++;
    this.records += change.adds.length + change.removals.length;
  }

  /** Whether the file holds enough dead records that rewriting it is worth it. */
  needsCompaction(liveKeys: number): boolean {
    return this.records > 2 * liveKeys + COMPACTION_SLACK;
  }

  /** Writes the live keys as the next generation (one frame), then removes the current one. */
  async compact(keys: Map<string, LoadedKey>): Promise<void> {
    const next = journalFile(this.index, this.epoch, this.gen + 1);
    const adds = [...keys.values()].map((k) => ({ handle: k.handle, material: materialOf(k) }));
    const frame = encodeFrame(this.files, `${next}#0`, { adds, removals: [] });
    await this.files.writeRaw(next, frame);
    const old = this.file;
    this.gen++;
    this.frames = 1;
    this.records = adds.length;
    await this.files.remove(old);
    await this.files.sync(`p${this.index}`);
  }

  /** After a failed append: re-reads the file and cuts whatever follows the last whole frame. */
  private async reopenTail(): Promise<void> {
    const bytes = await this.files.readRaw(this.file);
    if (!bytes) return;
    let at = 0;
    for (let i = 0; i < this.frames && at + 4 <= bytes.length; i++)
      at += FRAME_HEADER_BYTES + bytes.readUInt32BE(at);
    if (at < bytes.length) await this.files.truncate(this.file, at);
  }

  /** Removes every journal of the partition (zeroize). */
  static async removeAll(files: DeviceFiles, index: number): Promise<void> {
    for (const j of await KeyJournal.list(files, index)) await files.remove(j.name);
  }
}
