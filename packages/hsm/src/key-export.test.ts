/**
 * Wrapped export/import under a partition AES key (the future DEK) and
 * partition-to-partition transfer over ECDH between transfer keys: round trips keep
 * the key (same id, attributes, label and material), and any change to a blob, its
 * binding (source, target, wrapping key) or its mode is an IntegrityError that
 * changes nothing.
 */
import { createPublicKey, randomBytes } from "node:crypto";
import { isHsmPoolError } from "@hsmpool/errors";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { HsmDevice, KeyHandle, Session } from "./index.js";
import { deviceWithSession, expectHsmError, readTree, removeTempDirs, text } from "./testing/fixtures.js";

let source: { device: HsmDevice; session: Session; dir: string };
let target: { device: HsmDevice; session: Session; dir: string };
let bystander: Session;
let dek: KeyHandle;
let signer: KeyHandle;

beforeAll(async () => {
  const a = await deviceWithSession(3, 0);
  const b = await deviceWithSession(2, 1);
  source = a;
  target = b;
  bystander = await a.device.partition(2).login(await a.device.partition(2).initialize());
  dek = await a.session.generateKey({
    kty: "oct",
    size: 256,
    ops: ["wrapKey", "unwrapKey"],
    label: text("pool DEK"),
  });
  signer = await a.session.generateKey({
    kty: "EC",
    crv: "P-384",
    ops: ["sign", "verify"],
    label: text("key-7/v1"),
  });
});

afterAll(async () => {
  await source.device.close();
  await target.device.close();
  await removeTempDirs();
});

/** The DEK delivered to `to` by ECDH transfer from the source partition. */
async function transferDek(to: Session): Promise<KeyHandle> {
  const targetPublic = await to.getTransferPublicKey();
  const blob = await source.session.exportForTransfer(dek, targetPublic.jwk, to.partitionId);
  const sourcePublic = await source.session.getTransferPublicKey();
  return to.importFromTransfer(blob, sourcePublic.spki, source.session.partitionId);
}

async function stateOf(session: Session, dir: string) {
  return { handles: (await session.listHandles()).length, files: await readTree(dir) };
}

describe("wrapped export under a partition AES key", () => {
  test("a key exported under the DEK, deleted and imported back keeps id, attributes, label and material", async () => {
    const key = await source.session.generateKey({
      kty: "RSA",
      size: 2048,
      ops: ["sign", "verify"],
      label: text("rsa"),
    });
    const jwkBefore = await source.session.getPublicJwk(key);
    const blob = await source.session.exportWrapped(key, dek);
    await source.session.deleteKey(key);
    await expectHsmError(source.session.getHandle(key.id), "KeyNotFound");
    const back = await source.session.importWrapped(blob, dek);
    expect(back).toEqual(key);
    expect(Buffer.from(back.label!).toString()).toBe("rsa");
    expect(await source.session.getPublicJwk(back)).toEqual(jwkBefore);
  });

  test("a partition that received the DEK by ECDH transfer imports blobs exported on another server", async () => {
    const dekOnTarget = await transferDek(target.session);
    expect(dekOnTarget).toEqual(dek);
    const blob = await source.session.exportWrapped(signer, dek);
    const imported = await target.session.importWrapped(blob, dekOnTarget.id);
    expect(imported).toEqual(signer);
    const message = text("signed on the secondary");
    const signature = await target.session.sign(imported, "ES384", message);
    expect(await source.session.verify(signer, "ES384", message, signature)).toBe(true);
    expect(await target.session.getPublicJwk(imported)).toEqual(await source.session.getPublicJwk(signer));
  });

  test("importing the same blob twice returns the same handle and stores one key", async () => {
    const blob = await source.session.exportWrapped(signer, dek);
    const before = (await source.session.listHandles()).length;
    expect(await source.session.importWrapped(blob, dek)).toEqual(signer);
    expect((await source.session.listHandles()).length).toBe(before);
  });

  test("a blob opened under a different AES key is an IntegrityError", async () => {
    const other = await source.session.generateKey({ kty: "oct", size: 256, ops: ["wrapKey", "unwrapKey"] });
    const blob = await source.session.exportWrapped(signer, dek);
    await expectHsmError(
      source.session.importWrapped(blob, other),
      "IntegrityError",
      /failed authentication/,
    );
  });

  test("exporting needs wrapKey and importing needs unwrapKey on the wrapping key", async () => {
    const wrapOnly = await source.session.generateKey({ kty: "oct", size: 128, ops: ["wrapKey"] });
    const blob = await source.session.exportWrapped(signer, wrapOnly);
    await expectHsmError(
      source.session.importWrapped(blob, wrapOnly),
      "OperationNotAllowed",
      /does not allow unwrapKey/,
    );
    const encryptOnly = await source.session.generateKey({
      kty: "oct",
      size: 256,
      ops: ["encrypt", "decrypt"],
    });
    await expectHsmError(source.session.exportWrapped(signer, encryptOnly), "OperationNotAllowed", /wrapKey/);
    await expectHsmError(
      source.session.exportWrapped(dek, signer),
      "BadParameter",
      /must be an AES \(oct\) key/,
    );
  });

  test("a transfer blob handed to importWrapped is refused as the wrong kind of blob", async () => {
    const targetPublic = await target.session.getTransferPublicKey();
    const blob = await source.session.exportForTransfer(
      signer,
      targetPublic.spki,
      target.session.partitionId,
    );
    await expectHsmError(source.session.importWrapped(blob, dek), "IntegrityError", /importFromTransfer/);
  });
});

describe("partition-to-partition transfer over ECDH", () => {
  test("the transfer public key is P-384, the same key as JWK and SPKI", async () => {
    const { jwk, spki } = await source.session.getTransferPublicKey();
    expect(jwk).toMatchObject({ kty: "EC", crv: "P-384" });
    expect(jwk).not.toHaveProperty("d");
    const fromSpki = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
    expect(fromSpki.export({ format: "jwk" })).toEqual(jwk);
  });

  test("a blob made for one partition cannot be imported by another", async () => {
    const targetPublic = await target.session.getTransferPublicKey();
    const blob = await source.session.exportForTransfer(signer, targetPublic.jwk, target.session.partitionId);
    const sourcePublic = (await source.session.getTransferPublicKey()).jwk;
    await expectHsmError(
      bystander.importFromTransfer(blob, sourcePublic, source.session.partitionId),
      "IntegrityError",
    );
  });

  test("the wrong source id or source public key is an IntegrityError", async () => {
    const fresh = await deviceWithSession(1);
    const targetPublic = await fresh.session.getTransferPublicKey();
    const blob = await source.session.exportForTransfer(signer, targetPublic.jwk, fresh.session.partitionId);
    const sourcePublic = (await source.session.getTransferPublicKey()).jwk;
    await expectHsmError(
      fresh.session.importFromTransfer(blob, sourcePublic, "someone-else/p0"),
      "IntegrityError",
    );
    const impostor = (await bystander.getTransferPublicKey()).jwk;
    await expectHsmError(
      fresh.session.importFromTransfer(blob, impostor, source.session.partitionId),
      "IntegrityError",
    );
    expect(await fresh.session.listHandles()).toEqual([]);
    const imported = await fresh.session.importFromTransfer(blob, sourcePublic, source.session.partitionId);
    expect(imported).toEqual(signer);
    await fresh.device.close();
  });

  test("a target transfer key that is not EC P-384 is refused", async () => {
    const p256Key = createPublicKey({
      key: (await source.session.getPublicJwk(
        await source.session.generateKey({ kty: "EC", ops: ["verify"] }),
      )) as never,
      format: "jwk",
    });
    await expectHsmError(source.session.exportForTransfer(signer, p256Key, "x/p0"), "BadParameter", /P-384/);
    await expectHsmError(source.session.exportForTransfer(signer, randomBytes(50), "x/p0"), "BadParameter");
    await expectHsmError(source.session.exportForTransfer(signer, "nope" as never, "x/p0"), "BadParameter");
  });
});

/** Flip one byte or cut the blob short: the import must be an IntegrityError and change nothing. */
function mutations(length: number) {
  return fc.oneof(
    fc.record({
      kind: fc.constant("flip" as const),
      at: fc.nat({ max: length - 1 }),
      mask: fc.integer({ min: 1, max: 255 }),
    }),
    fc.record({
      kind: fc.constant("truncate" as const),
      at: fc.nat({ max: length - 1 }),
      mask: fc.constant(0),
    }),
  );
}

function mutate(blob: Uint8Array, m: { kind: "flip" | "truncate"; at: number; mask: number }): Uint8Array {
  if (m.kind === "truncate") return blob.slice(0, m.at);
  const out = Uint8Array.from(blob);
  out[m.at]! ^= m.mask;
  return out;
}

describe("tampered blobs (property)", () => {
  test("any flipped byte or truncation of a wrapped blob is an IntegrityError and imports nothing", async () => {
    const key = await bystander.generateKey({ kty: "RSA", size: 2048, ops: ["sign"], label: text("L") });
    const dekHere = await transferDek(bystander);
    const blob = await bystander.exportWrapped(key, dekHere);
    await bystander.deleteKey(key);
    const before = await stateOf(bystander, source.dir);
    await fc.assert(
      fc.asyncProperty(mutations(blob.length), async (m) => {
        const error = await bystander.importWrapped(mutate(blob, m), dekHere).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isHsmPoolError(error, "IntegrityError"), String(error)).toBe(true);
      }),
      { numRuns: 300 },
    );
    expect(await stateOf(bystander, source.dir)).toEqual(before);
  });

  test("any flipped byte or truncation of a transfer blob is an IntegrityError and imports nothing", async () => {
    const targetPublic = await target.session.getTransferPublicKey();
    const blob = await source.session.exportForTransfer(
      signer,
      targetPublic.spki,
      target.session.partitionId,
    );
    const sourcePublic = (await source.session.getTransferPublicKey()).spki;
    const before = await stateOf(target.session, target.dir);
    await fc.assert(
      fc.asyncProperty(mutations(blob.length), async (m) => {
        const error = await target.session
          .importFromTransfer(mutate(blob, m), sourcePublic, source.session.partitionId)
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(isHsmPoolError(error, "IntegrityError"), String(error)).toBe(true);
      }),
      { numRuns: 300 },
    );
    expect(await stateOf(target.session, target.dir)).toEqual(before);
  });
});
