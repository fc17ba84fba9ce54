/**
 * Known answers for the wrapped key blob (key-blob.ts), pinned from the encoder as it was
 * before the shared codec (@hsmpool/codec) replaced its own reader: a blob written then
 * must still parse and open, and a new blob keeps the same header bytes.
 */
import { describe, expect, it } from "vitest";
import { makeHandle } from "./key-attributes.js";
import { BlobMode, openKeyBlob, parseKeyBlob, sealKeyBlob } from "./key-blob.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const AEAD_KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
const HEADER = {
  mode: BlobMode.transfer,
  key: makeHandle(
    "0123456789abcdef0123456789abcdef",
    { kty: "RSA", size: 3072 },
    ["sign", "verify"],
    Uint8Array.of(7, 8),
  ),
  sourceId: "dev-1/p0",
  targetId: "dév-2/p1",
  salt: Uint8Array.from({ length: 32 }, (_, i) => 0xa0 + i),
};
const PLAINTEXT = new TextEncoder().encode("known-answer key material");

describe("wrapped key blob (known answers)", () => {
  it("a blob written before the codec port parses and opens", () => {
    const parsed = parseKeyBlob(Buffer.from(PINNED, "hex"));
    expect({ ...parsed.header, salt: new Uint8Array(parsed.header.salt) }).toEqual(HEADER);
    expect(new Uint8Array(openKeyBlob(parsed, AEAD_KEY))).toEqual(PLAINTEXT);
  });

  it("a new blob has the same header bytes up to the random nonce, and the same length", () => {
    const blob = sealKeyBlob(HEADER, AEAD_KEY, PLAINTEXT);
    const beforeNonce = PINNED.length / 2 - 12 - 4 - PLAINTEXT.length - 16;
    expect(hex(blob.subarray(0, beforeNonce))).toBe(PINNED.slice(0, beforeNonce * 2));
    expect(blob.length).toBe(PINNED.length / 2);
    expect(new Uint8Array(openKeyBlob(parseKeyBlob(blob), AEAD_KEY))).toEqual(PLAINTEXT);
  });
});

const PINNED =
  "48534d4b01020123456789abcdef0123456789abcdef086465762d312f70300964c3a9762d322f7031010c00000300020708a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfbaa81ccd4dfd4ac575bd532f0000001935013215e498a094cc1d66c41c540e2d967ec4a8f5a67db8f169f1ad946ee65e22dbef03b0cabcb582";
