/**
 * Known-answer vectors for the platform's binary formats, pinned from the encoders as
 * they were before the shared codec (@hsmpool/codec) replaced platform/bytes.ts: the
 * SIGSTRUCT, the signed part of a quote, a sealed blob (and the sealing key's KDF
 * info) and a wrapped platform key must keep these exact bytes, or signed bundles,
 * quotes and sealed state written by an older build stop verifying or opening.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { decodeSigstruct, encodeSigstruct } from "./bundle.js";
import { unwrapPlatformKey, wrapPlatformKey } from "./platform-key.js";
import { decodeQuote, signQuote } from "./quote.js";
import { sealWithFuse, unsealWithFuse } from "./seal.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"));
const filled = (n: number, start: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);

const PKCS8 =
  "302e020100300506032b657004220420db320f0189973f6b0ccb980af946d798fa1a26bed397d118fd3ea188ff3ec9ce";
const FUSE = filled(32, 0x40);
const IDENTITY = { mrenclave: hex(filled(32, 0x10)), mrsigner: hex(filled(32, 0x30)), productId: 7, svn: 3 };
const PLAINTEXT = new TextEncoder().encode("known-answer plaintext");
const AAD = Uint8Array.of(1, 2, 3);

const SIGSTRUCT = {
  mrenclave: hex(filled(32, 0xa0)),
  mrsigner: "",
  productId: 0x0102,
  svn: 0x0304,
  debug: true,
  signerPublicKeyDer: new Uint8Array(
    createPublicKey(
      createPrivateKey({ key: Buffer.from(PKCS8, "hex"), format: "der", type: "pkcs8" }),
    ).export({
      format: "der",
      type: "spki",
    }),
  ),
  signature: filled(64, 0x90),
};

const QUOTE_BODY = {
  mrenclave: filled(32, 1),
  mrsigner: filled(32, 2),
  productId: 9,
  svn: 513,
  debug: false,
  reportData: filled(64, 3),
  nonce: filled(5, 4),
};

describe("platform formats (known answers)", () => {
  it("SIGSTRUCT", () => {
    const bytes = encodeSigstruct(SIGSTRUCT);
    expect(hex(bytes)).toBe(PIN.sigstruct);
    const back = decodeSigstruct(unhex(PIN.sigstruct));
    expect(back.mrenclave).toBe(SIGSTRUCT.mrenclave);
    expect([back.productId, back.svn, back.debug]).toEqual([0x0102, 0x0304, true]);
    expect(back.signature).toEqual(SIGSTRUCT.signature);
  });

  it("the signed message of a quote", () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const quote = signQuote(QUOTE_BODY, [filled(300, 5)], privateKey);
    const decoded = decodeQuote(quote);
    expect(hex(decoded.signedMessage)).toBe(PIN.quoteSignedMessage);
    expect(quote.byteLength).toBe(decoded.signedMessage.byteLength - "hsmpool-quote-v1\0".length + 64);
  });

  it("a sealed blob written before the codec port still unseals; a new one has the same header layout", () => {
    expect(unsealWithFuse(FUSE, IDENTITY, unhex(PIN.sealedBlob), { aad: AAD })).toEqual(PLAINTEXT);
    const blob = sealWithFuse(FUSE, IDENTITY, PLAINTEXT, { policy: "mrsigner", aad: AAD });
    // magic, version, policy, svn; then the random key id and IV, ciphertext and tag.
    expect(hex(blob.subarray(0, 8))).toBe(PIN.sealedBlob.slice(0, 16));
    expect(blob.byteLength).toBe(PIN.sealedBlob.length / 2);
    expect(unsealWithFuse(FUSE, IDENTITY, blob, { aad: AAD })).toEqual(PLAINTEXT);
  });

  it("a platform key wrapped before the codec port still unwraps", () => {
    const key = unwrapPlatformKey(FUSE, unhex(PIN.wrappedKey), "server-1", "ab".repeat(32));
    expect(hex(key.export({ format: "der", type: "pkcs8" }))).toBe(PKCS8);
    const blob = wrapPlatformKey(FUSE, unhex(PKCS8), "server-1", "ab".repeat(32));
    expect(hex(blob.subarray(0, 5))).toBe(PIN.wrappedKey.slice(0, 10));
    expect(blob.byteLength).toBe(PIN.wrappedKey.length / 2);
  });
});

const PIN = {
  sigstruct:
    "4853494701a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf0102030401002c302a300506032b6570032100c5b77a2c9d826b81dc86ac5513f6f7b11e08cf8b7dbf1e8f7d503b7db4e925ee0040909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
  quoteSignedMessage:
    "68736d706f6f6c2d71756f74652d76310048534d51010102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2002030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20210009020100030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40414205040506070801012c05060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f30",
  sealedBlob:
    "485353420102000323946ab7309d296410f5c5f8776f5acf7704facb8a7129277d6bd9057637685576e627c4cba89ff1a9e4c856f7d12c48b4fa4d6dbaa47107068c992f22d795835291",
  wrappedKey:
    "48504b5701b64c8a7e7248af3ce2fbdfb9195cc0d798013004e4ac9c092e48189ba085417517c9c7fdb49c22bf31c380e24fba4e7e07ea0b4df68e745d0c695aab5691b33f4a9aba283339b249ccd65bd2",
};
