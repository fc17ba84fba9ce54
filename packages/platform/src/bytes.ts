/** Small byte helpers for the binary formats (SIGSTRUCT, quote, sealed blob, wrapped key). */
import { timingSafeEqual } from "node:crypto";

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** Strict: lower-case hex of exactly `sizeBytes` bytes, or null. */
export function fromHexStrict(hex: string, sizeBytes: number): Uint8Array | null {
  if (hex.length !== sizeBytes * 2 || !/^[0-9a-f]*$/.test(hex)) return null;
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** Constant-time equality (also false for different lengths). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

export const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "utf8"));

/** Big-endian writer for length-prefixed binary formats. */
export class ByteWriter {
  private readonly parts: Uint8Array[] = [];

  bytes(b: Uint8Array): this {
    this.parts.push(new Uint8Array(b));
    return this;
  }
  u8(n: number): this {
    return this.bytes(Uint8Array.of(n));
  }
  u16(n: number): this {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, n);
    return this.bytes(b);
  }
  /** u16 length prefix + bytes. */
  var16(b: Uint8Array): this {
    if (b.byteLength > 0xffff) throw new RangeError(`field of ${b.byteLength} bytes exceeds 65535`);
    return this.u16(b.byteLength).bytes(b);
  }
  /** u8 length prefix + bytes. */
  var8(b: Uint8Array): this {
    if (b.byteLength > 0xff) throw new RangeError(`field of ${b.byteLength} bytes exceeds 255`);
    return this.u8(b.byteLength).bytes(b);
  }
  finish(): Uint8Array {
    return concatBytes(...this.parts);
  }
}

/**
 * Big-endian reader that never reads past the end: every read returns null on
 * truncation so decoders turn any short input into their own typed error.
 */
export class ByteReader {
  private offset = 0;
  constructor(private readonly buf: Uint8Array) {}

  get position(): number {
    return this.offset;
  }
  get remaining(): number {
    return this.buf.byteLength - this.offset;
  }
  bytes(sizeBytes: number): Uint8Array | null {
    if (sizeBytes > this.remaining) return null;
    const out = this.buf.slice(this.offset, this.offset + sizeBytes);
    this.offset += sizeBytes;
    return out;
  }
  u8(): number | null {
    const b = this.bytes(1);
    return b ? b[0]! : null;
  }
  u16(): number | null {
    const b = this.bytes(2);
    return b ? (b[0]! << 8) | b[1]! : null;
  }
  var16(): Uint8Array | null {
    const n = this.u16();
    return n === null ? null : this.bytes(n);
  }
  var8(): Uint8Array | null {
    const n = this.u8();
    return n === null ? null : this.bytes(n);
  }
  /** The bytes consumed so far (what a trailing signature covers). */
  consumed(): Uint8Array {
    return this.buf.slice(0, this.offset);
  }
}
