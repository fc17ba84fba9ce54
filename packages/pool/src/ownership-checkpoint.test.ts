import { ByteWriter } from "@hsmpool/codec";
import { isHsmPoolError } from "@hsmpool/errors";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { writeCertificate } from "./certificate.js";
import { writeGenesisFields } from "./commands.js";
import { frame } from "./frame.js";
import {
  assertOneDekAmongSynced,
  assertOneOwnerRootPerPool,
  CHECKPOINT_FORMAT,
  certificateFingerprint,
  decodeOwnershipCheckpoint,
  dekFingerprintsOfSynced,
  encodeCommand,
  encodeOwnershipCheckpoint,
  type OwnershipCheckpoint,
  type OwnershipEffect,
  type OwnershipState,
  ownershipCheckpoint,
  requireOwnership,
  resumeOwnership,
  type SyncedOwnershipCheckpoint,
  stepOwnership,
  validateOwnershipCheckpoint,
} from "./index.js";
import * as arb from "./testing/arbitraries.js";
import { Cluster, POOL_ID } from "./testing/cluster.js";
import { genesisCommand, issue, newSigner, thrown } from "./testing/fixtures.js";

const IDS = ["n1", "n2", "n3"];

function bootstrap(): Cluster {
  const c = new Cluster(IDS);
  c.drain();
  c.connectAll();
  c.elect("n1");
  c.runUntil(() => c.allSynced());
  return c;
}

function checkpointOf(c: Cluster, id: string): SyncedOwnershipCheckpoint {
  const checkpoint = ownershipCheckpoint(c.node(id).state);
  if (checkpoint?.phase !== "synced") throw new Error(`${id} has no synced checkpoint`);
  return checkpoint;
}

function states(c: Cluster): OwnershipState[] {
  return [...c.nodes.values()].map((n) => n.state);
}

function kinds(effects: OwnershipEffect[]): string[] {
  return effects.map((e) => e.kind);
}

const TRANSFER_EFFECTS = ["hsm.zeroizeAndInit", "hsm.exportForTransfer", "hsm.importFromTransfer"];

/** An application key wrapped under the pool DEK and committed, as a client's createKey would be. */
function createWrappedKey(c: Cluster, name: string): void {
  const n1 = c.node("n1");
  c.append(
    encodeCommand({
      kind: "createKey",
      requestId: `req-${name}`,
      name,
      shape: { kty: "oct", size: 256 },
      ops: ["encrypt", "decrypt"],
      attributes: { enabled: true, notBeforeMs: null, expiresMs: null, tags: {} },
      wrappedMaterial: n1.hsm.createWrappedAppKey(n1.state.material.dek!.keyId),
      publicJwk: null,
      at: 1_700_000_000_300,
    }),
  );
  c.drain();
}

/** HPO1 as README/ownership-checkpoint.ts document it (v1 synced, v2 provisional), without validation. */
function handEncoded(c: OwnershipCheckpoint, version: number = c.phase === "synced" ? 1 : 2): Uint8Array {
  const w = new ByteWriter()
    .u8(c.phase === "synced" ? 1 : 2)
    .string(c.poolId)
    .string(c.nodeId);
  if (c.phase === "synced") writeGenesisFields(w, c.genesis);
  else writeCertificate(w, c.ownerRootCert);
  w.string(c.ownerRootKeyId)
    .string(c.dekKeyId)
    .string(c.poolKeyKeyId)
    .string(c.dekFingerprint)
    .string(c.poolKeyFingerprint);
  writeCertificate(w, c.partitionCert);
  return frame({ ...CHECKPOINT_FORMAT, version }, w.finish());
}

function expectIntegrityError(decode: () => unknown): void {
  try {
    const result = decode();
    throw new Error(`corrupt checkpoint decoded to ${JSON.stringify(result)?.slice(0, 120)}`);
  } catch (e) {
    if (!isHsmPoolError(e)) throw e;
    expect(e.code, e.message).toBe("IntegrityError");
  }
}

describe("ownership checkpoint codec (HPO1)", () => {
  it("round-trips any consistent checkpoint, and re-encodes to the same bytes", () => {
    fc.assert(
      fc.property(arb.checkpoint, (checkpoint) => {
        const bytes = encodeOwnershipCheckpoint(checkpoint);
        const decoded = decodeOwnershipCheckpoint(bytes);
        expect(decoded).toEqual(validateOwnershipCheckpoint(checkpoint));
        expect(encodeOwnershipCheckpoint(decoded)).toEqual(bytes);
      }),
      { numRuns: 200 },
    );
  });

  it("turns any flipped byte, truncation or appended byte into an IntegrityError", () => {
    fc.assert(
      fc.property(
        arb.checkpoint,
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.integer({ min: 0, max: 255 }),
        (checkpoint, at, mask, extra) => {
          const bytes = encodeOwnershipCheckpoint(checkpoint);
          const flipped = Uint8Array.from(bytes);
          const i = at % flipped.length;
          flipped[i] = (flipped[i] ?? 0) ^ mask;
          expectIntegrityError(() => decodeOwnershipCheckpoint(flipped));
          expectIntegrityError(() => decodeOwnershipCheckpoint(bytes.subarray(0, at % bytes.length)));
          expectIntegrityError(() => decodeOwnershipCheckpoint(Uint8Array.of(...bytes, extra)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("refuses well-framed bytes whose fields disagree (IntegrityError) and encodes no inconsistent checkpoint", () => {
    const [checkpoint] = fc.sample(arb.syncedCheckpoint, { numRuns: 1, seed: 7 });
    const wrongDek = { ...checkpoint!, dekKeyId: `${checkpoint!.dekKeyId}x` };
    expect(thrown(() => encodeOwnershipCheckpoint(wrongDek), "BadParameter").details).toMatchObject({
      field: "dekFingerprint",
    });
    // The documented layout, written by hand, is what the encoder writes ...
    const good = encodeOwnershipCheckpoint(checkpoint!);
    expect(handEncoded(checkpoint!)).toEqual(good);
    // ... and the same inconsistency behind a valid checksum is refused as corrupt.
    expect(thrown(() => decodeOwnershipCheckpoint(handEncoded(wrongDek)), "IntegrityError").message).toMatch(
      /ownership checkpoint holds an invalid value: .*DEK is not the pool's/,
    );
    const payload = good.subarray(5, good.length - 8);
    const badPhase = frame(CHECKPOINT_FORMAT, Uint8Array.of(9, ...payload.subarray(1)));
    expect(thrown(() => decodeOwnershipCheckpoint(badPhase), "IntegrityError").message).toMatch(
      /unknown phase/,
    );
    const otherFormat = frame({ ...CHECKPOINT_FORMAT, version: 3 }, new ByteWriter().u8(1).finish());
    expect(thrown(() => decodeOwnershipCheckpoint(otherFormat), "IntegrityError").message).toMatch(
      /format version 3; this build reads version 1 or 2 only/,
    );
    thrown(() => decodeOwnershipCheckpoint("HPO1" as unknown as Uint8Array), "BadParameter");
  });

  it("writes a synced checkpoint as version 1 (older builds read it) and a provisional one as version 2", () => {
    fc.assert(
      fc.property(arb.checkpoint, (checkpoint) => {
        const bytes = encodeOwnershipCheckpoint(checkpoint);
        expect(bytes[4]).toBe(checkpoint.phase === "synced" ? 1 : 2);
        expect(bytes).toEqual(handEncoded(checkpoint));
      }),
      { numRuns: 100 },
    );
  });

  it("refuses a checkpoint kind framed in the other version, and an inconsistent provisional checkpoint", () => {
    const [synced] = fc.sample(arb.syncedCheckpoint, { numRuns: 1, seed: 3 });
    const [provisional] = fc.sample(arb.provisionalCheckpoint, { numRuns: 1, seed: 3 });
    expect(
      thrown(() => decodeOwnershipCheckpoint(handEncoded(synced!, 2)), "IntegrityError").message,
    ).toMatch(/a checkpoint of phase synced in format version 2/);
    expect(
      thrown(() => decodeOwnershipCheckpoint(handEncoded(provisional!, 1)), "IntegrityError").message,
    ).toMatch(/a checkpoint of phase ownershipProposed in format version 1/);
    const foreignRoot = {
      ...provisional!,
      ownerRootCert: { ...provisional!.ownerRootCert, subject: `${provisional!.nodeId}x` },
    };
    expect(thrown(() => encodeOwnershipCheckpoint(foreignRoot), "BadParameter").details).toMatchObject({
      field: "ownerRootCert",
    });
    expect(
      thrown(() => decodeOwnershipCheckpoint(handEncoded(foreignRoot)), "IntegrityError").message,
    ).toMatch(/ownerRootCert must be the owner root certificate/);
    const wrongPoolKey = { ...provisional!, poolKeyKeyId: `${provisional!.poolKeyKeyId}x` };
    expect(thrown(() => encodeOwnershipCheckpoint(wrongPoolKey), "BadParameter").details).toMatchObject({
      field: "poolKeyFingerprint",
    });
  });

  it("holds no secret: a real member's checkpoint bytes contain none of the HSM material", () => {
    const c = bootstrap();
    expect(c.secrets.length).toBeGreaterThan(0);
    for (const id of IDS) {
      const bytes = encodeOwnershipCheckpoint(checkpointOf(c, id));
      for (const secret of c.secrets) expect(Cluster.contains(bytes, secret)).toBe(false);
    }
  });
});

describe("ownershipCheckpoint", () => {
  it("is null until the member is synced, then names its keys, partition certificate and the pool's DEK", () => {
    const c = new Cluster(IDS);
    c.drain();
    expect(ownershipCheckpoint(c.node("n2").state)).toBeNull();
    c.connectAll();
    c.elect("n1");
    c.runUntil(() => c.allSynced());
    const n2 = c.node("n2").state;
    const checkpoint = checkpointOf(c, "n2");
    expect(checkpoint).toMatchObject({
      phase: "synced",
      poolId: POOL_ID,
      nodeId: "n2",
      ownerRootKeyId: n2.material.ownerRoot!.keyId,
      dekKeyId: n2.material.dek!.keyId,
      poolKeyKeyId: n2.material.poolKey!.keyId,
      dekFingerprint: c.node("n1").store.genesis!.dekFingerprint,
    });
    expect(certificateFingerprint(checkpoint.partitionCert)).toBe(
      certificateFingerprint(n2.material.partitionCert!),
    );
    expect(checkpoint.genesis).toEqual(c.node("n1").store.genesis);
  });
});

describe("restart in place from checkpoints", () => {
  it("all three members killed at once resume synced with the same DEK, without zeroize or any transfer", () => {
    const c = bootstrap();
    createWrappedKey(c, "old-key");
    const dekBefore = dekFingerprintsOfSynced(states(c));
    const saved = new Map(IDS.map((id) => [id, encodeOwnershipCheckpoint(checkpointOf(c, id))]));
    const keysBefore = new Map(IDS.map((id) => [id, [...c.node(id).hsm.keys.keys()].sort()]));
    const mark = c.transcript.length;

    for (const id of IDS) c.restart(id, decodeOwnershipCheckpoint(saved.get(id)!));
    // Until its partition answers the key check, a resumed member holds no ownership.
    for (const id of IDS) {
      const s = c.node(id).state;
      expect(s.phase).toBe("synced");
      expect(thrown(() => requireOwnership(s), "OwnershipPending").message).toMatch(/checking its partition/);
      expect(ownershipCheckpoint(s)).toBeNull();
      expect(kinds(c.node(id).effects)).toEqual(["hsm.checkKeys"]);
    }
    c.elect("n2");
    c.connectAll();
    c.runUntil(() => c.allSynced());

    expect(dekFingerprintsOfSynced(states(c))).toEqual(dekBefore);
    assertOneOwnerRootPerPool(states(c));
    assertOneDekAmongSynced(states(c));
    for (const id of IDS) {
      const n = c.node(id);
      expect(n.phases).toEqual(["synced"]);
      expect(kinds(n.effects)).toEqual(["hsm.checkKeys", "ownershipSynced"]);
      expect(n.effects.filter((e) => TRANSFER_EFFECTS.includes(e.kind))).toEqual([]);
      expect([...n.hsm.keys.keys()].sort()).toEqual(keysBefore.get(id));
      expect(() => requireOwnership(n.state)).not.toThrow();
      expect(ownershipCheckpoint(n.state)).toEqual(decodeOwnershipCheckpoint(saved.get(id)!));
      // The key written before the restart still unwraps under the DEK the partition kept.
      const blob = n.store.wrappedMaterialOf("old-key", 1);
      expect(() => n.hsm.importWrappedAppKey(blob, n.state.material.dek!.keyId)).not.toThrow();
    }
    const after = c.transcript.slice(mark);
    expect(after.filter((l) => / -> /.test(l))).toEqual([]); // no peer message at all
    expect(after.filter((l) => l.includes("proposes"))).toEqual([]); // the log already records them synced
  });

  it("contrast: restarted blank, all three zeroize and the pool's DEK is gone for good", () => {
    const c = bootstrap();
    const dek = c.node("n1").state.material.dek!.keyId;
    for (const id of IDS) c.restart(id, null);
    c.elect("n2");
    c.connectAll();
    expect(() => c.runUntil(() => c.allSynced(), 15)).toThrow(/condition not reached/);
    for (const id of IDS) {
      expect(c.node(id).hsm.keys.has(dek)).toBe(false);
      expect(c.node(id).state.phase).toBe("requestingOwnerRoot");
    }
  });

  it.each([
    ["partition was zeroized (the credential opens nothing)", (c: Cluster) => c.node("n3").hsm.wipe()],
    ["DEK was deleted", (c: Cluster) => c.node("n3").hsm.keys.delete(c.node("n3").state.material.dek!.keyId)],
    ["partition was re-initialized (new transfer key)", (c: Cluster) => c.node("n3").hsm.reinitialize()],
  ])("a member whose %s zeroizes and re-syncs from a synced peer instead of serving", (_what, lose) => {
    const c = bootstrap();
    createWrappedKey(c, "old-key");
    const checkpoint = checkpointOf(c, "n3");
    lose(c);
    const n3 = c.restart("n3", checkpoint);
    c.feed("n3", { kind: "peersConnected" });
    c.feed("n3", { kind: "leaderChanged", leader: "n1", term: c.term });
    c.runUntil(() => c.node("n3").state.phase === "synced" && c.node("n3").state.pending === null);

    expect(n3.phases).toEqual([
      "synced",
      "initializingPartition",
      "requestingOwnerRoot", // Genesis is known: straight from partitionReady to asking a peer
      "issuingPartitionCert",
      "receivingDek",
      "synced",
    ]);
    const effectKinds = kinds(n3.effects);
    expect(effectKinds.slice(0, 2)).toEqual(["hsm.checkKeys", "hsm.zeroizeAndInit"]);
    // It announced ownership only after receiving the DEK again, from a synced peer.
    expect(effectKinds.indexOf("ownershipSynced")).toBeGreaterThan(
      effectKinds.lastIndexOf("hsm.importFromTransfer"),
    );
    expect(c.transcript.some((l) => /^n[12] -> n3: dekResponse$/.test(l))).toBe(true);
    expect(dekFingerprintsOfSynced(states(c))).toEqual([checkpoint.dekFingerprint]);
    // A new partition certificate, and the log records it for n3.
    const cert = n3.state.material.partitionCert!;
    expect(certificateFingerprint(cert)).not.toBe(certificateFingerprint(checkpoint.partitionCert));
    expect(cert.publicKey).toEqual(n3.hsm.transfer.publicKey);
    const record = c
      .node("n1")
      .store.syncedMembers()
      .find((m) => m.memberId === "n3");
    expect(record?.partitionCertFingerprint).toBe(certificateFingerprint(cert));
    const blob = n3.store.wrappedMaterialOf("old-key", 1);
    expect(() => n3.hsm.importWrappedAppKey(blob, n3.state.material.dek!.keyId)).not.toThrow();
  });

  it("retries a key check that failed in the HSM, never taking a fault for lost keys", () => {
    const c = bootstrap();
    const checkpoint = checkpointOf(c, "n2");
    const n2 = c.node("n2");
    n2.hsm.failNext = "hsm.checkKeys";
    c.restart("n2", checkpoint);
    c.drain();
    expect(n2.state.lastError?.code).toBe("DeviceFault");
    expect(thrown(() => requireOwnership(n2.state), "OwnershipPending").code).toBe("OwnershipPending");
    c.runUntil(() => n2.state.pending === null);
    expect(kinds(n2.effects)).toEqual(["hsm.checkKeys", "hsm.checkKeys", "ownershipSynced"]);
    expect(n2.phases).toEqual(["synced"]);
  });

  it("refuses to serve peers while the key check is pending", () => {
    const c = bootstrap();
    c.restart("n1", checkpointOf(c, "n1"));
    const { effects } = stepOwnership(c.node("n1").state, {
      kind: "message",
      from: "n2",
      message: {
        kind: "ownershipRequest",
        poolId: POOL_ID,
        nonce: "n2:r:9",
        partitionId: "dev-n2/p0",
        transferPublicKey: newSigner().publicKey,
      },
    });
    expect(kinds(effects)).toEqual(["send"]);
    expect((effects[0] as Extract<OwnershipEffect, { kind: "send" }>).message).toMatchObject({
      kind: "refused",
      code: "OwnershipPending",
    });
  });

  it("takes a definite 'keys missing' answer at once: zeroize, no ownership, and the reason in lastError", () => {
    const c = bootstrap();
    const n3 = c.restart("n3", checkpointOf(c, "n3"));
    const check = n3.effects[0] as Extract<OwnershipEffect, { kind: "hsm.checkKeys" }>;
    const { state, effects } = stepOwnership(n3.state, {
      kind: "keysChecked",
      correlationId: check.correlationId,
      partition: { partitionId: check.partitionId, transferPublicKey: n3.hsm.transfer.publicKey },
      missingKeyIds: [check.keyIds[1]!],
    });
    expect(kinds(effects)).toEqual(["hsm.zeroizeAndInit"]);
    expect(state.phase).toBe("initializingPartition");
    expect(state.material.dek).toBeNull();
    expect(state.genesis).toEqual(n3.state.genesis);
    expect(state.lastError?.message).toMatch(
      new RegExp(
        `cannot resume ownership from the checkpoint: .* no longer holds key\\(s\\) ${check.keyIds[1]}`,
      ),
    );
    thrown(() => requireOwnership(state), "OwnershipPending");
  });

  it("ignores a stale key-check answer and rejects one naming keys it was not asked about", () => {
    const c = bootstrap();
    const n3 = c.restart("n3", checkpointOf(c, "n3"));
    const check = n3.effects[0] as Extract<OwnershipEffect, { kind: "hsm.checkKeys" }>;
    const partition = { partitionId: check.partitionId, transferPublicKey: n3.hsm.transfer.publicKey };
    const stale = stepOwnership(n3.state, {
      kind: "keysChecked",
      correlationId: "n3:old:1",
      partition: null,
      missingKeyIds: [],
    });
    expect(stale.effects).toEqual([]);
    expect(stale.state.pending?.step).toBe("verifyKeys");
    const e = thrown(
      () =>
        stepOwnership(n3.state, {
          kind: "keysChecked",
          correlationId: check.correlationId,
          partition,
          missingKeyIds: ["someone-elses-key"],
        }),
      "BadParameter",
    );
    expect(e.details).toMatchObject({ field: "missingKeyIds" });
  });
});

describe("resumeOwnership refuses a checkpoint that is not this member's", () => {
  const config = (nodeId: string, poolId = POOL_ID) => ({ nodeId, poolId, retryTicks: 3 });

  it("refuses another node's or another pool's checkpoint with BadParameter", () => {
    const c = bootstrap();
    const n1 = checkpointOf(c, "n1");
    expect(thrown(() => resumeOwnership(config("n2"), n1), "BadParameter").message).toMatch(
      /belongs to n1 in pool pool-1, not n2 in pool pool-1/,
    );
    expect(thrown(() => resumeOwnership(config("n1", "pool-2"), n1), "BadParameter").message).toMatch(
      /not n1 in pool pool-2/,
    );
    expect(resumeOwnership(config("n1"), n1).phase).toBe("synced");
  });

  it("refuses a checkpoint whose certificates do not chain to its owner root", () => {
    const c = bootstrap();
    const real = checkpointOf(c, "n2");
    const rogue = newSigner();
    const forgedCert = issue(rogue, {
      role: "partition",
      poolId: POOL_ID,
      subject: "n2",
      partitionId: real.partitionCert.partitionId,
      publicKey: real.partitionCert.publicKey,
    });
    expect(
      thrown(() => resumeOwnership(config("n2"), { ...real, partitionCert: forgedCert }), "BadParameter")
        .message,
    ).toMatch(/certificates do not verify/);
    // A self-consistent checkpoint whose owner root certificate is not self-signed.
    const genesis = genesisCommand(POOL_ID, "n1");
    const unsigned = {
      ...genesis,
      ownerRootCert: { ...genesis.ownerRootCert, signature: new Uint8Array(96) },
    };
    thrown(
      () =>
        resumeOwnership(config("n2"), {
          ...real,
          genesis: unsigned,
          dekKeyId: "dek-of-n1",
          poolKeyKeyId: "poolkey-of-n1",
          dekFingerprint: unsigned.dekFingerprint,
          poolKeyFingerprint: unsigned.poolKeyFingerprint,
        }),
      "BadParameter",
    );
  });

  it("a checkpoint of another pool with the same id is caught when the log's Genesis arrives", () => {
    const ours = bootstrap();
    const theirs = bootstrap();
    const resumed = stepOwnership(resumeOwnership(config("n2"), checkpointOf(theirs, "n2")), {
      kind: "start",
      nowMs: 1,
      incarnation: "again",
      members: IDS,
    }).state;
    const e = thrown(
      () => stepOwnership(resumed, { kind: "genesisApplied", genesis: ours.node("n1").store.genesis! }),
      "IntegrityError",
    );
    expect(e.message).toMatch(/two different Genesis/);
  });
});
