import {
  constants,
  createPublicKey,
  createSecretKey,
  generateKeyPairSync,
  privateDecrypt,
  verify,
} from "node:crypto";
import { isHsmPoolError } from "@hsmpool/errors";
import { afterAll, describe, expect, test } from "vitest";
import { aesKeyUnwrapPad, aesKeyWrapPad } from "./aes-kw.js";
import {
  makeByokBlob,
  parseByokBlob,
  rsaThumbprint,
  unwrapByokCiphertext,
  wrapByokCiphertext,
} from "./byok.js";
import { deviceWithSession, removeTempDirs } from "./testing/fixtures.js";

afterAll(removeTempDirs);

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ""), "hex");

// RFC 5649 section 6: the two published examples (192-bit KEK).
const RFC5649_KEK = "5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8";
const RFC5649_VECTORS = [
  {
    key: "c37b7e6492584340 bed1220780894115 5068f738",
    wrapped: "138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a",
  },
  { key: "466f7250617369", wrapped: "afbeb0f07dfbf541 9200f2ccb50bb24f" },
];

describe("AES key wrap with padding (RFC 5649)", () => {
  for (const v of RFC5649_VECTORS) {
    test(`known answer: ${v.key.replace(/\s/g, "").length / 2}-byte key`, () => {
      const kek = createSecretKey(hex(RFC5649_KEK));
      expect(aesKeyWrapPad(kek, hex(v.key)).toString("hex")).toBe(v.wrapped.replace(/\s/g, ""));
      expect(aesKeyUnwrapPad(kek, hex(v.wrapped)).toString("hex")).toBe(v.key.replace(/\s/g, ""));
    });
  }

  test("a flipped byte fails the integrity check", () => {
    const kek = createSecretKey(hex(RFC5649_KEK));
    const wrapped = hex(RFC5649_VECTORS[0]?.wrapped ?? "");
    wrapped[5] = (wrapped[5] ?? 0) ^ 1;
    expect(() => aesKeyUnwrapPad(kek, wrapped)).toThrow(/RFC 5649/);
  });
});

describe("BYOK ciphertext (CKM_RSA_AES_KEY_WRAP)", () => {
  const kek = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const target = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const targetDer = target.privateKey.export({ type: "pkcs8", format: "der" });

  test("layout: RSA-OAEP(SHA-1) of the AES key under the KEK, then RFC 5649 of the PKCS#8 target", () => {
    const aesKey = Buffer.alloc(32, 7);
    const ciphertext = wrapByokCiphertext(kek.publicKey, targetDer, Buffer.from(aesKey));
    const rsaPart = ciphertext.subarray(0, 256);
    const recovered = privateDecrypt(
      { key: kek.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" },
      rsaPart,
    );
    expect(recovered.equals(aesKey)).toBe(true);
    expect(ciphertext.subarray(256).equals(aesKeyWrapPad(createSecretKey(aesKey), targetDer))).toBe(true);
    expect(unwrapByokCiphertext(kek.privateKey, 256, ciphertext).equals(targetDer)).toBe(true);
  });

  test("a blob for another KEK, or with a flipped byte, is an IntegrityError", () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const ciphertext = wrapByokCiphertext(other.publicKey, targetDer);
    expect(() => unwrapByokCiphertext(kek.privateKey, 256, ciphertext)).toThrow(/not made for this/);
    const mine = wrapByokCiphertext(kek.publicKey, targetDer);
    mine[mine.length - 3] = (mine[mine.length - 3] ?? 0) ^ 0x40;
    expect(() => unwrapByokCiphertext(kek.privateKey, 256, mine)).toThrow(/RFC 5649/);
  });

  test("the .byok file round-trips and names the KEK; malformed files are BadParameter", () => {
    const blob = makeByokBlob(kek.publicKey, rsaThumbprint(kek.publicKey), targetDer, "test");
    const parsed = parseByokBlob(JSON.stringify(blob));
    expect(parsed.kid).toBe(rsaThumbprint(createPublicKey(kek.privateKey)));
    for (const bad of ["{", JSON.stringify({ ...blob, header: { ...blob.header, enc: "X" } }), "[]"]) {
      let code: string | undefined;
      try {
        parseByokBlob(bad);
      } catch (e) {
        if (isHsmPoolError(e)) code = e.code;
      }
      expect(code).toBe("BadParameter");
    }
  });
});

describe("Session.importByok: unwrapped inside the HSM", () => {
  test("an RSA target imported by BYOK signs, and node:crypto verifies with the original public key", async () => {
    const { session } = await deviceWithSession();
    const kekHandle = await session.generateKey({ kty: "RSA", size: 3072, ops: ["import"] });
    const { kid: _kid, key_ops: _ops, ...jwk } = await session.getPublicJwk(kekHandle);
    const kekPublic = createPublicKey({ key: jwk, format: "jwk" });
    const target = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const ciphertext = wrapByokCiphertext(
      kekPublic,
      target.privateKey.export({ type: "pkcs8", format: "der" }),
    );
    const handle = await session.importByok(kekHandle, ciphertext, ["sign", "verify"]);
    expect(handle.kty).toBe("RSA");
    const signature = await session.sign(handle, "RS256", Buffer.from("byok"));
    expect(verify("sha256", Buffer.from("byok"), target.publicKey, signature)).toBe(true);
    expect(verify("sha256", Buffer.from("other"), target.publicKey, signature)).toBe(false);
  });

  test("a KEK that allows more than import, or a key that is not a KEK, is refused and stores nothing", async () => {
    const { session } = await deviceWithSession();
    const notKek = await session.generateKey({ kty: "RSA", size: 2048, ops: ["sign", "verify"] });
    const pub = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey;
    const before = (await session.listHandles()).length;
    await expect(
      session.importByok(notKek, wrapByokCiphertext(pub, Buffer.alloc(32, 1)), ["encrypt"]),
    ).rejects.toThrow(/does not allow import/);
    expect((await session.listHandles()).length).toBe(before);
  });

  test("HMAC: an oct key signs HS256/384/512 and verifies; a wrong MAC is invalid", async () => {
    const { session } = await deviceWithSession();
    const key = await session.generateKey({ kty: "oct", size: 256, ops: ["sign", "verify"] });
    for (const alg of ["HS256", "HS384", "HS512"]) {
      const mac = await session.sign(key, alg, Buffer.from("mac"));
      expect(mac.length).toBe({ HS256: 32, HS384: 48, HS512: 64 }[alg]);
      expect(await session.verify(key, alg, Buffer.from("mac"), mac)).toBe(true);
      mac[0] = (mac[0] ?? 0) ^ 1;
      expect(await session.verify(key, alg, Buffer.from("mac"), mac)).toBe(false);
    }
    expect((await session.randomBytes(32)).length).toBe(32);
    await expect(session.randomBytes(0)).rejects.toThrow(/1\.\.4096/);
  });
});
