/** RSAES-PKCS1-v1_5 decoding (RFC 8017 7.2.2): valid encodings decode, every malformed one is refused alike. */
import { describe, expect, test } from "vitest";
import { pkcs1v15Unpad } from "./rsa-pkcs1.js";

const encode = (prefix: number[], padding: number, message: number[]) =>
  Uint8Array.from([...prefix, ...new Array(padding).fill(0x5a), 0, ...message]);

describe("PKCS#1 v1.5 unpadding", () => {
  test("00 02 PS(>= 8 non-zero bytes) 00 M decodes to M", () => {
    expect([...pkcs1v15Unpad(encode([0, 2], 8, [1, 2, 3]))]).toEqual([1, 2, 3]);
    expect([...pkcs1v15Unpad(encode([0, 2], 200, [0, 9]))]).toEqual([0, 9]);
  });

  test.each([
    { name: "leading byte not zero", em: encode([1, 2], 10, [1]) },
    { name: "block type 01", em: encode([0, 1], 10, [1]) },
    { name: "padding string of 7 bytes", em: encode([0, 2], 7, [1]) },
    { name: "no zero separator", em: Uint8Array.from([0, 2, ...new Array(20).fill(7)]) },
  ])("$name is refused with one generic message", ({ em }) => {
    expect(() => pkcs1v15Unpad(em)).toThrow("RSA1_5 decryption failed: wrong key or corrupted ciphertext");
  });
});
