import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { base64UrlDecode, base64UrlEncode } from "./jwk.js";

describe("base64url", () => {
  it("decode inverts encode, and non-canonical text is refused", () => {
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
