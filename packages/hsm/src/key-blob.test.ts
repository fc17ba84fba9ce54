/** The documented key blob layout (README) and its codec's refusals. */
import { randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { makeHandle } from "./key-attributes.js";
import { BlobMode, type KeyBlobHeader, newSalt, openKeyBlob, parseKeyBlob, sealKeyBlob } from "./key-blob.js";
import { expectHsmError } from "./testing/fixtures.js";

const header: KeyBlobHeader = {
  mode: BlobMode.transfer,
  key: makeHandle(
    "00112233445566778899aabbccddeeff",
    { kty: "EC", crv: "P-384" },
    ["sign", "verify"],
    Buffer.from("lbl"),
  ),
  sourceId: "hsm-0000000000000001/p0",
  targetId: "node-b",
  salt: newSalt(),
};

describe("key blob v1 layout", () => {
  test("fields sit where the README says and parse back to the same header", () => {
    const aeadKey = randomBytes(32);
    const material = randomBytes(40);
    const blob = sealKeyBlob(header, aeadKey, material);
    expect(blob.subarray(0, 4).toString()).toBe("HSMK");
    expect([blob[4], blob[5]]).toEqual([1, 2]);
    expect(blob.subarray(6, 22).toString("hex")).toBe(header.key.id);
    expect(blob[22]).toBe(header.sourceId.length);
    expect(blob.subarray(23, 23 + header.sourceId.length).toString()).toBe(header.sourceId);
    let at = 23 + header.sourceId.length;
    expect(blob[at]).toBe(6);
    at += 7;
    // kty EC = 2, size 0 for EC, crv P-384 = 3, ops sign|verify = 0b11, label length 3
    expect([...blob.subarray(at, at + 7)]).toEqual([2, 0, 0, 3, 3, 0, 3]);
    at += 7 + 3 + 32 + 12;
    expect(blob.readUInt32BE(at)).toBe(material.length);
    expect(blob.length).toBe(at + 4 + material.length + 16);

    const parsed = parseKeyBlob(blob);
    expect(parsed.header).toEqual(header);
    expect(openKeyBlob(parsed, aeadKey)).toEqual(material);
  });

  test("another version, mode or trailing bytes are refused with the reason", async () => {
    const blob = sealKeyBlob(header, randomBytes(32), randomBytes(8));
    const v2 = Buffer.from(blob);
    v2[4] = 2;
    await expectHsmError(
      Promise.resolve().then(() => parseKeyBlob(v2)),
      "IntegrityError",
      /version 2 is not supported/,
    );
    const mode9 = Buffer.from(blob);
    mode9[5] = 9;
    await expectHsmError(
      Promise.resolve().then(() => parseKeyBlob(mode9)),
      "IntegrityError",
      /unknown mode 9/,
    );
    const longer = Buffer.concat([blob, Buffer.from([0])]);
    await expectHsmError(
      Promise.resolve().then(() => parseKeyBlob(longer)),
      "IntegrityError",
      /trailing bytes/,
    );
  });

  test("a blob opened with another key fails authentication", async () => {
    const blob = sealKeyBlob(header, randomBytes(32), randomBytes(8));
    await expectHsmError(
      Promise.resolve().then(() => openKeyBlob(parseKeyBlob(blob), randomBytes(32))),
      "IntegrityError",
      /failed authentication/,
    );
  });
});
