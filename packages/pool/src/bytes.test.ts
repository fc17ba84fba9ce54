import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteReader, ByteWriter } from "./bytes.js";
import { base64UrlDecode, base64UrlEncode } from "./jwk.js";
import { thrown } from "./testing/fixtures.js";

describe("canonical byte encoding", () => {
  it("finishes a writer with more chunks than a call can take arguments (large snapshots)", () => {
    const w = new ByteWriter();
    for (let i = 0; i < 300_000; i++) w.u8(i & 0xff);
    const bytes = w.finish();
    expect(bytes.length).toBe(300_000);
    expect(bytes[299_999]).toBe(299_999 & 0xff);
  });

  it("round-trips integers up to the largest safe integer and refuses larger ones", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (n) => {
        const r = new ByteReader(new ByteWriter().uint(n).finish(), "test value");
        expect(r.uint("n")).toBe(n);
        r.end();
      }),
    );
    const tooBig = Uint8Array.of(0, 0x20, 0, 0, 0, 0, 0, 0);
    expect(thrown(() => new ByteReader(tooBig, "test value").uint("n"), "IntegrityError").message).toMatch(
      /exceeds the largest safe integer/,
    );
  });

  it("refuses lengths beyond the data or the field's limit, bad booleans, bad UTF-8 and trailing bytes", () => {
    const long = new ByteWriter().u32(1000).finish();
    expect(thrown(() => new ByteReader(long, "x").bytes("blob", 10_000), "IntegrityError").message).toMatch(
      /truncated/,
    );
    expect(thrown(() => new ByteReader(long, "x").bytes("blob", 10), "IntegrityError").message).toMatch(
      /limit is 10/,
    );
    thrown(() => new ByteReader(Uint8Array.of(2), "x").bool("flag"), "IntegrityError");
    thrown(() => new ByteReader(Uint8Array.of(0, 0, 0, 1, 0xff), "x").string("s", 10), "IntegrityError");
    const r = new ByteReader(Uint8Array.of(1, 2), "x");
    r.u8("a");
    thrown(() => r.end(), "IntegrityError");
  });

  it("base64url: decode inverts encode, and non-canonical text is refused", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (b) => {
        expect(base64UrlDecode(base64UrlEncode(b))).toEqual(b);
      }),
    );
    expect(base64UrlEncode(Uint8Array.of(0xfb, 0xff))).toBe("-_8");
    expect(base64UrlDecode("-_9")).toBeNull(); // leftover bits set: another spelling of the same bytes
    expect(base64UrlDecode("AB=")).toBeNull();
    expect(base64UrlDecode("A")).toBeNull();
  });
});
