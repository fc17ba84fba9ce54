import { fail, type HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteReader, ByteWriter, bytesEqual, concatBytes, fromHexStrict, toHex, utf8 } from "./index.js";

const hex = (w: ByteWriter): string => toHex(w.finish());

function thrown(fn: () => unknown): HsmPoolError {
  try {
    fn();
  } catch (e) {
    if (isHsmPoolError(e)) return e;
    throw new Error(`threw a non-HsmPoolError: ${String(e)}`);
  }
  throw new Error("did not throw");
}

/** One field of a random record: how to write it and how to read it back. */
type Field =
  | { kind: "u8" | "u16" | "u32" | "u64" | "varint"; value: number }
  | { kind: "bool"; value: boolean }
  | { kind: "bytes" | "bytes16" | "bytes8" | "varBytes"; value: Uint8Array }
  | { kind: "string" | "varString"; value: string }
  | { kind: "raw"; value: Uint8Array };

const field: fc.Arbitrary<Field> = fc.oneof(
  fc.record({ kind: fc.constant("u8" as const), value: fc.integer({ min: 0, max: 0xff }) }),
  fc.record({ kind: fc.constant("u16" as const), value: fc.integer({ min: 0, max: 0xffff }) }),
  fc.record({ kind: fc.constant("u32" as const), value: fc.integer({ min: 0, max: 0xffff_ffff }) }),
  fc.record({ kind: fc.constantFrom("u64" as const, "varint" as const), value: fc.maxSafeNat() }),
  fc.record({ kind: fc.constant("bool" as const), value: fc.boolean() }),
  fc.record({
    kind: fc.constantFrom("bytes" as const, "bytes16" as const, "bytes8" as const, "varBytes" as const),
    value: fc.uint8Array({ maxLength: 300 }).map((b) => b.subarray(0, Math.min(b.length, 255))),
  }),
  fc.record({
    kind: fc.constantFrom("string" as const, "varString" as const),
    value: fc.string({ unit: "grapheme" }),
  }),
  fc.record({ kind: fc.constant("raw" as const), value: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
);

function write(w: ByteWriter, f: Field): void {
  switch (f.kind) {
    case "bool":
      w.bool(f.value);
      return;
    case "bytes":
    case "bytes16":
    case "bytes8":
    case "varBytes":
    case "raw":
      w[f.kind](f.value);
      return;
    case "string":
    case "varString":
      w[f.kind](f.value);
      return;
    default:
      w[f.kind](f.value);
  }
}

function read(r: ByteReader, f: Field): unknown {
  switch (f.kind) {
    case "raw":
      return r.raw(f.value.length, "raw");
    default:
      return r[f.kind](f.kind);
  }
}

describe("primitives have fixed bytes", () => {
  it("integers are big-endian; u64 is 8 bytes; varint is minimal LEB128", () => {
    expect(hex(new ByteWriter().u8(0xab).u16(0x0102).u32(0xdeadbeef))).toBe("ab0102deadbeef");
    expect(hex(new ByteWriter().u64(2 ** 40 + 7))).toBe("0000010000000007");
    expect(hex(new ByteWriter().u64(Number.MAX_SAFE_INTEGER))).toBe("001fffffffffffff");
    expect(hex(new ByteWriter().varint(0).varint(127).varint(128).varint(300))).toBe("007f8001ac02");
    expect(hex(new ByteWriter().varint(Number.MAX_SAFE_INTEGER))).toBe("ffffffffffffff0f");
  });

  it("length prefixes: u32 for bytes/string, u16, u8 and varint variants; raw has none", () => {
    const b = Uint8Array.of(1, 2);
    expect(hex(new ByteWriter().bytes(b).bytes16(b).bytes8(b).varBytes(b).raw(b))).toBe(
      "00000002010200020102020102020102" + "0102",
    );
    expect(hex(new ByteWriter().string("ü").varString("ü"))).toBe("00000002c3bc02c3bc");
    expect(
      hex(
        new ByteWriter()
          .bool(true)
          .optional(null, () => {})
          .optional(5, (w, v) => w.u8(v)),
      ),
    ).toBe("01000105");
    expect(hex(new ByteWriter().list([1, 2], (w, v) => w.u8(v)))).toBe("000000020102");
  });

  it("the writer refuses values its field cannot hold (a bug, not input)", () => {
    for (const attempt of [
      () => new ByteWriter().u8(256),
      () => new ByteWriter().u16(-1),
      () => new ByteWriter().u32(2 ** 32),
      () => new ByteWriter().u64(2 ** 53),
      () => new ByteWriter().varint(1.5),
      () => new ByteWriter().bytes8(new Uint8Array(256)),
      () => new ByteWriter().bytes16(new Uint8Array(65536)),
    ]) {
      expect(thrown(attempt).code).toBe("Internal");
    }
  });

  it("grows past its first buffer and keeps what finish() returned", () => {
    const w = new ByteWriter(1);
    for (let i = 0; i < 300_000; i++) w.u8(i & 0xff);
    const first = w.finish();
    w.u8(1);
    expect(first.length).toBe(300_000);
    expect(first[299_999]).toBe(299_999 & 0xff);
    expect(w.length).toBe(300_001);
    // Filled exactly: finish() hands over the buffer itself, and a later write does not touch it.
    const exact = new ByteWriter(3).u16(0x0102).u8(3);
    const whole = exact.finish();
    exact.u8(4);
    expect(whole).toEqual(Uint8Array.of(1, 2, 3));
    expect(exact.finish()).toEqual(Uint8Array.of(1, 2, 3, 4));
  });

  it("helpers: hex, strict hex, equality, concatenation", () => {
    expect(toHex(Uint8Array.of(0, 15, 255))).toBe("000fff");
    expect(fromHexStrict("000fff", 3)).toEqual(Uint8Array.of(0, 15, 255));
    expect(fromHexStrict("000FFF", 3)).toBeNull();
    expect(fromHexStrict("000f", 3)).toBeNull();
    expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
    expect(bytesEqual(Uint8Array.of(1), Uint8Array.of(1, 0))).toBe(false);
    expect(concatBytes(utf8("a"), Uint8Array.of(0), utf8("b"))).toEqual(Uint8Array.of(0x61, 0, 0x62));
  });
});

describe("properties", () => {
  it("any record of fields round-trips, and the reader ends exactly at its end", () => {
    fc.assert(
      fc.property(fc.array(field, { maxLength: 20 }), (fields) => {
        const w = new ByteWriter();
        for (const f of fields) write(w, f);
        const r = new ByteReader(w.finish(), "record");
        for (const f of fields) expect(read(r, f)).toEqual(f.value);
        expect(r.done).toBe(true);
        r.end();
      }),
      { numRuns: 300 },
    );
  });

  it("a string's bytes are its TextEncoder UTF-8 behind a u32 length (ASCII fast path or not), and read back", () => {
    const strings = fc.oneof(fc.string(), fc.string({ unit: "grapheme" }), fc.string({ unit: "binary" }));
    fc.assert(
      fc.property(fc.array(strings, { maxLength: 5 }), (parts) => {
        const w = new ByteWriter(8);
        for (const s of parts) w.u8(1).string(s);
        const expected = new ByteWriter(8);
        for (const s of parts) expected.u8(1).bytes(new TextEncoder().encode(s));
        expect(hex(w)).toBe(hex(expected));
        const r = new ByteReader(w.finish());
        for (const s of parts) {
          r.u8("tag");
          expect(r.string("s")).toBe(
            new TextDecoder("utf-8", { ignoreBOM: true }).decode(new TextEncoder().encode(s)),
          );
        }
        r.end();
      }),
    );
  });

  it("every strict prefix of a record is an IntegrityError naming what was decoded (never a RangeError or a value)", () => {
    fc.assert(
      fc.property(fc.array(field, { minLength: 1, maxLength: 8 }), fc.nat(), (fields, cut) => {
        const w = new ByteWriter();
        for (const f of fields) write(w, f);
        const bytes = w.finish();
        fc.pre(bytes.length > 0);
        const prefix = bytes.subarray(0, cut % bytes.length);
        const error = thrown(() => {
          const r = new ByteReader(prefix, "test record");
          for (const f of fields) read(r, f);
          r.end();
        });
        expect(error.code).toBe("IntegrityError");
        expect(error.message).toMatch(/^test record is corrupt: /);
      }),
      { numRuns: 300 },
    );
  });

  it("trailing bytes after a complete record are corrupt", () => {
    fc.assert(
      fc.property(
        fc.array(field, { maxLength: 6 }),
        fc.uint8Array({ minLength: 1, maxLength: 4 }),
        (fields, tail) => {
          const w = new ByteWriter();
          for (const f of fields) write(w, f);
          const r = new ByteReader(concatBytes(w.finish(), tail), "x");
          for (const f of fields) read(r, f);
          expect(thrown(() => r.end()).message).toMatch(/trailing bytes/);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("the reader refuses malformed fields", () => {
  const reader = (...b: number[]) => new ByteReader(Uint8Array.from(b), "x");

  it("a length beyond the data or beyond the field's limit", () => {
    const long = new ByteWriter().u32(1000).finish();
    expect(thrown(() => new ByteReader(long, "x").bytes("blob", 10_000)).message).toMatch(
      /truncated: blob needs 1000/,
    );
    expect(thrown(() => new ByteReader(long, "x").bytes("blob", 10)).message).toMatch(/limit is 10/);
    expect(thrown(() => reader(0, 0, 0, 3, 1, 2, 3).list("items", 2, (r) => r.u8("i"))).message).toMatch(
      /3 items; the limit is 2/,
    );
  });

  it("bad booleans, bad UTF-8, u64 above the safe range, overlong or oversized varints", () => {
    expect(thrown(() => reader(2).bool("flag")).code).toBe("IntegrityError");
    expect(thrown(() => reader(0, 0, 0, 1, 0xff).string("s")).message).toMatch(/not valid UTF-8/);
    expect(thrown(() => reader(1, 0xff).varString("s")).message).toMatch(/not valid UTF-8/);
    expect(thrown(() => reader(0, 0x20, 0, 0, 0, 0, 0, 0).u64("n")).message).toMatch(/largest safe integer/);
    expect(thrown(() => reader(0x80, 0x00).varint("n")).message).toMatch(/not a minimal varint/);
    expect(thrown(() => reader(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f).varint("n")).message).toMatch(
      /largest safe integer/,
    );
    expect(
      thrown(() => reader(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 1).varint("n")).message,
    ).toMatch(/longer than 8 bytes/);
  });

  it("a format's own error replaces IntegrityError, with the same problem text", () => {
    const onCorrupt = (problem: string): never => fail("AttestationFailed", `malformed quote: ${problem}`);
    const error = thrown(() => new ByteReader(Uint8Array.of(1), "quote", onCorrupt).u16("svn"));
    expect(error.code).toBe("AttestationFailed");
    expect(error.message).toBe("malformed quote: truncated: svn needs 2 bytes at offset 0 of 1");
  });

  it("reads are copies, also of a Buffer (a field never keeps the whole input alive)", () => {
    const input = Buffer.from([0, 0, 0, 2, 7, 8]);
    const r = new ByteReader(input, "x");
    const field = r.bytes("field");
    input[4] = 0;
    expect(field).toEqual(Uint8Array.of(7, 8));
    expect(Buffer.isBuffer(field)).toBe(false);
    expect(field.buffer).not.toBe(input.buffer);
  });

  it("bytesView() reads what bytes() reads, as a view into the input, with the same limits", () => {
    const input = Uint8Array.of(0, 0, 0, 2, 7, 8, 9);
    const r = new ByteReader(input, "x");
    const view = r.bytesView("field");
    expect(view).toEqual(new ByteReader(input, "x").bytes("field"));
    expect(view.buffer).toBe(input.buffer);
    expect(r.remaining).toBe(1);
    expect(thrown(() => new ByteReader(input, "x").bytesView("blob", 1)).message).toMatch(/limit is 1/);
    expect(thrown(() => reader(0, 0, 0, 5, 1).bytesView("blob")).message).toMatch(/truncated: blob needs 5/);
  });

  it("a list's count may exceed the bytes left only to fail on the missing items", () => {
    expect(reader(0, 0, 0, 2, 4, 5).list("items", 10, (r) => r.u8("i"))).toEqual([4, 5]);
    expect(thrown(() => reader(0, 0, 0, 9, 4).list("items", 1_000_000, (r) => r.u8("i"))).message).toMatch(
      /truncated: i needs 1/,
    );
  });

  it("consumed() is what was read; rest() takes the remainder", () => {
    const r = reader(1, 2, 3, 4);
    r.u16("a");
    expect(r.consumed()).toEqual(Uint8Array.of(1, 2));
    expect(r.remaining).toBe(2);
    expect(r.rest()).toEqual(Uint8Array.of(3, 4));
    expect(r.done).toBe(true);
  });
});
