/**
 * Minimal binary writer/reader for simulator records (WAL payloads). Integers are
 * unsigned LEB128 varints up to 2^53; strings are UTF-8 with a varint length.
 * A reader that runs past the end throws: a record that passed its checksum but
 * does not decode is a simulator bug, never silently skipped.
 */

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

export class ByteWriter {
  private buf = new Uint8Array(64);
  private at = 0;

  private ensure(n: number): void {
    if (this.at + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.at + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.at));
    this.buf = next;
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.at++] = v & 0xff;
    return this;
  }

  uint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new RangeError(`varint needs a safe non-negative integer, got ${v}`);
    this.ensure(8);
    while (v >= 0x80) {
      this.buf[this.at++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.at++] = v;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.uint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
    return this;
  }

  str(s: string): this {
    return this.bytes(utf8.encode(s));
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.at);
  }
}

export class ByteReader {
  private at = 0;
  constructor(private readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.at >= this.buf.length;
  }

  u8(): number {
    if (this.at >= this.buf.length) throw new RangeError("record ends early (u8)");
    return this.buf[this.at++] as number;
  }

  uint(): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      v += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return v;
      scale *= 0x80;
    }
    throw new RangeError("varint longer than 8 bytes");
  }

  bytes(): Uint8Array {
    const n = this.uint();
    if (this.at + n > this.buf.length) throw new RangeError("record ends early (bytes)");
    const out = this.buf.slice(this.at, this.at + n);
    this.at += n;
    return out;
  }

  str(): string {
    return fromUtf8.decode(this.bytes());
  }
}
