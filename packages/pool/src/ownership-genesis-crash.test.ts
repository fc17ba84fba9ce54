/**
 * A primary that crashes with its Genesis proposed and undecided. Its partition may hold
 * the only copy of the pool's owner root, DEK and pool key (if the entry committed), so it
 * must resume from the provisional checkpoint it wrote before the proposal left — and
 * must never use material whose Genesis lost.
 */
import { describe, expect, it } from "vitest";
import {
  assertOneDekAmongSynced,
  assertOneOwnerRootPerPool,
  certificateFingerprint,
  decodeCommand,
  decodeOwnershipCheckpoint,
  dekFingerprintsOfSynced,
  type OwnershipEffect,
  type OwnershipState,
  ownershipCheckpoint,
  type ProvisionalOwnershipCheckpoint,
  requireOwnership,
  stepOwnership,
} from "./index.js";
import { Cluster, type Node } from "./testing/cluster.js";
import { genesisCommand, thrown } from "./testing/fixtures.js";

const IDS = ["n1", "n2", "n3"];

function kinds(effects: OwnershipEffect[]): string[] {
  return effects.map((e) => e.kind);
}

function states(c: Cluster): OwnershipState[] {
  return [...c.nodes.values()].map((n) => n.state);
}

function provisionalOnDisk(node: Node): ProvisionalOwnershipCheckpoint {
  const checkpoint = node.disk ? decodeOwnershipCheckpoint(node.disk) : null;
  if (checkpoint?.phase !== "ownershipProposed") throw new Error(`${node.id} has no provisional checkpoint`);
  return checkpoint;
}

/** n1 leads, makes the pool's keys and proposes Genesis; the proposal is held (not yet committed). */
function n1ProposesGenesis(): { c: Cluster; genesis: Uint8Array } {
  const c = new Cluster(IDS);
  c.drain();
  c.connectAll();
  c.holdProposals = true;
  c.elect("n1");
  c.drain();
  expect(c.node("n1").state.phase).toBe("ownershipProposed");
  const [held] = c.held.splice(0);
  expect(held?.from).toBe("n1");
  c.holdProposals = false;
  return { c, genesis: held!.data };
}

describe("a primary writes a provisional checkpoint before its Genesis proposal leaves", () => {
  it("the step that proposes Genesis yields a provisional checkpoint naming exactly the proposed material", () => {
    const { c, genesis } = n1ProposesGenesis();
    const proposed = decodeCommand(genesis);
    if (proposed.kind !== "genesis") throw new Error("not a Genesis");
    const checkpoint = provisionalOnDisk(c.node("n1"));
    expect(certificateFingerprint(checkpoint.ownerRootCert)).toBe(
      certificateFingerprint(proposed.ownerRootCert),
    );
    expect(checkpoint.dekFingerprint).toBe(proposed.dekFingerprint);
    expect(checkpoint.poolKeyFingerprint).toBe(proposed.poolKeyFingerprint);
    expect(ownershipCheckpoint(c.node("n1").state)).toEqual(checkpoint);
    // Persist-before-send: the harness (like every shell) saves before the step's effects run.
    const saved = c.transcript.indexOf("n1 saves its ownershipProposed checkpoint");
    expect(saved).toBeGreaterThan(-1);
    expect(c.transcript.indexOf("n1 proposes genesis")).toBe(saved + 1);
    // No secret in it; secondaries still have nothing to record.
    for (const secret of c.secrets) expect(Cluster.contains(c.node("n1").disk!, secret)).toBe(false);
    expect(c.node("n2").disk).toBeNull();
  });
});

describe("the primary crashes after proposing Genesis", () => {
  it("its Genesis commits while it is down: it resumes from the provisional checkpoint and the pool syncs with its DEK", () => {
    const { c, genesis } = n1ProposesGenesis();
    const n1 = c.node("n1");
    const before = provisionalOnDisk(n1);
    const keysBefore = [...n1.hsm.keys.keys()].sort();
    // The entry reaches a majority; n1 dies before applying it and restarts in place.
    c.append(genesis);
    c.restartFromDisk("n1");
    expect(n1.state.phase).toBe("ownershipProposed");
    expect(kinds(n1.effects)).toEqual(["hsm.checkKeys"]);
    thrown(() => requireOwnership(n1.state), "OwnershipPending");
    c.elect("n2");
    c.runUntil(() => c.allSynced());

    for (const id of IDS) {
      expect(c.node(id).store.genesis?.proposer).toBe("n1");
      expect(c.ownerRootPublicKey(id)).toEqual(c.ownerRootPublicKey("n1"));
    }
    expect(dekFingerprintsOfSynced(states(c))).toEqual([before.dekFingerprint]);
    assertOneOwnerRootPerPool(states(c));
    // n1 kept its partition: no zeroize, no transfer into it, the same keys.
    expect(n1.phases).toEqual(["ownershipProposed", "synced"]);
    expect(kinds(n1.effects)).not.toContain("hsm.zeroizeAndInit");
    expect(kinds(n1.effects)).not.toContain("hsm.importFromTransfer");
    expect(kinds(n1.effects)).not.toContain("hsm.deleteKeys");
    expect([...n1.hsm.keys.keys()].sort()).toEqual(keysBefore);
    // The others got the DEK from n1, the only partition that held it.
    expect(c.transcript).toContain("n1 -> n2: dekResponse");
    expect(c.transcript).toContain("n1 -> n3: dekResponse");
    // n1's checkpoint is now the synced one, for the same keys.
    const after = decodeOwnershipCheckpoint(n1.disk!);
    expect(after).toMatchObject({
      phase: "synced",
      dekKeyId: before.dekKeyId,
      ownerRootKeyId: before.ownerRootKeyId,
    });
  });

  it("contrast: restarted blank instead, it zeroizes the only copy and the pool never syncs", () => {
    const { c, genesis } = n1ProposesGenesis();
    c.append(genesis);
    c.restart("n1", null);
    c.elect("n2");
    expect(() => c.runUntil(() => c.allSynced(), 20)).toThrow(/condition not reached/);
    for (const id of IDS) expect(c.node(id).state.phase).toBe("requestingOwnerRoot");
  });

  it("another member's Genesis wins: the resumed primary discards its material and syncs from the winner", () => {
    const { c } = n1ProposesGenesis(); // n1's proposal dies with it (never committed)
    const n1 = c.node("n1");
    const lost = provisionalOnDisk(n1);
    c.restartFromDisk("n1");
    c.elect("n2");
    c.runUntil(() => c.allSynced());

    const winner = c.node("n2").store.genesis!;
    expect(winner.proposer).toBe("n2");
    expect(dekFingerprintsOfSynced(states(c))).toEqual([winner.dekFingerprint]);
    assertOneOwnerRootPerPool(states(c));
    assertOneDekAmongSynced(states(c));
    // n1 deleted exactly its losing keys, and none of them is left in its partition.
    const losing = [lost.ownerRootKeyId, lost.dekKeyId, lost.poolKeyKeyId];
    const deletes = n1.effects.filter((e) => e.kind === "hsm.deleteKeys");
    expect(deletes).toEqual([{ kind: "hsm.deleteKeys", keyIds: losing }]);
    for (const id of losing) expect(n1.hsm.keys.has(id)).toBe(false);
    expect(n1.phases).toEqual([
      "ownershipProposed",
      "requestingOwnerRoot",
      "issuingPartitionCert",
      "receivingDek",
      "synced",
    ]);
    // It never served, exported or announced the losing material.
    const synced = n1.effects.filter((e) => e.kind === "ownershipSynced");
    expect(synced).toEqual([expect.objectContaining({ dekFingerprint: winner.dekFingerprint })]);
    expect(n1.effects.filter((e) => e.kind === "hsm.exportForTransfer")).toEqual([]);
    expect(c.ownerRootPublicKey("n1")).toEqual(c.ownerRootPublicKey("n2"));
    expect(decodeOwnershipCheckpoint(n1.disk!)).toMatchObject({ phase: "synced", genesis: winner });
  });

  it("its lost proposal committing late (after the winner) changes nothing", () => {
    const { c, genesis } = n1ProposesGenesis();
    c.restartFromDisk("n1");
    c.elect("n2");
    c.runUntil(() => c.allSynced());
    c.append(genesis);
    c.drain();
    expect(c.transcript).toContain("n3 ignores Genesis by n1");
    expect(c.node("n1").store.genesis?.proposer).toBe("n2");
    expect(c.allSynced()).toBe(true);
    assertOneOwnerRootPerPool(states(c));
  });

  it("no Genesis committed and it leads again: it re-proposes the same material, which then wins", () => {
    const { c } = n1ProposesGenesis();
    const n1 = c.node("n1");
    const lost = provisionalOnDisk(n1);
    c.restartFromDisk("n1");
    c.elect("n1");
    c.runUntil(() => c.allSynced());
    expect(certificateFingerprint(c.node("n3").store.genesis!.ownerRootCert)).toBe(
      certificateFingerprint(lost.ownerRootCert),
    );
    expect(kinds(n1.effects)).not.toContain("hsm.createOwnershipKeys");
    expect(dekFingerprintsOfSynced(states(c))).toEqual([lost.dekFingerprint]);
  });

  it("its partition was zeroized meanwhile: it re-syncs as a blank member (nothing of the checkpoint is used)", () => {
    const { c } = n1ProposesGenesis();
    const n1 = c.node("n1");
    n1.hsm.wipe();
    c.restartFromDisk("n1");
    c.elect("n2");
    c.runUntil(() => c.allSynced());
    expect(kinds(n1.effects).slice(0, 2)).toEqual(["hsm.checkKeys", "hsm.zeroizeAndInit"]);
    expect(n1.state.lastError).toBeNull();
    expect(c.node("n1").store.genesis?.proposer).toBe("n2");
  });
});

describe("a resumed proposer whose keys are not yet confirmed", () => {
  it("neither proposes, serves nor discards; the key-check answer decides", () => {
    const { c } = n1ProposesGenesis();
    const n1 = c.restartFromDisk("n1");
    const check = n1.effects[0] as Extract<OwnershipEffect, { kind: "hsm.checkKeys" }>;
    let s = n1.state;
    const quiet: OwnershipEffect[] = [];
    for (const input of [
      { kind: "leaderChanged", leader: "n1", term: 7 },
      { kind: "leaderCaughtUp", term: 7 },
      { kind: "genesisApplied", genesis: genesisCommand("pool-1", "n2") },
      { kind: "tick", nowMs: 1_700_000_009_000 },
    ] as const) {
      const step = stepOwnership(s, input);
      quiet.push(...step.effects);
      s = step.state;
    }
    expect(quiet).toEqual([]);
    const asked = stepOwnership(s, {
      kind: "message",
      from: "n2",
      message: {
        kind: "ownershipRequest",
        poolId: "pool-1",
        nonce: "n2:x:1",
        partitionId: "dev-n2/p0",
        transferPublicKey: c.node("n2").hsm.transfer.publicKey,
      },
    });
    expect(asked.effects).toEqual([
      {
        kind: "send",
        to: "n2",
        message: expect.objectContaining({ kind: "refused", code: "OwnershipPending" }),
      },
    ]);
    // Keys confirmed, another Genesis committed: discard (delete) and ask for the winner's owner root.
    const answered = stepOwnership(s, {
      kind: "keysChecked",
      correlationId: check.correlationId,
      partition: { partitionId: check.partitionId, transferPublicKey: n1.hsm.transfer.publicKey },
      missingKeyIds: [],
    });
    expect(kinds(answered.effects)).toEqual(["hsm.deleteKeys", "send"]);
    expect(answered.state.phase).toBe("requestingOwnerRoot");
    expect(answered.state.material.dek).toBeNull();
    expect(answered.state.lastError?.code).toBe("Conflict");
    expect(ownershipCheckpoint(answered.state)).toBeNull();
  });
});
