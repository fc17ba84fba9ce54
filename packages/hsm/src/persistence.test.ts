/**
 * Device state on disk: it survives close + reopen, it is readable only with its own
 * device key, every tampered or truncated file is an IntegrityError at open, and no
 * private or secret key bytes (in any common encoding) ever appear in a file.
 */
import { copyFile, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isHsmPoolError } from "@hsmpool/errors";
import fc from "fast-check";
import { afterAll, describe, expect, test } from "vitest";
import { DeviceFiles } from "./device-files.js";
import { HsmDevice, type KeyHandle } from "./index.js";
import { encodeKeyRecord } from "./records.js";
import { deriveStorageKey } from "./sealed-file.js";
import {
  deviceWithSession,
  expectHsmError,
  readTree,
  removeTempDirs,
  tempDir,
  text,
} from "./testing/fixtures.js";
import { revealKeyForTest, revealTransferKeyForTest } from "./testing/key-material-door.js";

afterAll(removeTempDirs);

/** Whole frames at the start of a journal (u32 length | u32 its complement | sealed body); `exact` demands nothing after them. */
function frameCount(journal: Buffer, exact = false): number {
  let at = 0;
  let frames = 0;
  while (at + 8 <= journal.length && at + 8 + journal.readUInt32BE(at) <= journal.length) {
    at += 8 + journal.readUInt32BE(at);
    frames++;
  }
  if (exact && at !== journal.length) return -1;
  return frames;
}

describe("persistence", () => {
  test("keys, credentials and transfer keys survive close and reopen", async () => {
    const { dir, device, credential, session } = await deviceWithSession(2);
    const ecKey = await session.generateKey({
      kty: "EC",
      crv: "P-521",
      ops: ["sign", "verify"],
      label: text("x"),
    });
    const aesKey = await session.generateKey({ kty: "oct", size: 192, ops: ["encrypt", "decrypt"] });
    const message = text("before restart");
    const signature = await session.sign(ecKey, "ES512", message);
    const sealed = await session.encrypt(aesKey, "A192GCM", message);
    const transferKey = await session.getTransferPublicKey();
    const handles = await session.listHandles();
    await device.close();
    await expectHsmError(session.sign(ecKey, "ES512", message), "ServiceUnavailable", /closed/);

    const reopened = await HsmDevice.open(dir);
    expect(reopened.id).toBe(device.id);
    expect(await reopened.partition(1).isInitialized()).toBe(false);
    const again = await reopened.partition(0).login(credential);
    expect(await again.listHandles()).toEqual(handles);
    expect(await again.verify(ecKey.id, "ES512", message, signature)).toBe(true);
    const opened = await again.decrypt(aesKey, "A192GCM", sealed.ciphertext, {
      iv: sealed.iv!,
      tag: sealed.tag!,
    });
    expect(Buffer.from(opened)).toEqual(Buffer.from(message));
    expect(await again.getTransferPublicKey()).toEqual(transferKey);
    await reopened.close();
  });

  test("a device with another device key cannot read the first device's files", async () => {
    const a = await deviceWithSession(1);
    const b = await deviceWithSession(1);
    await a.session.generateKey({ kty: "oct", size: 256, ops: ["encrypt"] });
    await a.device.close();
    await b.device.close();
    // b's partition record placed in a: a's key cannot open it.
    const aPartition = await readFile(join(a.dir, "p0/partition.state"));
    await copyFile(join(b.dir, "p0/partition.state"), join(a.dir, "p0/partition.state"));
    await expectHsmError(
      HsmDevice.open(a.dir),
      "IntegrityError",
      /p0\/partition.state failed authentication/,
    );
    await writeFile(join(a.dir, "p0/partition.state"), aPartition);
    // b's device key over a's files: nothing of a opens.
    await copyFile(join(b.dir, "device.key"), join(a.dir, "device.key"));
    await expectHsmError(HsmDevice.open(a.dir), "IntegrityError", /device.state failed authentication/);
  });

  test("a journal that disappeared is an IntegrityError, not a silently empty partition", async () => {
    const { dir, device, session } = await deviceWithSession(1);
    await session.generateKey({ kty: "EC", ops: ["sign"] });
    await device.close();
    await rm(join(dir, "p0/keys-e1-g0.log"));
    await expectHsmError(HsmDevice.open(dir), "IntegrityError", /missing/);
  });

  test("crash leftovers (temp files, other epochs' journals, an older generation) are removed at open", async () => {
    const { dir, device, credential, session } = await deviceWithSession(1);
    const key = await session.generateKey({ kty: "EC", ops: ["sign"] });
    await device.close();
    // An initialize that crashed before its record (epoch 2), and a compaction that crashed
    // after writing generation 1 but before removing generation 0 (generation 1 wins).
    await copyFile(join(dir, "p0/keys-e1-g0.log"), join(dir, "p0/keys-e2-g0.log"));
    await writeFile(join(dir, "p0/keys-e1-g1.log"), await readFile(join(dir, "p0/keys-e1-g0.log")));
    await writeFile(join(dir, "p0/partition.state.tmp-abc"), "half-written");
    // Generation 1's frames are sealed for generation 1's name: a copy of generation 0 does not open.
    await expectHsmError(HsmDevice.open(dir), "IntegrityError", /keys-e1-g1.log#0 failed authentication/);
    await rm(join(dir, "p0/keys-e1-g1.log"));
    const reopened = await HsmDevice.open(dir);
    expect((await (await reopened.partition(0).login(credential)).listHandles()).map((h) => h.id)).toEqual([
      key.id,
    ]);
    expect([...(await readTree(dir)).keys()]).toEqual([
      "device.key",
      "device.state",
      "p0/keys-e1-g0.log",
      "p0/partition.state",
    ]);
    await reopened.close();
  });

  test("a batch is all or nothing: a journal cut anywhere in the last frame reads as before the batch", async () => {
    const { dir, device, credential, session } = await deviceWithSession(1);
    const first = await session.generateKey({ kty: "EC", ops: ["sign"] });
    const before = (await readFile(join(dir, "p0/keys-e1-g0.log"))).length;
    // Concurrent adds are written together: fewer frames than keys.
    const batch = await Promise.all(
      Array.from({ length: 16 }, () => session.generateKey({ kty: "oct", ops: ["encrypt"] })),
    );
    await device.close();
    const full = await readFile(join(dir, "p0/keys-e1-g0.log"));
    expect(frameCount(full)).toBeLessThan(1 + batch.length);
    const ids = async () => {
      const d = await HsmDevice.open(dir);
      try {
        return (await (await d.partition(0).login(credential)).listHandles()).map((h) => h.id).sort();
      } finally {
        await d.close();
      }
    };
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: before, max: full.length }), async (cut) => {
        await writeFile(join(dir, "p0/keys-e1-g0.log"), full.subarray(0, cut));
        const seen = await ids();
        // Every cut leaves a prefix of the frames: the first key, then whole batches only.
        expect(seen).toContain(first.id);
        expect(seen.every((id) => id === first.id || batch.some((k) => k.id === id))).toBe(true);
        if (cut === before) expect(seen).toEqual([first.id]);
        if (cut === full.length) expect(seen).toEqual([first.id, ...batch.map((k) => k.id)].sort());
        // The cut tail is gone from disk: the journal ends on a whole frame again.
        expect(frameCount(await readFile(join(dir, "p0/keys-e1-g0.log")), true)).toBe(
          seen.length === 1 ? 1 : frameCount(full.subarray(0, cut)),
        );
      }),
      { numRuns: 40 },
    );
    // After a cut, new keys append cleanly and survive a reopen.
    await writeFile(join(dir, "p0/keys-e1-g0.log"), full.subarray(0, before + 5));
    const d = await HsmDevice.open(dir);
    const later = await (await d.partition(0).login(credential)).generateKey({ kty: "EC", ops: ["sign"] });
    await d.close();
    expect(await ids()).toEqual([first.id, later.id].sort());
  });

  test("a format 1 device (one file per key, ids listed in the record) migrates into the journal at open", async () => {
    const { dir, device, credential, session } = await deviceWithSession(1);
    const key = await session.generateKey({ kty: "EC", ops: ["sign", "verify"] });
    const { serialized } = revealKeyForTest(session, key);
    const files = new DeviceFiles(dir, deriveStorageKey(await readFile(join(dir, "device.key"))), device.id);
    await device.close();
    // Rewrite the partition the way format 1 stored it.
    const record = JSON.parse((await files.read("p0/partition.state")).toString("utf8")) as Record<
      string,
      unknown
    >;
    await files.write(
      "p0/partition.state",
      Buffer.from(JSON.stringify({ ...record, format: 1, keyIds: [key.id] })),
    );
    await files.write(`p0/keys/${key.id}.key`, encodeKeyRecord(key, serialized));
    await rm(join(dir, "p0/keys-e1-g0.log"));
    const reopened = await HsmDevice.open(dir);
    const again = await reopened.partition(0).login(credential);
    const signature = await again.sign(key, "ES256", text("m"));
    expect(await again.verify(key, "ES256", text("m"), signature)).toBe(true);
    expect([...(await readTree(dir)).keys()]).toEqual([
      "device.key",
      "device.state",
      "p0/keys-e1-g1.log",
      "p0/partition.state",
    ]);
    expect(JSON.parse((await files.read("p0/partition.state")).toString("utf8")).format).toBe(2);
    await reopened.close();
  });

  test("create refuses an existing device, open refuses a missing one and a second open in the process", async () => {
    const { dir, device } = await deviceWithSession(1);
    await expectHsmError(HsmDevice.open(dir), "Conflict", /already open/);
    await device.close();
    await expectHsmError(HsmDevice.create(dir), "Conflict", /already exists/);
    await expectHsmError(HsmDevice.open(join(await tempDir(), "none")), "NotFound", /no HSM device/);
    await expectHsmError(HsmDevice.create(join(await tempDir(), "x"), { partitionCount: 0 }), "BadParameter");
  });
});

describe("tampered device files (property)", () => {
  test("any flipped byte or truncation of any device file makes open fail with IntegrityError", async () => {
    const { dir, device, session } = await deviceWithSession(3);
    await session.generateKey({ kty: "EC", crv: "P-256K", ops: ["sign", "verify"], label: text("label") });
    await session.generateKey({ kty: "oct", size: 128, ops: ["wrapKey"] });
    await device.partition(1).initialize();
    await device.partition(1).zeroize();
    await device.close();
    const pristine = await readTree(dir);
    const names = [...pristine.keys()];
    expect(names.length).toBe(6);
    const mutation = fc
      .record({
        file: fc.nat({ max: names.length - 1 }),
        at: fc.nat(),
        mask: fc.integer({ min: 1, max: 255 }),
        truncate: fc.boolean(),
      })
      .map(({ file, at, mask, truncate }) => {
        const name = names[file]!;
        const bytes = Buffer.from(pristine.get(name)!);
        const position = at % bytes.length;
        // A cut journal is what a crash mid-append leaves: it is read as its whole frames (tested above).
        if (truncate && !name.endsWith(".log")) return { name, bytes: bytes.subarray(0, position) };
        bytes[position]! ^= mask;
        return { name, bytes };
      });
    await fc.assert(
      fc.asyncProperty(mutation, async ({ name, bytes }) => {
        await writeFile(join(dir, name), bytes);
        try {
          const error = await HsmDevice.open(dir).then(
            async (d) => {
              await d.close();
              return undefined;
            },
            (e: unknown) => e,
          );
          expect(isHsmPoolError(error, "IntegrityError"), `${name}: ${String(error)}`).toBe(true);
        } finally {
          await writeFile(join(dir, name), pristine.get(name)!);
        }
      }),
      { numRuns: 250 },
    );
    await (await HsmDevice.open(dir)).close();
  });
});

/** Every encoding in which a secret could leak into a file. */
function encodings(secret: Buffer): Buffer[] {
  return [
    secret,
    Buffer.from(secret.toString("hex")),
    Buffer.from(secret.toString("hex").toUpperCase()),
    Buffer.from(secret.toString("base64")),
    Buffer.from(secret.toString("base64url")),
  ];
}

function secretsOf(revealed: { serialized: Buffer; jwk: Record<string, unknown> }): Buffer[] {
  const jwkSecrets = ["d", "p", "q", "dp", "dq", "qi", "k"]
    .map((field) => revealed.jwk[field])
    .filter((v): v is string => typeof v === "string");
  return [
    ...encodings(revealed.serialized),
    ...jwkSecrets.flatMap((v) => [Buffer.from(v), ...encodings(Buffer.from(v, "base64url"))]),
  ];
}

async function leaksIn(dir: string, secrets: Buffer[]): Promise<string[]> {
  const found: string[] = [];
  for (const [name, content] of await readTree(dir)) {
    if (name === "device.key") continue;
    secrets.forEach((secret, i) => {
      if (content.includes(secret)) found.push(`${name} contains secret #${i}`);
    });
  }
  return found;
}

describe("leaks", () => {
  test("no private or secret key bytes, credential or transfer key appear in any device file", async () => {
    const { dir, device, credential, session } = await deviceWithSession(3);
    const keys: KeyHandle[] = [
      await session.generateKey({ kty: "RSA", size: 2048, ops: ["sign", "decrypt", "unwrapKey"] }),
      ...(await Promise.all(
        (["P-256", "P-256K", "P-384", "P-521"] as const).map((crv) =>
          session.generateKey({ kty: "EC", crv, ops: ["sign"] }),
        ),
      )),
      ...(await Promise.all(
        [128, 192, 256].map((size) =>
          session.generateKey({ kty: "oct", size, ops: ["encrypt", "wrapKey", "unwrapKey"] }),
        ),
      )),
    ];
    const revealed = keys.map((k) => revealKeyForTest(session, k));
    const dek = keys[7]!;
    // Operations, a wrapped round trip, a transfer to another partition, a delete and a zeroize.
    await session.sign(keys[0]!, "PS256", text("m"));
    await session.encrypt(keys[5]!, "A128CBCPAD", text("m"));
    const blob = await session.exportWrapped(keys[1]!, dek);
    await session.deleteKey(keys[1]!);
    await session.importWrapped(blob, dek);
    const peer = await device.partition(1).login(await device.partition(1).initialize());
    const transfer = await session.exportForTransfer(
      dek,
      (await peer.getTransferPublicKey()).jwk,
      peer.partitionId,
    );
    await peer.importFromTransfer(transfer, (await session.getTransferPublicKey()).spki, session.partitionId);
    const doomed = await peer.generateKey({ kty: "oct", size: 256, ops: ["encrypt"] });
    revealed.push(
      revealKeyForTest(peer, doomed),
      revealTransferKeyForTest(session),
      revealTransferKeyForTest(peer),
    );
    await device.partition(1).zeroize();
    await device.close();

    const secrets = [...revealed.flatMap(secretsOf), ...encodings(Buffer.from(credential))];
    expect(secrets.length).toBeGreaterThan(100);
    expect(await leaksIn(dir, secrets)).toEqual([]);

    // The scan itself must be able to fail: a planted leak is found.
    await writeFile(join(dir, "p0/planted"), `x${revealed[3]!.serialized.toString("base64")}x`);
    expect(await leaksIn(dir, secrets)).not.toEqual([]);
  });
});
