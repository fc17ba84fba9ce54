/**
 * Canonical binary encoding shared by every format this package defines (log
 * commands, snapshots, peer messages, certificates). One value has exactly one
 * encoding: fixed field order, big-endian integers, strict booleans and option
 * flags, length-prefixed UTF-8 rejected when malformed, and no trailing bytes. That
 * is what makes snapshots byte-for-byte deterministic and fingerprints stable.
 *
 * The reader never trusts a length: every read is bounds-checked and a violation is
 * an IntegrityError naming the field, so corrupt input can never decode into a
 * different value by accident.
 */
import { fail } from "@hsmpool/errors";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, concatBytes } from "@noble/hashes/utils.js";

const MAX_U32 = 0xffff_ffff;
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function utf8(s: string): Uint8Array {
  return utf8Encoder.encode(s);
}

export function sha256Hex(...parts: Uint8Array[]): string {
  return bytesToHex(sha256(concatBytes(...parts)));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

export class ByteWriter {
  private readonly chunks: Uint8Array[] = [];

  u8(n: number): this {
    if (!Number.isInteger(n) || n < 0 || n > 0xff) fail("Internal", `u8 out of range: ${n}`);
    this.chunks.push(Uint8Array.of(n));
    return this;
  }

  u32(n: number): this {
    if (!Number.isInteger(n) || n < 0 || n > MAX_U32) fail("Internal", `u32 out of range: ${n}`);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n);
    this.chunks.push(b);
    return this;
  }

  /** A non-negative safe integer (times in ms, indexes, versions) as 8 bytes. */
  uint(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) fail("Internal", `integer out of range: ${n}`);
    const b = new Uint8Array(8);
    const view = new DataView(b.buffer);
    view.setUint32(0, Math.floor(n / 2 ** 32));
    view.setUint32(4, n % 2 ** 32);
    this.chunks.push(b);
    return this;
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  /** Length-prefixed bytes. Not copied: finish() copies every chunk once, so encode right after writing. */
  bytes(b: Uint8Array): this {
    this.u32(b.length);
    this.chunks.push(b);
    return this;
  }

  /** Raw bytes with no length prefix (fixed-size fields, magic). */
  raw(b: Uint8Array): this {
    this.chunks.push(b);
    return this;
  }

  string(s: string): this {
    return this.bytes(utf8(s));
  }

  /** Presence flag (0/1) then the value. */
  optional<T>(value: T | null | undefined, write: (w: this, v: T) => void): this {
    if (value === null || value === undefined) return this.u8(0);
    this.u8(1);
    write(this, value);
    return this;
  }

  list<T>(items: readonly T[], write: (w: this, item: T) => void): this {
    this.u32(items.length);
    for (const item of items) write(this, item);
    return this;
  }

  finish(): Uint8Array {
    // No spread into concatBytes: a snapshot has millions of chunks, more than a call's argument limit.
    let total = 0;
    for (const chunk of this.chunks) total += chunk.length;
    const out = new Uint8Array(total);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}

export class ByteReader {
  private offset = 0;

  constructor(
    private readonly data: Uint8Array,
    /** What is being decoded, for error messages ("log entry", "snapshot", ...). */
    private readonly what: string,
  ) {}

  private take(n: number, field: string): Uint8Array {
    if (n > this.data.length - this.offset) {
      fail("IntegrityError", `${this.what} is truncated: ${field} needs ${n} bytes at offset ${this.offset}`);
    }
    const out = this.data.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  u8(field: string): number {
    return this.take(1, field)[0] ?? 0;
  }

  u32(field: string): number {
    const b = this.take(4, field);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
  }

  uint(field: string): number {
    const b = this.take(8, field);
    const view = new DataView(b.buffer, b.byteOffset, 8);
    const high = view.getUint32(0);
    if (high >= 2 ** 21) this.corrupt(`${field} exceeds the largest safe integer`);
    return high * 2 ** 32 + view.getUint32(4);
  }

  bool(field: string): boolean {
    const v = this.u8(field);
    if (v > 1) this.corrupt(`${field} is not a boolean (byte ${v})`);
    return v === 1;
  }

  bytes(field: string, maxBytes: number): Uint8Array {
    const n = this.u32(`${field} length`);
    if (n > maxBytes) this.corrupt(`${field} is ${n} bytes; the limit is ${maxBytes}`);
    return Uint8Array.from(this.take(n, field));
  }

  raw(n: number, field: string): Uint8Array {
    return Uint8Array.from(this.take(n, field));
  }

  string(field: string, maxBytes: number): string {
    const b = this.bytes(field, maxBytes);
    try {
      return utf8Decoder.decode(b);
    } catch {
      return this.corrupt(`${field} is not valid UTF-8`);
    }
  }

  optional<T>(field: string, read: (r: this) => T): T | null {
    return this.bool(`${field} presence flag`) ? read(this) : null;
  }

  list<T>(field: string, maxItems: number, read: (r: this) => T): T[] {
    const n = this.u32(`${field} count`);
    if (n > maxItems) this.corrupt(`${field} has ${n} items; the limit is ${maxItems}`);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(read(this));
    return out;
  }

  /** Every byte must have been consumed: trailing bytes mean a different format or corruption. */
  end(): void {
    if (this.offset !== this.data.length) {
      this.corrupt(`${this.data.length - this.offset} unexpected trailing bytes`);
    }
  }

  corrupt(problem: string): never {
    return fail("IntegrityError", `${this.what} is corrupt: ${problem}`);
  }
}
