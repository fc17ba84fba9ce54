import { createPublicKey, verify as cryptoVerify } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { HsmDevice } from "@hsmpool/hsm";
import type { OwnershipInput } from "@hsmpool/pool";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CREDENTIAL_FILE, PartitionAccess } from "../hsm/partition-access.js";
import { launchTestEnclave, makeFabric, removeTempDirs, tempDir } from "../testing/fixtures.js";
import { runHsmEffect } from "./hsm-effects.js";

type Of<K extends OwnershipInput["kind"]> = Extract<OwnershipInput, { kind: K }>;

let devices: HsmDevice[] = [];
let a: PartitionAccess;
let b: PartitionAccess;
let stateA: string;
let stateB: string;
const enclaves: Awaited<ReturnType<typeof launchTestEnclave>>[] = [];

beforeAll(async () => {
  const root = await tempDir();
  const fabric = await makeFabric(root, 2);
  for (const i of [0, 1]) enclaves.push(await launchTestEnclave(join(root, `b${i}`), fabric, i));
  devices = await Promise.all(fabric.servers().map((s) => HsmDevice.open(s.hsmDir)));
  stateA = await tempDir();
  stateB = await tempDir();
  a = new PartitionAccess(devices[0]!.partition(0), enclaves[0]!, stateA);
  b = new PartitionAccess(devices[1]!.partition(0), enclaves[1]!, stateB);
});

afterAll(async () => {
  await Promise.all(devices.map((d) => d.close()));
  await removeTempDirs();
});

async function run<K extends OwnershipInput["kind"]>(
  access: PartitionAccess,
  effect: Parameters<typeof runHsmEffect>[1],
  kind: K,
): Promise<Of<K>> {
  const result = await runHsmEffect(access, effect);
  expect(result?.kind, JSON.stringify(result)).toBe(kind);
  return result as Of<K>;
}

describe("ownership HSM effects on real partitions", () => {
  let ready: { a: Of<"partitionReady">; b: Of<"partitionReady"> };
  let keys: Of<"ownershipKeysCreated">;

  it("zeroize+init gives each partition a fresh credential, sealed to disk and usable after a restart", async () => {
    ready = {
      a: await run(a, { kind: "hsm.zeroizeAndInit", correlationId: "a1" }, "partitionReady"),
      b: await run(b, { kind: "hsm.zeroizeAndInit", correlationId: "b1" }, "partitionReady"),
    };
    expect(ready.a.partitionId).toBe(`${devices[0]!.id}/p0`);
    expect(ready.a.transferPublicKey.crv).toBe("P-384");
    const sealed = await readFile(join(stateA, CREDENTIAL_FILE));
    const again = new PartitionAccess(devices[0]!.partition(0), enclaves[0]!, stateA);
    expect(await again.loginWithStoredCredential()).toBe(true);
    expect(again.session.partitionId).toBe(ready.a.partitionId);
    // Another CPU cannot unseal it.
    const foreign = new PartitionAccess(devices[0]!.partition(0), enclaves[1]!, stateA);
    await expect(foreign.loginWithStoredCredential()).rejects.toMatchObject({ code: "IntegrityError" });
    expect(sealed.length).toBeGreaterThan(32);
  });

  it("creates the ownership keys and signs with the owner root (ES384, verifiable with its public JWK)", async () => {
    keys = await run(a, { kind: "hsm.createOwnershipKeys", correlationId: "a2" }, "ownershipKeysCreated");
    const data = new TextEncoder().encode("certificate to be signed");
    const signed = await run(
      a,
      { kind: "hsm.signWithOwnerRoot", correlationId: "a3", keyId: keys.ownerRoot.keyId, data },
      "signed",
    );
    const publicKey = createPublicKey({ key: keys.ownerRoot.publicKey, format: "jwk" });
    expect(
      cryptoVerify("sha384", data, { key: publicKey, dsaEncoding: "ieee-p1363" }, signed.signature),
    ).toBe(true);
  });

  it("moves DEK and pool key to another partition only as ECDH-wrapped blobs that keep their key ids", async () => {
    const exported = await run(
      a,
      {
        kind: "hsm.exportForTransfer",
        correlationId: "a4",
        keyIds: [keys.dekKeyId, keys.poolKeyKeyId],
        targetPartitionId: ready.b.partitionId,
        targetTransferPublicKey: ready.b.transferPublicKey,
      },
      "transferExported",
    );
    const imported = await run(
      b,
      {
        kind: "hsm.importFromTransfer",
        correlationId: "b2",
        items: [
          { role: "dek", blob: exported.blobs[0]! },
          { role: "poolKey", blob: exported.blobs[1]! },
        ],
        sourcePartitionId: ready.a.partitionId,
        sourceTransferPublicKey: ready.a.transferPublicKey,
      },
      "transferImported",
    );
    expect(imported.keys.map((k) => [k.role, k.keyId])).toEqual([
      ["dek", keys.dekKeyId],
      ["poolKey", keys.poolKeyKeyId],
    ]);
    const sealed = await a.session.encrypt(keys.poolKeyKeyId, "A256GCM", new Uint8Array([1, 2, 3]));
    const opened = await b.session.decrypt(keys.poolKeyKeyId, "A256GCM", sealed.ciphertext, {
      iv: sealed.iv!,
      tag: sealed.tag!,
    });
    expect([...opened]).toEqual([1, 2, 3]);
    // A blob made for B does not import into A's partition.
    const wrong = await runHsmEffect(a, {
      kind: "hsm.importFromTransfer",
      correlationId: "a5",
      items: [{ role: "dek", blob: exported.blobs[0]! }],
      sourcePartitionId: ready.a.partitionId,
      sourceTransferPublicKey: ready.a.transferPublicKey,
    });
    expect(wrong?.kind).toBe("hsmFailed");
  });

  it("checks which keys a restarted partition still holds, and reports a zeroized one as gone", async () => {
    const missing = "0".repeat(32);
    const checked = await run(
      b,
      {
        kind: "hsm.checkKeys",
        correlationId: "b3",
        partitionId: ready.b.partitionId,
        keyIds: [keys.dekKeyId, missing],
      },
      "keysChecked",
    );
    expect(checked.partition).toEqual({
      partitionId: ready.b.partitionId,
      transferPublicKey: ready.b.transferPublicKey,
    });
    expect(checked.missingKeyIds).toEqual([missing]);

    await devices[1]!.partition(0).zeroize();
    const restarted = new PartitionAccess(devices[1]!.partition(0), enclaves[1]!, stateB);
    const gone = await run(
      restarted,
      {
        kind: "hsm.checkKeys",
        correlationId: "b4",
        partitionId: ready.b.partitionId,
        keyIds: [keys.dekKeyId],
      },
      "keysChecked",
    );
    expect(gone.partition).toBeNull();
  });

  it("reports a failed HSM call as hsmFailed with its error code", async () => {
    const failed = await run(
      a,
      {
        kind: "hsm.signWithOwnerRoot",
        correlationId: "a6",
        keyId: "f".repeat(32),
        data: new Uint8Array([1]),
      },
      "hsmFailed",
    );
    expect(failed.error.code).toBe("KeyNotFound");
    expect(
      await runHsmEffect(a, { kind: "hsm.deleteKeys", keyIds: ["e".repeat(32), keys.dekKeyId] }),
    ).toBeNull();
    await expect(a.session.getHandle(keys.dekKeyId)).rejects.toMatchObject({ code: "KeyNotFound" });
  });
});
