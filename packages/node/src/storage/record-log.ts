/**
 * An append-only file of checksummed records: the framing layer of the write-ahead
 * log. It knows nothing about Raft or sealing; payloads are opaque bytes.
 *
 *   file   := header record*
 *   header := "HWAL" | version u8 = 1 | generation (16 random bytes) | checksum (8)
 *   record := "HR" | length u32 | checksum (8) | payload (length bytes)
 *   checksum = first 8 bytes of SHA-256 (header: of the bytes before it; record: of
 *              length u32 | payload)
 *
 * Crash model: appends are single writes followed by fdatasync, so after a crash only
 * the last (unsynced) record can be incomplete or garbled. Recovery therefore reads
 * records until the first one that does not verify, and then:
 *   - if no valid record follows it anywhere in the file, it is a torn tail: the file
 *     is truncated there (nothing fsynced is lost);
 *   - if a valid record does follow, a record in the middle is corrupt: IntegrityError,
 *     and the node refuses to start rather than silently drop acknowledged data.
 * A corruption inside the very last record cannot be told apart from a torn write
 * and is treated as one (like etcd's WAL); Raft re-replicates that entry.
 *
 * Preallocation (optional, as etcd's WAL does): the file is kept zero-filled ahead of
 * its last record, in chunks. An fdatasync that does not grow the file needs no
 * file-system journal commit, so under a busy disk it waits only for its own data
 * blocks. Zero bytes after the last record are free space, not a torn tail.
 */
import { createHash } from "node:crypto";
import { fail } from "@hsmpool/errors";
import { type Randomness, systemRandomness } from "../seams/random.js";
import { type AppendableFile, type DurableStorage, fileStorage, type SyncOptions } from "../seams/storage.js";

const FILE_MAGIC = Buffer.from("HWAL", "ascii");
const FILE_VERSION = 1;
export const GENERATION_BYTES = 16;
const CHECKSUM_BYTES = 8;
export const FILE_HEADER_BYTES = FILE_MAGIC.length + 1 + GENERATION_BYTES + CHECKSUM_BYTES;
const RECORD_MAGIC = Buffer.from("HR", "ascii");
export const RECORD_HEADER_BYTES = RECORD_MAGIC.length + 4 + CHECKSUM_BYTES;
/** No single record is larger (a Raft snapshot is stored in its own file, not here). */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;

function checksum(...parts: Uint8Array[]): Buffer {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest().subarray(0, CHECKSUM_BYTES);
}

/** Encodes one record (header + payload). */
export function encodeRecord(payload: Uint8Array): Buffer {
  if (payload.length > MAX_RECORD_BYTES)
    fail("BadParameter", `WAL record of ${payload.length} bytes is too large`);
  const out = Buffer.alloc(RECORD_HEADER_BYTES + payload.length);
  RECORD_MAGIC.copy(out, 0);
  out.writeUInt32BE(payload.length, 2);
  out.set(payload, RECORD_HEADER_BYTES);
  checksum(out.subarray(2, 6), payload).copy(out, 6);
  return out;
}

/** The record starting at `offset`, or null if the bytes there are not a complete, valid record. */
function recordAt(file: Buffer, offset: number): { payload: Buffer; end: number } | null {
  if (file.length - offset < RECORD_HEADER_BYTES) return null;
  if (file[offset] !== RECORD_MAGIC[0] || file[offset + 1] !== RECORD_MAGIC[1]) return null;
  const length = file.readUInt32BE(offset + 2);
  if (length > MAX_RECORD_BYTES) return null;
  const end = offset + RECORD_HEADER_BYTES + length;
  if (end > file.length) return null;
  const payload = file.subarray(offset + RECORD_HEADER_BYTES, end);
  const sum = checksum(file.subarray(offset + 2, offset + 6), payload);
  if (!sum.equals(file.subarray(offset + 6, offset + 6 + CHECKSUM_BYTES))) return null;
  return { payload, end };
}

export interface ScannedLog {
  generation: Uint8Array;
  records: Uint8Array[];
  /** Where the valid records end; bytes beyond are a torn tail to cut off (zero bytes: preallocated space). */
  validEnd: number;
  /** Every byte after validEnd is zero (preallocated space, nothing to cut off). */
  zeroTail: boolean;
}

/** Parses a whole log file image (see the module comment for the recovery rule). */
export function scanLog(file: Buffer, what = "write-ahead log"): ScannedLog {
  if (file.length < FILE_HEADER_BYTES) {
    fail("IntegrityError", `${what} is ${file.length} bytes, shorter than its header`);
  }
  if (!file.subarray(0, FILE_MAGIC.length).equals(FILE_MAGIC)) {
    fail("IntegrityError", `${what} has the wrong magic: not an hsmpool write-ahead log`);
  }
  if (file[FILE_MAGIC.length] !== FILE_VERSION) {
    fail(
      "IntegrityError",
      `${what} has format version ${file[FILE_MAGIC.length]}; this build reads ${FILE_VERSION}`,
    );
  }
  const generationEnd = FILE_MAGIC.length + 1 + GENERATION_BYTES;
  if (!checksum(file.subarray(0, generationEnd)).equals(file.subarray(generationEnd, FILE_HEADER_BYTES))) {
    fail("IntegrityError", `${what} has a corrupt header (checksum mismatch)`);
  }
  const generation = Uint8Array.from(file.subarray(FILE_MAGIC.length + 1, generationEnd));
  const records: Uint8Array[] = [];
  let offset = FILE_HEADER_BYTES;
  while (offset < file.length) {
    const r = recordAt(file, offset);
    if (r === null) break;
    records.push(Uint8Array.from(r.payload));
    offset = r.end;
  }
  const zeroTail = isZero(file.subarray(offset));
  if (!zeroTail) {
    for (let probe = offset + 1; probe + RECORD_HEADER_BYTES <= file.length; probe++) {
      if (recordAt(file, probe) !== null) {
        fail(
          "IntegrityError",
          `${what}: record ${records.length} at byte ${offset} is corrupt but valid records follow it; ` +
            "refusing to start rather than drop logged data (restore the state directory or re-join the node)",
          { offset, record: records.length },
        );
      }
    }
  }
  return { generation, records, validEnd: offset, zeroTail };
}

const ZERO_CHUNK = Buffer.alloc(64 * 1024);

/** Compared natively a chunk at a time: every open scans the WAL's preallocated tail (a megabyte of zeros). */
function isZero(bytes: Uint8Array): boolean {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at < b.length; at += ZERO_CHUNK.length) {
    const end = Math.min(b.length, at + ZERO_CHUNK.length);
    if (ZERO_CHUNK.compare(b, at, end, 0, end - at) !== 0) return false;
  }
  return true;
}

/** `n` rounded up to a whole number of `chunk`s (no rounding when chunk is 0). */
function allocationFor(n: number, chunk: number): number {
  return chunk > 0 ? Math.ceil(n / chunk) * chunk : n;
}

/** A fresh random file generation (bound into every record's AAD by the sealing layer). */
export function newGeneration(random: Randomness = systemRandomness): Uint8Array {
  return random.bytes(GENERATION_BYTES);
}

function fileHeader(generation: Uint8Array): Buffer {
  const body = Buffer.concat([FILE_MAGIC, Buffer.of(FILE_VERSION), generation]);
  return Buffer.concat([body, checksum(body)]);
}

export class RecordLog {
  private constructor(
    private fh: AppendableFile,
    readonly path: string,
    readonly generation: Uint8Array,
    private size: number,
    private count: number,
    /** File length: the records, then zero bytes up to here (preallocation). */
    private allocated: number,
    private readonly chunk: number,
  ) {}

  /** Number of records in the file (recovered + appended). */
  get recordCount(): number {
    return this.count;
  }

  get sizeBytes(): number {
    return this.size;
  }

  /**
   * Opens `path`, recovering its records (a torn tail is cut off and the file
   * fsynced), or creates an empty log there. IntegrityError for mid-file corruption.
   */
  static async open(
    path: string,
    storage: DurableStorage = fileStorage,
    random: Randomness = systemRandomness,
    preallocateBytes = 0,
  ): Promise<{ log: RecordLog; records: Uint8Array[]; truncatedBytes: number }> {
    const stored = await storage.read(path);
    if (stored === null) {
      const log = await RecordLog.create(path, [], newGeneration(random), storage, preallocateBytes);
      return { log, records: [], truncatedBytes: 0 };
    }
    const image = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
    const scanned = scanLog(image, `write-ahead log ${path}`);
    const fh = await storage.openForWrite(path);
    const { zeroTail } = scanned;
    const truncatedBytes = zeroTail ? 0 : image.length - scanned.validEnd;
    if (truncatedBytes > 0) {
      await fh.truncate(scanned.validEnd);
      await fh.sync();
    }
    const log = new RecordLog(
      fh,
      path,
      scanned.generation,
      scanned.validEnd,
      scanned.records.length,
      zeroTail ? image.length : scanned.validEnd,
      preallocateBytes,
    );
    return { log, records: scanned.records, truncatedBytes };
  }

  /**
   * Atomically replaces (or creates) the log at `path` with a new generation holding
   * `payloads` (storage.writeAtomic: temp file, fsync, rename over, directory fsync).
   */
  static async create(
    path: string,
    payloads: readonly Uint8Array[],
    generation: Uint8Array,
    storage: DurableStorage = fileStorage,
    preallocateBytes = 0,
  ): Promise<RecordLog> {
    if (generation.length !== GENERATION_BYTES) fail("Internal", "WAL generation must be 16 bytes");
    const records = Buffer.concat([fileHeader(generation), ...payloads.map(encodeRecord)]);
    const allocated = allocationFor(records.length, preallocateBytes);
    await storage.writeAtomic(path, records, { zeroFillTo: allocated });
    const fh = await storage.openForWrite(path);
    return new RecordLog(fh, path, generation, records.length, payloads.length, allocated, preallocateBytes);
  }

  /** Appends records with one write (not yet durable: call sync()); past the allocation it adds a zeroed chunk. */
  async append(payloads: readonly Uint8Array[]): Promise<void> {
    if (payloads.length === 0) return;
    let buf = Buffer.concat(payloads.map(encodeRecord));
    const end = this.size + buf.length;
    if (this.chunk > 0 && end > this.allocated) {
      const grown = Buffer.alloc(allocationFor(end, this.chunk) - this.size);
      buf.copy(grown);
      buf = grown;
      this.allocated = this.size + grown.length;
    }
    await this.fh.write(buf, this.size);
    this.size = end;
    this.count += payloads.length;
  }

  /** Makes every appended record durable. */
  async sync(options?: SyncOptions): Promise<void> {
    await this.fh.sync(options);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
