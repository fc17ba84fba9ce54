import { Prng } from "@hsmpool/faults";
import {
  certificateSigningBytes,
  keyFingerprint,
  type OwnershipInput,
  type P384PublicJwk,
  publicKeyFingerprint,
  signatureValid,
  type UnsignedCertificate,
} from "@hsmpool/pool";
import { describe, expect, it } from "vitest";
import { SimHsmFabric, SimPartition } from "./sim-hsm.js";

function world(seed = 1) {
  const fabric = new SimHsmFabric();
  const prng = Prng.fromSeed(seed);
  const part = (id: string) => new SimPartition(id, fabric, prng.split(id));
  return { fabric, a: part("n1"), b: part("n2"), c: part("n3") };
}

function expectKind<K extends OwnershipInput["kind"]>(
  input: OwnershipInput | null,
  kind: K,
): Extract<OwnershipInput, { kind: K }> {
  if (input?.kind !== kind) throw new Error(`expected ${kind}, got ${JSON.stringify(input)}`);
  return input as Extract<OwnershipInput, { kind: K }>;
}

function init(p: SimPartition): P384PublicJwk {
  return expectKind(p.run({ kind: "hsm.zeroizeAndInit", correlationId: "z" }), "partitionReady")
    .transferPublicKey;
}

function createKeys(p: SimPartition) {
  return expectKind(p.run({ kind: "hsm.createOwnershipKeys", correlationId: "k" }), "ownershipKeysCreated");
}

describe("simulated HSM partition", () => {
  it("is deterministic: the same seed makes the same keys, public keys and signatures", () => {
    const run = () => {
      const { a } = world(7);
      init(a);
      const keys = createKeys(a);
      const sig = expectKind(
        a.run({
          kind: "hsm.signWithOwnerRoot",
          correlationId: "s",
          keyId: keys.ownerRoot.keyId,
          data: new Uint8Array([1, 2]),
        }),
        "signed",
      );
      return { keys, sig: [...sig.signature] };
    };
    expect(run()).toEqual(run());
    const { a } = world(8);
    init(a);
    expect(createKeys(a).ownerRoot.publicKey).not.toEqual(run().keys.ownerRoot.publicKey);
  });

  it("signs owner-root certificates with a real P-384 key the pool protocol verifies", () => {
    const { a } = world();
    const transfer = init(a);
    const keys = createKeys(a);
    const unsigned: UnsignedCertificate = {
      role: "ownerRoot",
      poolId: "p",
      subject: "n1",
      partitionId: a.partitionId,
      publicKey: keys.ownerRoot.publicKey,
      issuerFingerprint: publicKeyFingerprint(keys.ownerRoot.publicKey),
    };
    const signed = expectKind(
      a.run({
        kind: "hsm.signWithOwnerRoot",
        correlationId: "s",
        keyId: keys.ownerRoot.keyId,
        data: certificateSigningBytes(unsigned),
      }),
      "signed",
    );
    expect(signatureValid({ ...unsigned, signature: signed.signature }, keys.ownerRoot.publicKey)).toBe(true);
    expect(signatureValid({ ...unsigned, signature: signed.signature }, transfer)).toBe(false);
  });

  it("transfers keys only to the partition and transfer key they were exported for", () => {
    const { a, b, c } = world();
    const aKey = init(a);
    const bKey = init(b);
    init(c);
    const keys = createKeys(a);
    const exported = expectKind(
      a.run({
        kind: "hsm.exportForTransfer",
        correlationId: "e",
        keyIds: [keys.dekKeyId],
        targetPartitionId: b.partitionId,
        targetTransferPublicKey: bKey,
      }),
      "transferExported",
    );
    const item = { role: "dek" as const, blob: exported.blobs[0]! };
    const importOn = (p: SimPartition) =>
      p.run({
        kind: "hsm.importFromTransfer",
        correlationId: "i",
        items: [item],
        sourcePartitionId: a.partitionId,
        sourceTransferPublicKey: aKey,
      });
    expect(expectKind(importOn(c), "hsmFailed").error.code).toBe("IntegrityError");
    const imported = expectKind(importOn(b), "transferImported");
    expect(imported.keys).toEqual([{ role: "dek", keyId: keys.dekKeyId }]);
    expect(b.materialFingerprintOf(keys.dekKeyId)).toBe(a.materialFingerprintOf(keys.dekKeyId));
    // Re-initialized since (new transfer key): the old blob no longer opens.
    init(b);
    expect(expectKind(importOn(b), "hsmFailed").error.code).toBe("IntegrityError");
    // Altered in transit.
    const bent = Uint8Array.from(item.blob);
    bent[bent.length - 1] = (bent[bent.length - 1] as number) ^ 1;
    const forged = b.run({
      kind: "hsm.importFromTransfer",
      correlationId: "f",
      items: [{ role: "dek", blob: bent }],
      sourcePartitionId: a.partitionId,
      sourceTransferPublicKey: aKey,
    });
    expect(expectKind(forged, "hsmFailed").error.code).toBe("IntegrityError");
  });

  it("unwraps application keys only under the very DEK material they were wrapped with", () => {
    const { a, b } = world();
    init(a);
    init(b);
    const aKeys = createKeys(a);
    const bKeys = createKeys(b);
    const app = a.generateWrappedAppKey(aKeys.dekKeyId);
    expect(app.publicJwk.kty).toBe("EC");
    const data = new Uint8Array([9, 9, 9]);
    const sig = a.signWithAppKey(app.wrappedMaterial, aKeys.dekKeyId, data);
    expect(sig.length).toBe(32);
    expect(() => b.signWithAppKey(app.wrappedMaterial, bKeys.dekKeyId, data)).toThrow(/does not unwrap/);
    expect(keyFingerprint(aKeys.dekKeyId)).not.toBe(keyFingerprint(bKeys.dekKeyId));
  });

  it("reports, after a restart check, which keys are gone and when the credential opens nothing", () => {
    const { a } = world();
    const transfer = init(a);
    const keys = createKeys(a);
    const ids = [keys.ownerRoot.keyId, keys.dekKeyId, keys.poolKeyKeyId];
    const check = () =>
      expectKind(
        a.run({ kind: "hsm.checkKeys", correlationId: "c", partitionId: a.partitionId, keyIds: ids }),
        "keysChecked",
      );
    expect(check()).toEqual({
      kind: "keysChecked",
      correlationId: "c",
      partition: { partitionId: a.partitionId, transferPublicKey: transfer },
      missingKeyIds: [],
    });
    expect(a.run({ kind: "hsm.deleteKeys", keyIds: [keys.dekKeyId] })).toBeNull();
    expect(check().missingKeyIds).toEqual([keys.dekKeyId]);
    a.wipe();
    expect(check().partition).toBeNull();
  });

  it("never puts key material into blobs or answers", () => {
    const { a, b } = world(3);
    init(a);
    const bKey = init(b);
    const keys = createKeys(a);
    const answers: Uint8Array[] = [];
    const exported = expectKind(
      a.run({
        kind: "hsm.exportForTransfer",
        correlationId: "e",
        keyIds: [keys.ownerRoot.keyId, keys.dekKeyId, keys.poolKeyKeyId],
        targetPartitionId: b.partitionId,
        targetTransferPublicKey: bKey,
      }),
      "transferExported",
    );
    answers.push(...exported.blobs, a.generateWrappedAppKey(keys.dekKeyId).wrappedMaterial);
    const secrets = (a as unknown as { keys: Map<string, { material: Uint8Array }> }).keys;
    for (const { material } of secrets.values()) {
      const probe = material.subarray(0, 8);
      for (const bytes of answers) {
        const hit = bytes.some((_, i) => probe.every((v, j) => bytes[i + j] === v));
        expect(hit).toBe(false);
      }
    }
  });
});
