import * as zlib from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { crc32 } from "./checksum.js";

describe("crc32", () => {
  it("matches the standard check value for '123456789'", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array())).toBe(0);
  });

  // zlib.crc32 exists from Node 22.2; on Node 20 only the check value above runs.
  const zcrc = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32;
  it.runIf(zcrc !== undefined)("agrees with zlib.crc32 on random inputs", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        expect(crc32(b)).toBe(zcrc!(b));
      }),
    );
  });
});
