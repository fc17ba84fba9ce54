import { createHash, createPublicKey, generateKeyPairSync } from "node:crypto";
import { readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import {
  decodeSigstruct,
  inspectBundle,
  measureBundle,
  mrsignerOf,
  readSigstruct,
  SIGSTRUCT_FILE,
  signBundle,
  verifyBundle,
  verifySigstruct,
} from "./index.js";
import { caught, caughtSync, ecSigningKey, removeTempDirs, tempDir, writeBundle } from "./test-support.js";

afterAll(removeTempDirs);

const sha256Hex = (s: string | Uint8Array) => createHash("sha256").update(s).digest("hex");
const fields = { productId: 7, svn: 3, debug: false };

describe("bundle measurement", () => {
  it("is SHA-256 of the documented manifest: sorted byte-order paths, sha256 and size per file", async () => {
    const dir = await writeBundle(await tempDir(), { "b.txt": "bee", "a/x.txt": "x", "a.txt": "A!" });
    const manifest =
      "hsmpool-bundle-manifest-v1\n" +
      `${sha256Hex("A!")} 2 a.txt\n` +
      `${sha256Hex("x")} 1 a/x.txt\n` +
      `${sha256Hex("bee")} 3 b.txt\n`;
    const m = await measureBundle(dir);
    expect(m.files.map((f) => f.path)).toEqual(["a.txt", "a/x.txt", "b.txt"]);
    expect(m.mrenclave).toBe(sha256Hex(manifest));
  });

  it("does not depend on creation order and excludes only the root SIGSTRUCT file", async () => {
    const one = await writeBundle(await tempDir(), { "z.js": "1", "m/n.js": "2" });
    const two = await writeBundle(await tempDir(), {
      "m/n.js": "2",
      "z.js": "1",
      [SIGSTRUCT_FILE]: "whatever",
    });
    expect((await measureBundle(two)).mrenclave).toBe((await measureBundle(one)).mrenclave);
    const nested = await writeBundle(await tempDir(), {
      "z.js": "1",
      "m/n.js": "2",
      [`m/${SIGSTRUCT_FILE}`]: "x",
    });
    expect((await measureBundle(nested)).mrenclave).not.toBe((await measureBundle(one)).mrenclave);
  });

  it("changes when a file is renamed, edited or added", async () => {
    const base = (await measureBundle(await writeBundle(await tempDir(), { "a.js": "1" }))).mrenclave;
    const renamed = (await measureBundle(await writeBundle(await tempDir(), { "b.js": "1" }))).mrenclave;
    const edited = (await measureBundle(await writeBundle(await tempDir(), { "a.js": "2" }))).mrenclave;
    const added = (await measureBundle(await writeBundle(await tempDir(), { "a.js": "1", e: "" }))).mrenclave;
    expect(new Set([base, renamed, edited, added]).size).toBe(4);
  });

  it("refuses symlinks (what is measured must be what runs) and missing directories", async () => {
    const dir = await writeBundle(await tempDir(), { "a.js": "1" });
    await symlink("/etc/hostname", join(dir, "link"));
    expect((await caught(() => measureBundle(dir))).code).toBe("BadParameter");
    expect((await caught(() => measureBundle(join(dir, "nope")))).code).toBe("NotFound");
  });
});

describe("SIGSTRUCT", () => {
  it("round-trips through sign, file and decode, and MRSIGNER is SHA-256 of the signer's SPKI DER", async () => {
    const key = ecSigningKey();
    const dir = await writeBundle(await tempDir(), { "main.js": "console.log(1)" });
    const signed = await signBundle(dir, key, { productId: 9, svn: 65535, debug: true });
    const read = await readSigstruct(dir);
    expect(read).toEqual(signed);
    expect(read.mrenclave).toBe((await measureBundle(dir)).mrenclave);
    const spki = createPublicKey(key).export({ type: "spki", format: "der" });
    expect(read.mrsigner).toBe(sha256Hex(spki));
    expect(mrsignerOf(key)).toBe(read.mrsigner);
    expect(mrsignerOf(key.export({ type: "pkcs8", format: "pem" }) as string)).toBe(read.mrsigner);
    expect(verifySigstruct(read)).toBe(true);
    expect(read).toMatchObject({ productId: 9, svn: 65535, debug: true });
  });

  it.each(["ed25519", "rsa"] as const)("signs and verifies with a %s key", async (type) => {
    const { privateKey } =
      type === "rsa" ? generateKeyPairSync("rsa", { modulusLength: 2048 }) : generateKeyPairSync("ed25519");
    const dir = await writeBundle(await tempDir(), { "main.js": type });
    await signBundle(dir, privateKey, fields);
    expect((await verifyBundle(dir)).sigstruct.mrsigner).toBe(mrsignerOf(privateKey));
  });

  it("rejects out-of-range fields and public keys with BadParameter, writing nothing", async () => {
    const dir = await writeBundle(await tempDir(), { "main.js": "x" });
    const key = ecSigningKey();
    expect((await caught(() => signBundle(dir, key, { ...fields, svn: 70000 }))).details?.field).toBe("svn");
    expect((await caught(() => signBundle(dir, key, { ...fields, productId: -1 }))).details?.field).toBe(
      "productId",
    );
    expect(
      (
        await caught(() =>
          signBundle(dir, createPublicKey(key).export({ type: "spki", format: "pem" }) as string, fields),
        )
      ).code,
    ).toBe("BadParameter");
    expect((await caught(() => readSigstruct(dir))).code).toBe("NotFound");
  });
});

describe("launch check (verifyBundle)", () => {
  it("refuses a bundle edited after signing, naming the measurement check", async () => {
    const dir = await writeBundle(await tempDir(), { "main.js": "good()", "lib/x.js": "x" });
    await signBundle(dir, ecSigningKey(), fields);
    await verifyBundle(dir);
    await writeFile(join(dir, "lib/x.js"), "evil()");
    const e = await caught(() => verifyBundle(dir));
    expect(e.code).toBe("LaunchRefused");
    expect(e.details?.check).toBe("measurement");
  });

  it("refuses a bundle with a file added after signing", async () => {
    const dir = await writeBundle(await tempDir(), { "main.js": "good()" });
    await signBundle(dir, ecSigningKey(), fields);
    await writeFile(join(dir, "extra.js"), "evil()");
    expect((await caught(() => verifyBundle(dir))).details?.check).toBe("measurement");
  });

  it("refuses a SIGSTRUCT whose signer key was swapped for another key", async () => {
    const dir = await writeBundle(await tempDir(), { "main.js": "good()" });
    const original = await signBundle(dir, ecSigningKey(), fields);
    const other = await signBundle(
      await writeBundle(await tempDir(), { "o.js": "o" }),
      ecSigningKey(),
      fields,
    );
    const swapped = Buffer.from(await readFile(join(dir, SIGSTRUCT_FILE)));
    const spkiAt = swapped.indexOf(Buffer.from(original.signerPublicKeyDer));
    Buffer.from(other.signerPublicKeyDer).copy(swapped, spkiAt);
    await writeFile(join(dir, SIGSTRUCT_FILE), swapped);
    const e = await caught(() => verifyBundle(dir));
    expect(e.code).toBe("LaunchRefused");
    expect(e.details?.check).toBe("signature");
  });

  it("refuses an unsigned bundle and a missing bundle", async () => {
    const dir = await writeBundle(await tempDir(), { "main.js": "x" });
    expect((await caught(() => verifyBundle(dir))).details?.check).toBe("sigstruct");
    expect((await caught(() => verifyBundle(join(dir, "missing")))).details?.check).toBe("bundle");
  });

  it("inspectBundle reports a broken signature instead of throwing", async () => {
    const dir = await writeBundle(await tempDir(), { "main.js": "x" });
    await signBundle(dir, ecSigningKey(), fields);
    expect(await inspectBundle(dir)).toMatchObject({ signatureValid: true, measurementMatches: true });
    await writeFile(join(dir, "main.js"), "y");
    expect(await inspectBundle(dir)).toMatchObject({ signatureValid: true, measurementMatches: false });
  });

  it("property: any flipped byte or truncation of the SIGSTRUCT file is refused at launch", async () => {
    const dir = await writeBundle(await tempDir(), { "main.js": "good()" });
    await signBundle(dir, ecSigningKey(), fields);
    const path = join(dir, SIGSTRUCT_FILE);
    const good = new Uint8Array(await readFile(path));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({
            kind: fc.constant("flip" as const),
            at: fc.nat(good.length - 1),
            mask: fc.integer({ min: 1, max: 255 }),
          }),
          fc.record({ kind: fc.constant("truncate" as const), at: fc.nat(good.length - 1) }),
        ),
        async (m) => {
          const bad = m.kind === "flip" ? good.slice() : good.slice(0, m.at);
          if (m.kind === "flip") bad[m.at]! ^= m.mask;
          await writeFile(path, bad);
          const e = await caught(() => verifyBundle(dir));
          expect(e.code).toBe("LaunchRefused");
          expect(["sigstruct", "signature", "measurement"]).toContain(e.details?.check);
          // The decoder alone never yields a SIGSTRUCT that still verifies for this bundle.
          try {
            const s = decodeSigstruct(bad);
            expect(verifySigstruct(s) && s.mrenclave === (await measureBundle(dir)).mrenclave).toBe(false);
          } catch (err) {
            expect(
              caughtSync(() => {
                throw err;
              }).code,
            ).toBe("BadParameter");
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
