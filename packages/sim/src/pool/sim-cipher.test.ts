import { createCipheriv } from "node:crypto";
import { describe, expect, it } from "vitest";
import { MAC_BYTES, simDecrypt, simEncrypt, simMac, TAG_BYTES } from "./sim-cipher.js";

const bytes = (n: number, from = 1) => Uint8Array.from({ length: n }, (_, i) => (from + 7 * i) & 0xff);

describe("the simulated HSM's AES-GCM", () => {
  const key = bytes(32);
  const iv = bytes(12, 3);
  const aad = new TextEncoder().encode("hsmpool-wal-v1 record 0");

  it("gives what the node sees of AES-GCM: same lengths, hidden plaintext, a round trip", () => {
    for (const n of [0, 1, 3, 4, 5, 64, 1031]) {
      const plaintext = bytes(n, 11);
      const { ciphertext, tag } = simEncrypt(key, iv, plaintext, aad);
      const gcm = createCipheriv("aes-256-gcm", key, iv).setAAD(aad);
      expect(ciphertext.length).toBe(Buffer.concat([gcm.update(plaintext), gcm.final()]).length);
      expect(tag.length).toBe(gcm.getAuthTag().length);
      expect(tag.length).toBe(TAG_BYTES);
      if (n >= 16)
        expect(Buffer.from(ciphertext).includes(Buffer.from(plaintext.subarray(0, 8)))).toBe(false);
      expect(simDecrypt(key, iv, ciphertext, tag, aad)).toEqual(plaintext);
      expect(simEncrypt(key, iv, plaintext, aad)).toEqual({ ciphertext, tag });
    }
  });

  it("refuses when the key, IV, AAD, ciphertext or tag differ from the sealing call's", () => {
    const plaintext = bytes(100, 5);
    const { ciphertext, tag } = simEncrypt(key, iv, plaintext, aad);
    const flip = (b: Uint8Array, at: number) => {
      const c = Uint8Array.from(b);
      c[at] = (c[at] as number) ^ 1;
      return c;
    };
    const refused = /AES-GCM authentication failed/;
    expect(() => simDecrypt(flip(key, 31), iv, ciphertext, tag, aad)).toThrow(refused);
    expect(() => simDecrypt(key, flip(iv, 0), ciphertext, tag, aad)).toThrow(refused);
    expect(() => simDecrypt(key, iv, ciphertext, tag, flip(aad, 5))).toThrow(refused);
    expect(() => simDecrypt(key, iv, flip(ciphertext, 99), tag, aad)).toThrow(refused);
    expect(() => simDecrypt(key, iv, ciphertext, flip(tag, 15), aad)).toThrow(refused);
    expect(() => simDecrypt(key, iv, ciphertext, tag.subarray(0, 12), aad)).toThrow(refused);
    expect(() => simDecrypt(key, iv, ciphertext, tag, new Uint8Array())).toThrow(refused);
  });

  it("draws a different keystream for another IV or key", () => {
    const plaintext = new Uint8Array(64);
    const a = simEncrypt(key, iv, plaintext, aad).ciphertext;
    expect(simEncrypt(key, bytes(12, 4), plaintext, aad).ciphertext).not.toEqual(a);
    expect(simEncrypt(bytes(32, 2), iv, plaintext, aad).ciphertext).not.toEqual(a);
  });

  it("signs application data with a 32-byte keyed hash that changes with key and data", () => {
    const data = bytes(70, 9);
    const mac = simMac(key, data);
    expect(mac.length).toBe(MAC_BYTES);
    expect(simMac(key, data)).toEqual(mac);
    expect(simMac(bytes(32, 2), data)).not.toEqual(mac);
    expect(simMac(key, data.subarray(1))).not.toEqual(mac);
    expect(
      simMac(
        key,
        Uint8Array.from(data, (b, i) => (i === 69 ? b ^ 1 : b)),
      ),
    ).not.toEqual(mac);
  });
});
