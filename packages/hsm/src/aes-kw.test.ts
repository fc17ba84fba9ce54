import { createSecretKey } from "node:crypto";
import { isHsmPoolError } from "@hsmpool/errors";
import { describe, expect, test } from "vitest";
import { aesKeyUnwrap, aesKeyWrap } from "./aes-kw.js";

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ""), "hex");
const KEK_256 = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";

// RFC 3394 section 4 (4.1 .. 4.6): KEK, key data, expected wrapped output.
const RFC3394_VECTORS = [
  {
    name: "4.1 128-bit key data, 128-bit KEK",
    kek: KEK_256.slice(0, 32),
    data: "00112233445566778899AABBCCDDEEFF",
    wrapped: "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5",
  },
  {
    name: "4.2 128-bit key data, 192-bit KEK",
    kek: KEK_256.slice(0, 48),
    data: "00112233445566778899AABBCCDDEEFF",
    wrapped: "96778B25AE6CA435 F92B5B97C050AED2 468AB8A17AD84E5D",
  },
  {
    name: "4.3 128-bit key data, 256-bit KEK",
    kek: KEK_256,
    data: "00112233445566778899AABBCCDDEEFF",
    wrapped: "64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7",
  },
  {
    name: "4.4 192-bit key data, 192-bit KEK",
    kek: KEK_256.slice(0, 48),
    data: "00112233445566778899AABBCCDDEEFF0001020304050607",
    wrapped: "031D33264E15D332 68F24EC260743EDC E1C6C7DDEE725A93 6BA814915C6762D2",
  },
  {
    name: "4.5 192-bit key data, 256-bit KEK",
    kek: KEK_256,
    data: "00112233445566778899AABBCCDDEEFF0001020304050607",
    wrapped: "A8F9BC1612C68B3F F6E6F4FBE30E71E4 769C8B80A32CB895 8CD5D17D6B254DA1",
  },
  {
    name: "4.6 256-bit key data, 256-bit KEK",
    kek: KEK_256,
    data: "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
    wrapped: "28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21",
  },
];

describe("AES key wrap (RFC 3394 known answers)", () => {
  test.each(RFC3394_VECTORS)("$name wraps to the RFC output and unwraps back", ({ kek, data, wrapped }) => {
    const key = createSecretKey(hex(kek));
    expect(aesKeyWrap(key, hex(data)).toString("hex")).toBe(hex(wrapped).toString("hex"));
    expect(aesKeyUnwrap(key, hex(wrapped)).toString("hex")).toBe(hex(data).toString("hex"));
  });

  test("unwrapping an altered wrapped key fails the integrity check", () => {
    const { kek, wrapped } = RFC3394_VECTORS[5]!;
    for (let i = 0; i < hex(wrapped).length; i++) {
      const altered = hex(wrapped);
      altered[i]! ^= 0x01;
      let error: unknown;
      try {
        aesKeyUnwrap(createSecretKey(hex(kek)), altered);
      } catch (e) {
        error = e;
      }
      expect(isHsmPoolError(error, "IntegrityError"), `byte ${i}`).toBe(true);
    }
  });

  test("key data that is not whole 8-byte blocks of at least 16 bytes is refused", () => {
    const key = createSecretKey(hex(KEK_256));
    for (const size of [8, 15, 17, 20]) {
      expect(() => aesKeyWrap(key, Buffer.alloc(size))).toThrow(/at least 16 bytes in multiples of 8/);
    }
  });
});
