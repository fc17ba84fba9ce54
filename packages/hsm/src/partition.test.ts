/** Partition lifecycle (zeroize, initialize, login), sessions, key management and op permissions. */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { HsmDevice } from "./index.js";
import { deviceWithSession, expectHsmError, removeTempDirs, tempDir, text } from "./testing/fixtures.js";

afterAll(removeTempDirs);

describe("partition lifecycle", () => {
  test("a new device has the default four partitions, none initialized, so login is NotInitialized", async () => {
    const device = await HsmDevice.create(join(await tempDir(), "hsm"));
    expect(device.partitionCount).toBe(4);
    for (let i = 0; i < 4; i++) {
      expect(await device.partition(i).isInitialized()).toBe(false);
      await expectHsmError(
        device.partition(i).login(new Uint8Array(32)),
        "NotInitialized",
        /initialize it first/,
      );
    }
    expect(() => device.partition(4)).toThrow(/partition index must be 0..3/);
    await device.close();
  });

  test("initialize returns a fresh random 32-byte credential per partition and only it logs in", async () => {
    const { device, credential } = await deviceWithSession(2);
    const other = await device.partition(1).initialize();
    expect(credential.length).toBe(32);
    expect(Buffer.from(other)).not.toEqual(Buffer.from(credential));
    await expectHsmError(device.partition(1).login(credential), "Unauthenticated", /wrong credential/);
    await expectHsmError(device.partition(1).login(other.subarray(0, 31)), "Unauthenticated");
    await expectHsmError(device.partition(1).login("secret" as never), "BadParameter");
    expect(await device.partition(1).login(other)).toBeDefined();
    await expectHsmError(device.partition(1).initialize(), "Conflict", /zeroize it first/);
  });

  test("zeroize destroys every key on disk and in memory and voids sessions and the old credential", async () => {
    const { dir, device, credential, session } = await deviceWithSession(1);
    const key = await session.generateKey({ kty: "EC", ops: ["sign"] });
    const journals = async () => (await readdir(join(dir, "p0"))).filter((n) => n.endsWith(".log"));
    expect(await journals()).toEqual(["keys-e1-g0.log"]);
    const transferBefore = await session.getTransferPublicKey();
    await device.partition(0).zeroize();
    expect(await journals()).toEqual([]);
    await expectHsmError(session.sign(key, "ES256", text("m")), "NotInitialized");
    await expectHsmError(device.partition(0).login(credential), "NotInitialized");
    const fresh = await device.partition(0).initialize();
    await expectHsmError(session.listHandles(), "Unauthenticated", /re-initialized/);
    await expectHsmError(device.partition(0).login(credential), "Unauthenticated");
    const again = await device.partition(0).login(fresh);
    expect(await again.listHandles()).toEqual([]);
    await expectHsmError(again.getHandle(key), "KeyNotFound");
    expect(await again.getTransferPublicKey()).not.toEqual(transferBefore);
  });

  test("logout ends a session; other sessions go on", async () => {
    const { device, credential, session } = await deviceWithSession(1);
    const second = await device.partition(0).login(credential);
    session.logout();
    await expectHsmError(session.listHandles(), "Unauthenticated", /logged out/);
    expect(await second.listHandles()).toEqual([]);
  });
});

describe("keys and handles", () => {
  test("generateKey defaults: RSA 2048, EC P-256, AES 256; handles carry attributes only", async () => {
    const { session } = await deviceWithSession(1);
    const [r, e, o] = await Promise.all([
      session.generateKey({ kty: "RSA", ops: ["verify"] }),
      session.generateKey({ kty: "EC", ops: ["verify"] }),
      session.generateKey({ kty: "oct", ops: ["encrypt"] }),
    ]);
    expect(r).toMatchObject({ kty: "RSA", size: 2048, ops: ["verify"] });
    expect(e).toMatchObject({ kty: "EC", crv: "P-256" });
    expect(o).toMatchObject({ kty: "oct", size: 256 });
    for (const handle of [r, e, o]) {
      expect(Object.keys(handle).sort()).toEqual(
        handle.kty === "EC" ? ["crv", "id", "kty", "ops"] : ["id", "kty", "ops", "size"],
      );
      expect(Object.isFrozen(handle)).toBe(true);
    }
    expect((await session.listHandles()).map((h) => h.id).sort()).toEqual([r.id, e.id, o.id].sort());
  });

  test("a caller changing a returned label does not change the stored key", async () => {
    const { session } = await deviceWithSession(1);
    const handle = await session.generateKey({ kty: "oct", ops: ["encrypt"], label: text("orig") });
    handle.label![0] = 0;
    expect(Buffer.from((await session.getHandle(handle.id)).label!).toString()).toBe("orig");
  });

  test("deleteKey removes the key; a deleted key is KeyNotFound, also after reopen", async () => {
    const { dir, device, credential, session } = await deviceWithSession(1);
    const keep = await session.generateKey({ kty: "oct", ops: ["encrypt"] });
    const gone = await session.generateKey({ kty: "oct", ops: ["encrypt"] });
    await session.deleteKey(gone);
    await expectHsmError(session.encrypt(gone, "A256GCM", text("m")), "KeyNotFound", new RegExp(gone.id));
    await expectHsmError(session.deleteKey(gone), "KeyNotFound");
    await device.close();
    const reopened = await HsmDevice.open(dir);
    const again = await reopened.partition(0).login(credential);
    expect((await again.listHandles()).map((h) => h.id)).toEqual([keep.id]);
    await reopened.close();
  });

  test("deleted keys leave the disk: churn rewrites the journal without them", async () => {
    const { dir, device, credential, session } = await deviceWithSession(1);
    const keep = await session.generateKey({ kty: "oct", ops: ["encrypt"] });
    const oneKey = (await stat(join(dir, "p0/keys-e1-g0.log"))).size;
    for (let i = 0; i < 200; i++)
      await session.deleteKey(await session.generateKey({ kty: "oct", ops: ["encrypt"] }));
    const [journal] = (await readdir(join(dir, "p0"))).filter((n) => n.endsWith(".log"));
    expect(journal).toMatch(/^keys-e1-g[1-9]\d*\.log$/);
    // 200 keys' records were written; what is left is at most the compaction slack of them.
    expect((await stat(join(dir, "p0", journal!))).size).toBeLessThan(oneKey * 150);
    await device.close();
    const reopened = await HsmDevice.open(dir);
    expect((await (await reopened.partition(0).login(credential)).listHandles()).map((h) => h.id)).toEqual([
      keep.id,
    ]);
    await reopened.close();
  });

  test("a session object (persist: false) works at once, is never written, and is gone after reopen", async () => {
    const { dir, device, credential, session } = await deviceWithSession(1);
    const dek = await session.generateKey({ kty: "oct", size: 256, ops: ["wrapKey", "unwrapKey"] });
    const before = (await stat(join(dir, "p0/keys-e1-g0.log"))).size;
    const key = await session.generateKey({ kty: "EC", ops: ["sign", "verify"] }, { persist: false });
    const signature = await session.sign(key, "ES256", text("m"));
    const blob = await session.exportWrapped(key, dek);
    expect((await stat(join(dir, "p0/keys-e1-g0.log"))).size).toBe(before);
    await device.close();
    const reopened = await HsmDevice.open(dir);
    const again = await reopened.partition(0).login(credential);
    await expectHsmError(again.getHandle(key), "KeyNotFound");
    // Its wrapped copy brings it back, under the same id.
    expect((await again.importWrapped(blob, dek)).id).toBe(key.id);
    expect(await again.verify(key, "ES256", text("m"), signature)).toBe(true);
    await reopened.close();
  });

  test("a handle from another partition is unknown here", async () => {
    const { device, session } = await deviceWithSession(2);
    const other = await device.partition(1).login(await device.partition(1).initialize());
    const key = await session.generateKey({ kty: "EC", ops: ["sign"] });
    await expectHsmError(other.sign(key, "ES256", text("m")), "KeyNotFound");
  });
});

describe("allowed operations", () => {
  const cases = [
    { ops: ["verify"], kty: "EC", call: "sign", alg: "ES256" },
    { ops: ["sign"], kty: "EC", call: "verify", alg: "ES256" },
    { ops: ["encrypt"], kty: "oct", call: "decrypt", alg: "A256CBCPAD" },
    { ops: ["decrypt"], kty: "oct", call: "encrypt", alg: "A256GCM" },
    { ops: ["unwrapKey"], kty: "oct", call: "wrapKey", alg: "A256KW" },
    { ops: ["wrapKey"], kty: "oct", call: "unwrapKey", alg: "A256KW" },
    { ops: ["sign"], kty: "RSA", call: "encrypt", alg: "RSA-OAEP" },
  ] as const;
  test.each(cases)("a key allowing only $ops cannot $call", async ({ ops, kty, call, alg }) => {
    const { session } = await deviceWithSession(1);
    const key = await session.generateKey({ kty, ops: [...ops] });
    const data = new Uint8Array(kty === "RSA" ? 256 : 32).fill(1);
    const run = {
      sign: () => session.sign(key, alg, data),
      verify: () => session.verify(key, alg, data, new Uint8Array(64)),
      encrypt: () => session.encrypt(key, alg, data),
      decrypt: () => session.decrypt(key, alg, data, { iv: new Uint8Array(16) }),
      wrapKey: () => session.wrapKey(key, alg, data),
      unwrapKey: () => session.unwrapKey(key, alg, new Uint8Array(40)),
    }[call];
    await expectHsmError(
      run(),
      "OperationNotAllowed",
      new RegExp(`does not allow ${call}; it allows ${ops[0]}`),
    );
  });
});
