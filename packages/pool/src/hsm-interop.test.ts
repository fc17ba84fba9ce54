/**
 * Cross-checks against the real simulated HSM (@hsmpool/hsm): the pool's algorithm
 * tables are the HSM's, the HSM's ES384 signatures verify under the pool's pure
 * certificate verifier (noble), and an ECDH transfer keeps the key id the DEK
 * fingerprint is built on.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as hsm from "@hsmpool/hsm";
import { afterAll, describe, expect, it } from "vitest";
import {
  CURVES,
  certificateSigningBytes,
  ENCRYPT_ALGORITHMS,
  KEY_OPS,
  keyFingerprint,
  type PoolCertificate,
  publicKeyFingerprint,
  SIGN_ALGORITHMS,
  signatureValid,
  validateP384Jwk,
  verifyOwnerRootCertificate,
  verifyPartitionCertificate,
  WRAP_ALGORITHMS,
} from "./index.js";

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function twoPartitions(): Promise<[hsm.Session, hsm.Session]> {
  const dir = await mkdtemp(join(tmpdir(), "hsmpool-pool-test-"));
  dirs.push(dir);
  const device = await hsm.HsmDevice.create(join(dir, "hsm"), { partitionCount: 2 });
  const sessions: hsm.Session[] = [];
  for (const i of [0, 1])
    sessions.push(await device.partition(i).login(await device.partition(i).initialize()));
  return sessions as [hsm.Session, hsm.Session];
}

describe("algorithm tables match the HSM's", () => {
  it("same curves, operations and algorithms, with the same key requirements", () => {
    expect([...CURVES]).toEqual([...hsm.CURVES]);
    expect([...KEY_OPS]).toEqual([...hsm.KEY_OPS]);
    expect(SIGN_ALGORITHMS).toEqual(
      Object.fromEntries(
        Object.entries(hsm.SIGN_ALGORITHMS).map(([alg, s]) => [
          alg,
          s.kty === "EC" ? { kty: "EC", crv: s.crv } : s.kty === "oct" ? { kty: "oct" } : { kty: "RSA" },
        ]),
      ),
    );
    const bySize = (s: { kty: string; sizeBits?: number }) =>
      s.kty === "oct" ? { kty: "oct", size: s.sizeBits } : { kty: "RSA" };
    expect(ENCRYPT_ALGORITHMS).toEqual(
      Object.fromEntries(Object.entries(hsm.ENCRYPT_ALGORITHMS).map(([alg, s]) => [alg, bySize(s)])),
    );
    expect(WRAP_ALGORITHMS).toEqual(
      Object.fromEntries(Object.entries(hsm.WRAP_ALGORITHMS).map(([alg, s]) => [alg, bySize(s)])),
    );
  });
});

describe("certificates signed inside the HSM", () => {
  it("an owner root certificate and a partition certificate signed by the HSM (ES384) verify in the pure core", async () => {
    const [primary, secondary] = await twoPartitions();
    const root = await primary.generateKey({ kty: "EC", crv: "P-384", ops: ["sign", "verify"] });
    const rootKey = validateP384Jwk(await primary.getPublicJwk(root), "owner root");
    const sign = async (unsigned: Omit<PoolCertificate, "signature">): Promise<PoolCertificate> => ({
      ...unsigned,
      signature: await primary.sign(root, "ES384", certificateSigningBytes(unsigned)),
    });
    const rootCert = await sign({
      role: "ownerRoot",
      poolId: "pool-1",
      subject: "n1",
      partitionId: primary.partitionId,
      publicKey: rootKey,
      issuerFingerprint: publicKeyFingerprint(rootKey),
    });
    expect(() => verifyOwnerRootCertificate(rootCert, "pool-1")).not.toThrow();
    const transfer = validateP384Jwk((await secondary.getTransferPublicKey()).jwk, "transfer key");
    const partitionCert = await sign({
      role: "partition",
      poolId: "pool-1",
      subject: "n2",
      partitionId: secondary.partitionId,
      publicKey: transfer,
      issuerFingerprint: publicKeyFingerprint(rootKey),
    });
    expect(() => verifyPartitionCertificate(partitionCert, rootCert)).not.toThrow();
    // Any change to the signed fields breaks the signature.
    expect(signatureValid({ ...partitionCert, subject: "n3" }, rootKey)).toBe(false);
    const flipped = Uint8Array.from(partitionCert.signature);
    flipped[10] = (flipped[10] ?? 0) ^ 1;
    expect(signatureValid({ ...partitionCert, signature: flipped }, rootKey)).toBe(false);
  });

  it("the DEK keeps its key id (and so its fingerprint) through an ECDH transfer between partitions", async () => {
    const [primary, secondary] = await twoPartitions();
    const dek = await primary.generateKey({ kty: "oct", size: 256, ops: ["wrapKey", "unwrapKey"] });
    const target = await secondary.getTransferPublicKey();
    const blob = await primary.exportForTransfer(dek, target.jwk, secondary.partitionId);
    const source = await primary.getTransferPublicKey();
    const imported = await secondary.importFromTransfer(blob, source.jwk, primary.partitionId);
    expect(keyFingerprint(imported.id)).toBe(keyFingerprint(dek.id));
    // The blob is opaque: the DEK handle's id is public, its material is not in the blob in the clear.
    expect(imported.kty).toBe("oct");
  });
});
