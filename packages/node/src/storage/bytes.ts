/**
 * Minimal big-endian byte writer/reader for the node's own file formats (WAL
 * records, snapshot file, sealed state). A reader that runs out of bytes or meets
 * a malformed field throws IntegrityError naming what was being decoded.
 */
import { fail } from "@hsmpool/errors";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export class Writer {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  private push(b: Uint8Array): this {
    this.chunks.push(b);
    this.size += b.length;
    return this;
  }

  u8(n: number): this {
    return this.push(Uint8Array.of(n));
  }

  u32(n: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n);
    return this.push(b);
  }

  /** A non-negative safe integer as 8 bytes. */
  u64(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) fail("Internal", `u64 out of range: ${n}`);
    const b = new Uint8Array(8);
    const view = new DataView(b.buffer);
    view.setUint32(0, Math.floor(n / 2 ** 32));
    view.setUint32(4, n % 2 ** 32);
    return this.push(b);
  }

  bytes(b: Uint8Array): this {
    return this.u32(b.length).push(b);
  }

  raw(b: Uint8Array): this {
    return this.push(b);
  }

  string(s: string): this {
    return this.bytes(encoder.encode(s));
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

export class Reader {
  private offset = 0;

  constructor(
    private readonly data: Uint8Array,
    private readonly what: string,
  ) {}

  private take(n: number, field: string): Uint8Array {
    if (n > this.data.length - this.offset)
      this.corrupt(`${field} needs ${n} bytes at offset ${this.offset}`);
    const out = this.data.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  u8(field: string): number {
    return this.take(1, field)[0] as number;
  }

  u32(field: string): number {
    const b = this.take(4, field);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
  }

  u64(field: string): number {
    const b = this.take(8, field);
    const view = new DataView(b.buffer, b.byteOffset, 8);
    const high = view.getUint32(0);
    if (high >= 2 ** 21) this.corrupt(`${field} exceeds the largest safe integer`);
    return high * 2 ** 32 + view.getUint32(4);
  }

  bytes(field: string): Uint8Array {
    return Uint8Array.from(this.take(this.u32(`${field} length`), field));
  }

  raw(n: number, field: string): Uint8Array {
    return Uint8Array.from(this.take(n, field));
  }

  string(field: string): string {
    try {
      return decoder.decode(this.bytes(field));
    } catch {
      return this.corrupt(`${field} is not valid UTF-8`);
    }
  }

  end(): void {
    if (this.offset !== this.data.length) this.corrupt(`${this.data.length - this.offset} trailing bytes`);
  }

  corrupt(problem: string): never {
    return fail("IntegrityError", `${this.what} is corrupt: ${problem}`);
  }
}

export const utf8 = (s: string): Uint8Array => encoder.encode(s);
