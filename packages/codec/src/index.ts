/**
 * @hsmpool/codec: the one binary writer/reader behind every format the project
 * persists or signs (pool log commands and snapshots, the node's WAL and snapshot
 * file, SIGSTRUCT, quotes, sealed blobs, the simulator's WAL). Each format picks its
 * primitives; the codec only guarantees that a primitive always has the same bytes:
 *
 *   u8 / u16 / u32          big-endian, range-checked
 *   u64                     a non-negative safe integer as 8 bytes big-endian
 *   varint                  unsigned LEB128 of a non-negative safe integer (minimal form)
 *   bytes / string          u32 length prefix     (pool, node)
 *   bytes16 / bytes8        u16 / u8 length prefix (platform)
 *   varBytes / varString    varint length prefix  (simulator)
 *   raw                     no prefix (magic, fixed-size fields)
 *
 * The reader never trusts a length: every read is bounds-checked and a short or
 * malformed input throws a typed HsmPoolError (IntegrityError by default, or what the
 * format's own `onCorrupt` throws), never a RangeError and never a wrong value.
 */
import { fail } from "@hsmpool/errors";

const MAX_U32 = 0xffff_ffff;
const TWO_32 = 2 ** 32;
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Longest string decodeUtf8 reads by hand (String.fromCharCode takes its bytes as arguments). */
const ASCII_FAST_PATH_MAX_BYTES = 4096;

function isAscii(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if ((b[i] as number) >= 0x80) return false;
  return true;
}

export function utf8(s: string): Uint8Array {
  return utf8Encoder.encode(s);
}

/** Constant-time over the common length (no early exit on the first difference); false for different lengths. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += HEX[b];
  return out;
}

/** Strict: lower-case hex of exactly `sizeBytes` bytes, or null. */
export function fromHexStrict(hex: string, sizeBytes: number): Uint8Array | null {
  if (hex.length !== sizeBytes * 2 || !/^[0-9a-f]*$/.test(hex)) return null;
  const out = new Uint8Array(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function checkRange(kind: string, n: number, max: number): void {
  if (!Number.isInteger(n) || n < 0 || n > max) fail("Internal", `${kind} out of range: ${n}`);
}

function varintSize(n: number): number {
  let size = 1;
  for (let v = n; v >= 0x80; v = Math.floor(v / 0x80)) size++;
  return size;
}

/** Appends into one growing buffer (a snapshot of millions of fields is one allocation per doubling, not one per field). */
export class ByteWriter {
  private buf: Uint8Array;
  private at = 0;

  constructor(initialCapacity = 64) {
    this.buf = new Uint8Array(initialCapacity);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.at;
  }

  private reserve(n: number): number {
    const start = this.at;
    if (start + n > this.buf.length) {
      let cap = Math.max(this.buf.length * 2, 64);
      while (cap < start + n) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, start));
      this.buf = next;
    }
    this.at = start + n;
    return start;
  }

  u8(n: number): this {
    checkRange("u8", n, 0xff);
    // Reserve before touching this.buf: reserving may replace it.
    const i = this.reserve(1);
    this.buf[i] = n;
    return this;
  }

  u16(n: number): this {
    checkRange("u16", n, 0xffff);
    const i = this.reserve(2);
    this.buf[i] = n >>> 8;
    this.buf[i + 1] = n & 0xff;
    return this;
  }

  u32(n: number): this {
    checkRange("u32", n, MAX_U32);
    this.putU32(this.reserve(4), n);
    return this;
  }

  /** A non-negative safe integer (times in ms, indexes, terms) as 8 bytes big-endian. */
  u64(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) fail("Internal", `u64 out of range: ${n}`);
    const i = this.reserve(8);
    this.putU32(i, Math.floor(n / TWO_32));
    this.putU32(i + 4, n % TWO_32);
    return this;
  }

  /** Unsigned LEB128 of a non-negative safe integer: 1 byte below 128, at most 8. */
  varint(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) fail("Internal", `varint out of range: ${n}`);
    let i = this.reserve(varintSize(n));
    while (n >= 0x80) {
      this.buf[i++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[i] = n;
    return this;
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  /** Bytes with no length prefix (magic, fixed-size fields). */
  raw(b: Uint8Array): this {
    const i = this.reserve(b.length);
    this.buf.set(b, i);
    return this;
  }

  /** u32 length prefix, then the bytes. */
  bytes(b: Uint8Array): this {
    return this.u32(b.length).raw(b);
  }

  /** u16 length prefix, then the bytes. */
  bytes16(b: Uint8Array): this {
    if (b.length > 0xffff) fail("Internal", `field of ${b.length} bytes exceeds 65535`);
    return this.u16(b.length).raw(b);
  }

  /** u8 length prefix, then the bytes. */
  bytes8(b: Uint8Array): this {
    if (b.length > 0xff) fail("Internal", `field of ${b.length} bytes exceeds 255`);
    return this.u8(b.length).raw(b);
  }

  /** varint length prefix, then the bytes. */
  varBytes(b: Uint8Array): this {
    return this.varint(b.length).raw(b);
  }

  /** UTF-8 with a u32 length prefix. */
  string(s: string): this {
    // Most strings (names, ids, base64url) are ASCII: written in place, without the
    // TextEncoder call and array a short string would otherwise cost (~10 µs each on a
    // loaded machine: most of a 100,000-key snapshot's encode). Same bytes either way.
    const start = this.at;
    const i = this.reserve(4 + s.length) + 4;
    const buf = this.buf;
    for (let c = 0; c < s.length; c++) {
      const code = s.charCodeAt(c);
      if (code >= 0x80) {
        this.at = start;
        return this.bytes(utf8(s));
      }
      buf[i + c] = code;
    }
    this.putU32(start, s.length);
    return this;
  }

  /** UTF-8 with a varint length prefix. */
  varString(s: string): this {
    return this.varBytes(utf8(s));
  }

  /** Presence flag (0/1) then the value. */
  optional<T>(value: T | null | undefined, write: (w: this, v: T) => void): this {
    if (value === null || value === undefined) return this.u8(0);
    this.u8(1);
    write(this, value);
    return this;
  }

  /** u32 item count, then each item. */
  list<T>(items: readonly T[], write: (w: this, item: T) => void): this {
    this.u32(items.length);
    for (const item of items) write(this, item);
    return this;
  }

  /**
   * The bytes written: the writer may keep going, the result never changes. A writer
   * filled exactly to its capacity hands over its buffer without a copy (its next write
   * grows into a new one): size it exactly for a large value (a snapshot file).
   */
  finish(): Uint8Array {
    return this.at === this.buf.length ? this.buf : this.buf.slice(0, this.at);
  }

  private putU32(i: number, n: number): void {
    this.buf[i] = n >>> 24;
    this.buf[i + 1] = (n >>> 16) & 0xff;
    this.buf[i + 2] = (n >>> 8) & 0xff;
    this.buf[i + 3] = n & 0xff;
  }
}

/** What a format throws for corrupt input; it must throw (the reader never continues past it). */
export type OnCorrupt = (problem: string) => never;

export class ByteReader {
  private at = 0;
  private readonly onCorrupt: OnCorrupt;

  constructor(
    private readonly data: Uint8Array,
    /** What is being decoded, for error messages ("WAL record", "pool snapshot", ...). */
    what = "input",
    /** How this format reports corruption; default IntegrityError "<what> is corrupt: <problem>". */
    onCorrupt?: OnCorrupt,
  ) {
    this.onCorrupt = onCorrupt ?? ((problem) => fail("IntegrityError", `${what} is corrupt: ${problem}`));
  }

  get position(): number {
    return this.at;
  }

  get remaining(): number {
    return this.data.length - this.at;
  }

  /** True once every byte has been read. */
  get done(): boolean {
    return this.at >= this.data.length;
  }

  private take(n: number, field: string): number {
    const start = this.at;
    if (n > this.data.length - start) this.truncated(n, field);
    this.at = start + n;
    return start;
  }

  private truncated(n: number, field: string): never {
    return this.onCorrupt(`truncated: ${field} needs ${n} bytes at offset ${this.at} of ${this.data.length}`);
  }

  u8(field: string): number {
    return this.data[this.take(1, field)] as number;
  }

  u16(field: string): number {
    const i = this.take(2, field);
    return ((this.data[i] as number) << 8) | (this.data[i + 1] as number);
  }

  u32(field: string): number {
    return this.getU32(this.take(4, field));
  }

  u64(field: string): number {
    const i = this.take(8, field);
    const high = this.getU32(i);
    if (high >= 2 ** 21) this.corrupt(`${field} exceeds the largest safe integer`);
    return high * TWO_32 + this.getU32(i + 4);
  }

  varint(field: string): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8(field);
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) this.corrupt(`${field} is not a minimal varint`);
        if (!Number.isSafeInteger(value)) this.corrupt(`${field} exceeds the largest safe integer`);
        return value;
      }
      scale *= 0x80;
    }
    return this.corrupt(`${field} is a varint longer than 8 bytes`);
  }

  bool(field: string): boolean {
    const v = this.u8(field);
    if (v > 1) this.corrupt(`${field} is not a boolean (byte ${v})`);
    return v === 1;
  }

  /** `n` bytes with no length prefix: a copy, never a view that would keep the whole input alive. */
  raw(n: number, field: string): Uint8Array {
    const i = this.take(n, field);
    const out = new Uint8Array(n);
    out.set(this.data.subarray(i, i + n));
    return out;
  }

  /** Every byte not read yet (a copy). */
  rest(): Uint8Array {
    return this.raw(this.remaining, "rest");
  }

  /** u32 length prefix; a length above `maxBytes` is corrupt even when the bytes are there. */
  bytes(field: string, maxBytes = MAX_U32): Uint8Array {
    return this.sized(this.u32(`${field} length`), field, maxBytes);
  }

  /**
   * Like bytes(), as a view into the input instead of a copy: it keeps the WHOLE input
   * alive. Only for an input that lives as long as what is decoded from it (a snapshot
   * its Raft storage holds anyway), where one object per value is all it costs.
   */
  bytesView(field: string, maxBytes = MAX_U32): Uint8Array {
    const n = this.u32(`${field} length`);
    if (n > maxBytes) this.corrupt(`${field} is ${n} bytes; the limit is ${maxBytes}`);
    const i = this.take(n, field);
    return this.data.subarray(i, i + n);
  }

  bytes16(field: string): Uint8Array {
    return this.raw(this.u16(`${field} length`), field);
  }

  bytes8(field: string): Uint8Array {
    return this.raw(this.u8(`${field} length`), field);
  }

  varBytes(field: string, maxBytes = Number.MAX_SAFE_INTEGER): Uint8Array {
    return this.sized(this.varint(`${field} length`), field, maxBytes);
  }

  string(field: string, maxBytes?: number): string {
    return this.decodeUtf8(this.bytes(field, maxBytes), field);
  }

  varString(field: string, maxBytes?: number): string {
    return this.decodeUtf8(this.varBytes(field, maxBytes), field);
  }

  optional<T>(field: string, read: (r: this) => T): T | null {
    return this.bool(`${field} presence flag`) ? read(this) : null;
  }

  list<T>(field: string, maxItems: number, read: (r: this) => T): T[] {
    const n = this.u32(`${field} count`);
    if (n > maxItems) this.corrupt(`${field} has ${n} items; the limit is ${maxItems}`);
    // Sized up front: an array grown by push from empty keeps room for 17 items, and a
    // decoded snapshot holds a few one-item lists per key (~300 bytes a key at 10,000 keys).
    // No larger than the bytes left, so a corrupt count allocates nothing big.
    const out = new Array<T>(Math.min(n, this.remaining));
    for (let i = 0; i < n; i++) out[i] = read(this);
    return out;
  }

  /** The bytes read so far (what a trailing signature or tag covers), as a copy. */
  consumed(): Uint8Array {
    const out = new Uint8Array(this.at);
    out.set(this.data.subarray(0, this.at));
    return out;
  }

  /** Every byte must have been read: trailing bytes mean another format or corruption. */
  end(): void {
    if (this.at !== this.data.length) this.corrupt(`${this.data.length - this.at} unexpected trailing bytes`);
  }

  corrupt(problem: string): never {
    return this.onCorrupt(problem);
  }

  private sized(n: number, field: string, maxBytes: number): Uint8Array {
    if (n > maxBytes) this.corrupt(`${field} is ${n} bytes; the limit is ${maxBytes}`);
    return this.raw(n, field);
  }

  private decodeUtf8(b: Uint8Array, field: string): string {
    // ASCII (most strings) is its own UTF-8: read without a TextDecoder call.
    if (b.length <= ASCII_FAST_PATH_MAX_BYTES && isAscii(b))
      return String.fromCharCode.apply(null, b as never);
    try {
      return utf8Decoder.decode(b);
    } catch {
      return this.corrupt(`${field} is not valid UTF-8`);
    }
  }

  private getU32(i: number): number {
    const d = this.data;
    return (
      (d[i] as number) * 0x100_0000 +
      (((d[i + 1] as number) << 16) | ((d[i + 2] as number) << 8) | (d[i + 3] as number))
    );
  }
}
