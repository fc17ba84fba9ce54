import type { Prng } from "@hsmpool/faults";
import { crc32 } from "./checksum.js";

/**
 * A simulated disk holding one append-only log file of framed records:
 *
 *   record = u32 LE payload length | u32 LE CRC-32 of payload | payload bytes
 *
 * Appends land in the "page cache" until fsync() makes them durable. A crash keeps
 * every fsynced byte, then a random prefix of the unsynced tail (partial write-back),
 * so the last surviving record may be torn; optionally one unsynced byte is
 * corrupted. recover() reads records from the start and truncates at the first torn
 * or checksum-failing record: the result is always a prefix of what was appended
 * that contains every fsynced record.
 */

export const RECORD_HEADER_BYTES = 8;

export interface CrashOptions {
  /** Probability that one byte of the surviving unsynced tail is flipped. */
  corruptProbability: number;
}

export interface CrashReport {
  durableBytes: number;
  /** Unsynced bytes that happened to reach the platter before the crash. */
  keptUnsyncedBytes: number;
  lostBytes: number;
  /** Offset of the flipped byte, if one was corrupted. */
  corruptedAt?: number;
}

export type RecoveryProblem = "torn" | "checksum";

export interface Recovery {
  records: Uint8Array[];
  /** Bytes of valid records; the file is truncated to this length. */
  validBytes: number;
  discardedBytes: number;
  /** Why reading stopped before the end of the file, if it did. */
  problem?: RecoveryProblem;
}

export class SimDisk {
  private buf = new Uint8Array(4096);
  private length = 0;
  private durableLength = 0;
  /** Count of fsync() calls (for stats and tests). */
  fsyncs = 0;

  get sizeBytes(): number {
    return this.length;
  }

  get unsyncedBytes(): number {
    return this.length - this.durableLength;
  }

  /** Append one framed record to the page cache (not durable until fsync). */
  append(payload: Uint8Array): void {
    const need = this.length + RECORD_HEADER_BYTES + payload.length;
    this.ensure(need);
    const view = new DataView(this.buf.buffer, this.buf.byteOffset);
    view.setUint32(this.length, payload.length, true);
    view.setUint32(this.length + 4, crc32(payload), true);
    this.buf.set(payload, this.length + RECORD_HEADER_BYTES);
    this.length = need;
  }

  fsync(): void {
    this.durableLength = this.length;
    this.fsyncs++;
  }

  /**
   * Replace the whole file with `payloads`, durably and atomically (the write-temp,
   * fsync, rename, fsync-directory dance, which a crash sees as old-or-new).
   */
  rewrite(payloads: readonly Uint8Array[]): void {
    this.length = 0;
    this.durableLength = 0;
    for (const p of payloads) this.append(p);
    this.fsync();
  }

  /** Power loss: unsynced bytes are lost, except a random prefix that may tear a record. */
  crash(prng: Prng, options: CrashOptions = { corruptProbability: 0 }): CrashReport {
    const unsynced = this.length - this.durableLength;
    const kept = unsynced === 0 ? 0 : prng.int(unsynced + 1);
    const report: CrashReport = {
      durableBytes: this.durableLength,
      keptUnsyncedBytes: kept,
      lostBytes: unsynced - kept,
    };
    this.length = this.durableLength + kept;
    if (kept > 0 && prng.chance(options.corruptProbability)) {
      const at = this.durableLength + prng.int(kept);
      this.buf[at] = (this.buf[at] as number) ^ (1 << prng.int(8));
      report.corruptedAt = at;
    }
    // What survived is what the platter holds now.
    this.durableLength = this.length;
    return report;
  }

  /** Read every intact record from the start; truncate the file after the last one. */
  recover(): Recovery {
    const records: Uint8Array[] = [];
    const view = new DataView(this.buf.buffer, this.buf.byteOffset);
    let at = 0;
    let problem: RecoveryProblem | undefined;
    while (at < this.length) {
      if (at + RECORD_HEADER_BYTES > this.length) {
        problem = "torn";
        break;
      }
      const len = view.getUint32(at, true);
      const crc = view.getUint32(at + 4, true);
      const end = at + RECORD_HEADER_BYTES + len;
      if (end > this.length) {
        // Either a torn tail or a corrupted length field; both end the readable log.
        problem = "torn";
        break;
      }
      if (crc32(this.buf, at + RECORD_HEADER_BYTES, end) !== crc) {
        problem = "checksum";
        break;
      }
      records.push(this.buf.slice(at + RECORD_HEADER_BYTES, end));
      at = end;
    }
    const discardedBytes = this.length - at;
    this.length = at;
    this.durableLength = at;
    return problem === undefined
      ? { records, validBytes: at, discardedBytes }
      : { records, validBytes: at, discardedBytes, problem };
  }

  /** Flip one bit at `offset` (tests use this to prove corruption is detected). */
  flipBit(offset: number, bit = 0): void {
    if (offset < 0 || offset >= this.length) throw new RangeError(`offset ${offset} outside the file`);
    this.buf[offset] = (this.buf[offset] as number) ^ (1 << bit);
  }

  private ensure(bytes: number): void {
    if (bytes <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < bytes) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
}
