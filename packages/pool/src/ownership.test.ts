import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  assertNoOpWithoutOwnership,
  assertOneDekAmongSynced,
  assertOneOwnerRootPerPool,
  certificateFingerprint,
  createOwnershipState,
  dekFingerprintsOfSynced,
  encodeCommand,
  type OwnershipEffect,
  type OwnershipState,
  ownerRootsOf,
  requireOwnership,
  type ServedOperation,
  stepOwnership,
} from "./index.js";
import { Cluster, POOL_ID } from "./testing/cluster.js";
import { issue, newSigner, thrown } from "./testing/fixtures.js";

function bootstrap(ids = ["n1", "n2", "n3"]): Cluster {
  const c = new Cluster(ids);
  c.drain();
  c.connectAll();
  c.elect("n1");
  c.runUntil(() => c.allSynced());
  return c;
}

function states(c: Cluster): OwnershipState[] {
  return [...c.nodes.values()].map((n) => n.state);
}

/** A key operation as the node shell would gate it: ownership first, then the key store's rules. */
function serveSign(c: Cluster, id: string, name: string, served: ServedOperation[]): void {
  const node = c.node(id);
  requireOwnership(node.state);
  node.store.authorizeOperation(name, "sign", "ES256", 1_700_000_000_500);
  served.push({ member: id, phase: node.state.phase, op: `sign ${name}` });
}

function effectKinds(effects: OwnershipEffect[]): string[] {
  return effects.map((e) => e.kind);
}

describe("bootstrap transcript (3 nodes, fake Raft, fake HSM)", () => {
  it("brings all three members to synced with one owner root, one DEK and their own partition certificates", () => {
    const c = bootstrap();
    expect(c.node("n1").phases).toEqual([
      "initializingPartition",
      "connecting",
      "electing",
      "creatingOwnership",
      "ownershipProposed",
      "synced",
    ]);
    for (const id of ["n2", "n3"]) {
      expect(c.node(id).phases).toEqual([
        "initializingPartition",
        "connecting",
        "electing",
        "requestingOwnerRoot",
        "issuingPartitionCert",
        "receivingDek",
        "synced",
      ]);
    }
    assertOneOwnerRootPerPool(states(c));
    assertOneDekAmongSynced(states(c));
    expect(ownerRootsOf(states(c)).get(POOL_ID)).toHaveLength(1);
    expect(dekFingerprintsOfSynced(states(c))).toEqual([c.node("n1").store.genesis?.dekFingerprint]);
    // Every partition holds the one owner root key, and each has its own certificate for its own transfer key.
    const root = c.ownerRootPublicKey("n1");
    const certs = new Set<string>();
    for (const id of ["n1", "n2", "n3"]) {
      const n = c.node(id);
      expect(c.ownerRootPublicKey(id)).toEqual(root);
      expect(n.state.material.partitionCert?.publicKey).toEqual(n.hsm.transfer.publicKey);
      expect(n.state.material.partitionCert?.subject).toBe(id);
      certs.add(certificateFingerprint(n.state.material.partitionCert!));
    }
    expect(certs.size).toBe(3);
    // The log recorded Genesis once and every member's sync.
    expect(
      c
        .node("n3")
        .store.syncedMembers()
        .map((m) => m.memberId),
    ).toEqual(["n1", "n2", "n3"]);
    expect(c.transcript).toContain("n2 -> n1: ownershipRequest");
    expect(c.transcript).toContain("n1 -> n2: dekResponse");
  });

  it("moves only opaque blobs between nodes: no secret byte on the wire or in the log", () => {
    const c = bootstrap();
    expect(c.secrets.length).toBeGreaterThan(0);
    for (const bytes of c.wire) {
      for (const secret of c.secrets) expect(Cluster.contains(bytes, secret)).toBe(false);
    }
    // The blobs that did travel are transfer tokens, each made for the partition that received it.
    const blobs = [...c.nodes.values()].flatMap((n) =>
      n.effects.flatMap((e) => (e.kind === "hsm.importFromTransfer" ? e.items.map((i) => i.blob) : [])),
    );
    expect(blobs.length).toBe(6); // n2, n3: owner root, DEK, pool key
    for (const blob of blobs) expect(c.isToken(blob)).toBe(true);
  });

  it("is the same transcript when run twice (no hidden clocks or randomness in the machines)", () => {
    const shape = (c: Cluster) => c.transcript.filter((l) => !l.includes("refused"));
    expect(shape(bootstrap())).toEqual(shape(bootstrap()));
  });
});

describe("competing Genesis", () => {
  /**
   * n1 leads term 1 and proposes Genesis A, but is cut off before it commits; n2 leads
   * term 2, sees no Genesis, proposes Genesis B. Both entries end up committed in the
   * order given; the first one wins, and the loser must discard its material and sync.
   */
  function race(order: "AthenB" | "BthenA"): Cluster {
    const c = new Cluster(["n1", "n2", "n3"]);
    c.drain();
    c.connectAll();
    c.isolated.add("n1");
    c.elect("n1");
    // n1 cannot apply the committed log while cut off, so feed its caught-up signal directly.
    c.feed("n1", { kind: "leaderCaughtUp", term: 1 });
    c.drain();
    expect(c.node("n1").state.phase).toBe("ownershipProposed");
    const [genesisA] = c.held.splice(0);
    c.holdProposals = true;
    c.elect("n2");
    c.drain();
    expect(c.node("n2").state.phase).toBe("ownershipProposed");
    const [genesisB] = c.held.splice(0);
    expect(genesisA?.from).toBe("n1");
    expect(genesisB?.from).toBe("n2");
    c.holdProposals = false;
    for (const g of order === "AthenB" ? [genesisA, genesisB] : [genesisB, genesisA]) c.append(g!.data);
    c.isolated.delete("n1");
    c.runUntil(() => c.allSynced());
    return c;
  }

  it.each(["AthenB", "BthenA"] as const)(
    "first committed Genesis wins (%s); the loser deletes its keys and re-syncs from the winner",
    (order) => {
      const c = race(order);
      const winner = order === "AthenB" ? "n1" : "n2";
      const loser = order === "AthenB" ? "n2" : "n1";
      assertOneOwnerRootPerPool(states(c));
      assertOneDekAmongSynced(states(c));
      for (const id of ["n1", "n2", "n3"]) {
        expect(c.node(id).store.genesis?.proposer).toBe(winner);
        expect(c.ownerRootPublicKey(id)).toEqual(c.ownerRootPublicKey(winner));
      }
      const l = c.node(loser);
      expect(l.effects.some((e) => e.kind === "hsm.deleteKeys")).toBe(true);
      expect(l.phases).toContain("requestingOwnerRoot");
      expect(l.phases.at(-1)).toBe("synced");
      // Only one owner root key remains in the loser's partition: the winner's.
      expect([...l.hsm.keys.values()].filter((k) => k.kind === "ownerRoot")).toHaveLength(1);
      expect(c.transcript).toContain(`n3 ignores Genesis by ${loser}`);
    },
  );

  it("property: whatever order the two Genesis entries commit in, every member ends with the same owner root", () => {
    fc.assert(
      fc.property(fc.boolean(), (aFirst) => {
        const c = race(aFirst ? "AthenB" : "BthenA");
        expect(ownerRootsOf(states(c)).get(POOL_ID)).toHaveLength(1);
        expect(new Set(states(c).map((s) => s.material.dek?.fingerprint)).size).toBe(1);
      }),
      { numRuns: 4 },
    );
  });
});

describe("members without ownership", () => {
  it("refuse key operations with OwnershipPending until they hold the DEK", () => {
    const c = new Cluster(["n1", "n2", "n3"]);
    c.drain();
    c.connectAll();
    c.isolated.add("n3");
    c.elect("n1");
    c.runUntil(() => c.allSynced(["n1", "n2"]));
    // A key exists in the log; n3 has no ownership yet.
    const served: ServedOperation[] = [];
    const dek = c.node("n1").state.material.dek!.keyId;
    c.append(
      encodeCommand({
        kind: "createKey",
        requestId: "req-1",
        name: "k1",
        shape: { kty: "EC", crv: "P-256" },
        ops: ["sign", "verify"],
        attributes: { enabled: true, notBeforeMs: null, expiresMs: null, tags: {} },
        wrappedMaterial: c.node("n1").hsm.createWrappedAppKey(dek),
        publicJwk: { kty: "EC", crv: "P-256", x: "AA", y: "AA" },
        at: 1_700_000_000_100,
      }),
    );
    // n3 rejoins the log but its messages are lost for now.
    c.isolated.delete("n3");
    c.silenced.add("n3");
    c.drain();
    expect(c.node("n3").store.has("k1")).toBe(true);
    const n3 = c.node("n3");
    expect(n3.state.phase).not.toBe("synced");
    const refusal = thrown(() => serveSign(c, "n3", "k1", served), "OwnershipPending");
    expect(refusal.message).toMatch(/n3 does not hold the pool's ownership yet/);
    serveSign(c, "n1", "k1", served);
    c.silenced.delete("n3");
    c.runUntil(() => c.allSynced());
    serveSign(c, "n3", "k1", served);
    expect(() => assertNoOpWithoutOwnership(served)).not.toThrow();
    expect(() =>
      assertNoOpWithoutOwnership([...served, { member: "n9", phase: "receivingDek", op: "sign k1" }]),
    ).toThrow(/n9 served sign k1 while in phase receivingDek/);
  });
});

describe("healing: a blank replacement member", () => {
  it("joins later, restores a snapshot, syncs ownership from a synced member and can unwrap old keys", () => {
    const c = bootstrap();
    const dek = c.node("n1").state.material.dek!.keyId;
    const wrapped = c.node("n1").hsm.createWrappedAppKey(dek);
    c.append(
      encodeCommand({
        kind: "createKey",
        requestId: "req-old",
        name: "old-key",
        shape: { kty: "oct", size: 256 },
        ops: ["encrypt", "decrypt"],
        attributes: { enabled: true, notBeforeMs: null, expiresMs: null, tags: {} },
        wrappedMaterial: wrapped,
        publicJwk: null,
        at: 1_700_000_000_200,
      }),
    );
    c.drain();
    c.removeMember("n3");
    c.addMember("n4");
    c.drain();
    // The replacement starts from n2's snapshot (Genesis and synced members included).
    const n4 = c.addNode("n4", "n2");
    c.feed("n4", { kind: "peersConnected" });
    c.runUntil(() => c.allSynced(["n4"]));
    expect(n4.phases.at(-1)).toBe("synced");
    expect(c.ownerRootPublicKey("n4")).toEqual(c.ownerRootPublicKey("n1"));
    assertOneOwnerRootPerPool(states(c));
    assertOneDekAmongSynced(states(c));
    expect(
      c
        .node("n1")
        .store.syncedMembers()
        .map((m) => m.memberId),
    ).toEqual(["n1", "n2", "n4"]);
    // The key created before n4 existed unwraps in n4's partition under the DEK it received.
    const blob = n4.store.wrappedMaterialOf("old-key", 1);
    expect(() => n4.hsm.importWrappedAppKey(blob, n4.state.material.dek!.keyId)).not.toThrow();
  });

  it("re-sends a request that got no answer to another synced member after retryTicks", () => {
    const c = bootstrap();
    c.removeMember("n3");
    c.addMember("n4");
    c.drain();
    const n4 = c.addNode("n4", "n2");
    c.feed("n4", { kind: "peersConnected" });
    // The leader n1 is unreachable: n4 asks n1 first (leader), then falls back to n2.
    c.isolated.add("n1");
    c.runUntil(() => n4.state.phase === "synced" || n4.state.phase === "receivingDek", 30);
    const targets = n4.effects.flatMap((e) =>
      e.kind === "send" && e.message.kind === "ownershipRequest" ? [e.to] : [],
    );
    expect(targets[0]).toBe("n1");
    expect(targets).toContain("n2");
  });
});

describe("serving side refuses what it must", () => {
  function servingNode(): { c: Cluster; n1: OwnershipState } {
    const c = bootstrap();
    return { c, n1: c.node("n1").state };
  }

  it("refuses an OwnershipRequest from a node that is not a Raft member, exporting nothing", () => {
    const { n1 } = servingNode();
    const stranger = newSigner();
    const { effects } = stepOwnership(n1, {
      kind: "message",
      from: "x9",
      message: {
        kind: "ownershipRequest",
        poolId: POOL_ID,
        nonce: "x9:r:1",
        partitionId: "dev-x9/p0",
        transferPublicKey: stranger.publicKey,
      },
    });
    expect(effectKinds(effects)).toEqual(["send"]);
    const reply = effects[0] as Extract<OwnershipEffect, { kind: "send" }>;
    expect(reply.to).toBe("x9");
    expect(reply.message).toMatchObject({ kind: "refused", code: "Forbidden", nonce: "x9:r:1" });
    expect((reply.message as { reason: string }).reason).toMatch(/x9 is not a member of pool pool-1/);
  });

  it("refuses the DEK to a partition certificate not signed by the pool's owner root", () => {
    const { c, n1 } = servingNode();
    c.addMember("r1"); // even a Raft member
    const withRogue = c.node("n1").state;
    const rogueRoot = newSigner();
    const rogueTransfer = newSigner();
    const rogueCert = issue(rogueRoot, {
      role: "partition",
      poolId: POOL_ID,
      subject: "r1",
      partitionId: "dev-r1/p0",
      publicKey: rogueTransfer.publicKey,
    });
    const { effects } = stepOwnership(withRogue, {
      kind: "message",
      from: "r1",
      message: { kind: "dekRequest", poolId: POOL_ID, nonce: "r1:r:1", partitionCert: rogueCert },
    });
    expect(effectKinds(effects)).toEqual(["send"]);
    expect((effects[0] as Extract<OwnershipEffect, { kind: "send" }>).message).toMatchObject({
      kind: "refused",
      code: "Forbidden",
    });
    // A certificate that does chain to the owner root but names another node is refused too.
    const n2Cert = c.node("n2").state.material.partitionCert!;
    const stolen = stepOwnership(withRogue, {
      kind: "message",
      from: "r1",
      message: { kind: "dekRequest", poolId: POOL_ID, nonce: "r1:r:2", partitionCert: n2Cert },
    });
    expect((stolen.effects[0] as Extract<OwnershipEffect, { kind: "send" }>).message).toMatchObject({
      kind: "refused",
      code: "Forbidden",
    });
    expect(n1.phase).toBe("synced");
  });

  it("a member that is not synced refuses to serve with OwnershipPending", () => {
    const c = new Cluster(["n1", "n2"]);
    c.drain();
    const n2 = c.node("n2").state;
    const { effects } = stepOwnership(n2, {
      kind: "message",
      from: "n1",
      message: {
        kind: "ownershipRequest",
        poolId: POOL_ID,
        nonce: "n1:r:1",
        partitionId: "dev-n1/p0",
        transferPublicKey: newSigner().publicKey,
      },
    });
    expect((effects[0] as Extract<OwnershipEffect, { kind: "send" }>).message).toMatchObject({
      kind: "refused",
      code: "OwnershipPending",
    });
  });

  it("a follower refuses an owner root whose key is not the committed one", () => {
    const c = new Cluster(["n1", "n2", "n3"]);
    c.drain();
    c.connectAll();
    c.elect("n1");
    // n2's import returns a different P-384 key than the Genesis certificate names.
    const n2 = c.node("n2");
    const original = n2.hsm.run.bind(n2.hsm);
    let swapped = false;
    n2.hsm.run = (effect) => {
      const result = original(effect);
      if (!swapped && result?.kind === "transferImported" && result.keys[0]?.role === "ownerRoot") {
        swapped = true;
        return { ...result, keys: [{ ...result.keys[0], publicKey: newSigner().publicKey }] };
      }
      return result;
    };
    c.runUntil(() => c.allSynced());
    expect(swapped).toBe(true);
    expect(n2.effects.some((e) => e.kind === "hsm.deleteKeys")).toBe(true);
    expect(n2.phases.at(-1)).toBe("synced");
  });
});

describe("machine input validation and retries", () => {
  const config = { nodeId: "n1", poolId: POOL_ID, retryTicks: 2 };

  it("rejects inputs before start and a bad config with typed errors", () => {
    const s = createOwnershipState(config);
    thrown(() => stepOwnership(s, { kind: "tick", nowMs: 1 }), "NotInitialized");
    thrown(() => createOwnershipState({ ...config, retryTicks: 0 }), "BadParameter");
    thrown(() => createOwnershipState({ ...config, nodeId: "" }), "BadParameter");
    const started = stepOwnership(s, { kind: "start", nowMs: 5, incarnation: "abc", members: ["n1"] }).state;
    const e = thrown(
      () => stepOwnership(started, { kind: "leaderChanged", leader: "bad id!", term: 1 }),
      "BadParameter",
    );
    expect(e.details).toMatchObject({ field: "leader" });
  });

  it("retries a failed HSM call after retryTicks, not before, and ignores the stale result", () => {
    const c = new Cluster(["n9"], 2);
    const n9 = c.node("n9");
    const zeroizes = () => n9.effects.filter((e) => e.kind === "hsm.zeroizeAndInit").length;
    expect(zeroizes()).toBe(1);
    const first = n9.state.pending!.correlationId;
    c.feed("n9", { kind: "hsmFailed", correlationId: first, error: { code: "DeviceFault", message: "x" } });
    expect(n9.state.lastError?.code).toBe("DeviceFault");
    c.tick();
    expect(zeroizes()).toBe(1);
    c.tick();
    expect(zeroizes()).toBe(2);
    expect(n9.state.pending!.correlationId).not.toBe(first);
    // Both results arrive; only the retry's is taken.
    c.drain();
    expect(n9.state.phase).toBe("connecting");
    expect(n9.state.partition?.transferPublicKey).toEqual(n9.hsm.transfer.publicKey);
  });
});

describe("property: random leader changes, partitions, held proposals and ticks", () => {
  const node = fc.constantFrom("n1", "n2", "n3");
  const action = fc.oneof(
    node.map((id) => ({ kind: "elect" as const, id })),
    node.map((id) => ({ kind: "isolate" as const, id })),
    node.map((id) => ({ kind: "heal" as const, id })),
    fc.boolean().map((on) => ({ kind: "hold" as const, on })),
    fc.boolean().map((reverse) => ({ kind: "release" as const, reverse })),
    fc.integer({ min: 1, max: 4 }).map((n) => ({ kind: "tick" as const, n })),
  );

  function checkInvariants(c: Cluster): void {
    assertOneOwnerRootPerPool(states(c));
    assertOneDekAmongSynced(states(c));
    const geneses = new Set(
      [...c.nodes.values()].flatMap((n) =>
        n.store.genesis ? [certificateFingerprint(n.store.genesis.ownerRootCert)] : [],
      ),
    );
    expect(geneses.size).toBeLessThanOrEqual(1);
    for (const n of c.nodes.values()) {
      if (n.state.phase !== "synced") continue;
      // A synced member holds exactly the committed Genesis' owner root.
      expect(certificateFingerprint(n.state.material.ownerRootCert!)).toBe(
        certificateFingerprint(n.state.genesis!.ownerRootCert),
      );
    }
  }

  it("never has two owner roots or two DEKs among synced members, and always converges once healed", () => {
    fc.assert(
      fc.property(fc.array(action, { maxLength: 20 }), (actions) => {
        const c = new Cluster(["n1", "n2", "n3"], 2);
        c.drain();
        c.connectAll();
        for (const a of actions) {
          if (a.kind === "elect") c.elect(a.id);
          else if (a.kind === "isolate") c.isolated.add(a.id);
          else if (a.kind === "heal") c.isolated.delete(a.id);
          else if (a.kind === "hold") c.holdProposals = a.on;
          else if (a.kind === "release") {
            const held = c.held.splice(0);
            for (const h of a.reverse ? held.reverse() : held) c.append(h.data);
          } else for (let i = 0; i < a.n; i++) c.tick();
          c.drain();
          checkInvariants(c);
        }
        c.isolated.clear();
        c.holdProposals = false;
        c.releaseHeld();
        c.elect("n1");
        c.runUntil(() => c.allSynced(), 200);
        checkInvariants(c);
        expect(ownerRootsOf(states(c)).get(POOL_ID)).toHaveLength(1);
      }),
      { numRuns: 40 },
    );
  });
});
