import { deriveDomainKeys } from "@hsmpool/security-domain";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type ActivateSecurityDomainCommand,
  type CreateKeyCommand,
  KeyStore,
  type PoolCommand,
} from "./index.js";
import { EntryFeed, genesisCommand } from "./testing/fixtures.js";

const NOW = 1_700_000_000_000;

function create(name: string, requestId: string, material: number): CreateKeyCommand {
  return {
    kind: "createKey",
    requestId,
    name,
    shape: { kty: "EC", crv: "P-256" },
    ops: ["sign", "verify"],
    attributes: { enabled: true, notBeforeMs: null, expiresMs: null, tags: {} },
    wrappedMaterial: Uint8Array.of(material, 1, 2),
    publicJwk: { kty: "EC", crv: "P-256", x: "AA", y: "AA" },
    at: NOW,
  };
}

const activate = (requestId: string, sdId = "sd-1"): ActivateSecurityDomainCommand => ({
  kind: "activateSecurityDomain",
  requestId,
  sdId,
  quorum: 2,
  shareCount: 3,
  sealedSecret: Uint8Array.of(9, 9, 9),
  origin: "download",
  at: NOW,
});

function pool(poolId = "pool-1") {
  const store = new KeyStore({ poolId });
  const feed = new EntryFeed();
  const apply = (c: PoolCommand) => store.apply(feed.next(c));
  apply(genesisCommand(poolId, "n1"));
  return { store, apply };
}

describe("activation in the replicated state", () => {
  it("accepts the id every security-domain secret derives (a base64url id once failed 1 in 32 activations)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (secret) => {
        const { store, apply } = pool();
        const { sdId } = deriveDomainKeys(secret);
        expect(apply(activate("a1", sdId)).outcome).toMatchObject({ kind: "securityDomainActivated", sdId });
        expect(store.requireActivated().sdId).toBe(sdId);
      }),
      { numRuns: 300 },
    );
  });

  it("is NotActivated until the SD is downloaded; a second download is refused and changes nothing", () => {
    const { store, apply } = pool();
    expect(() => store.requireActivated()).toThrow(/download the security domain first/);
    expect(() => store.requireActivated(true)).toThrow(/recovery mode: upload the security domain/);
    expect(apply(activate("a1")).outcome).toMatchObject({ kind: "securityDomainActivated", sdId: "sd-1" });
    expect(store.requireActivated().sdId).toBe("sd-1");
    const before = store.snapshot();
    const second = apply(activate("a2", "sd-2")).outcome;
    expect(second).toMatchObject({ kind: "rejected", error: { code: "Conflict" } });
    expect(JSON.stringify(second)).toMatch(/already downloaded/);
    expect(store.securityDomain?.sdId).toBe("sd-1");
    // Only the applied index moved.
    expect(KeyStore.restore(store.snapshot()).securityDomain).toEqual(
      KeyStore.restore(before).securityDomain,
    );
  });

  it("survives a snapshot round trip (version 3)", () => {
    const { store, apply } = pool();
    apply(activate("a1"));
    const copy = KeyStore.restore(store.snapshot());
    expect(copy.securityDomain).toEqual(store.securityDomain);
    expect(copy.snapshot()).toEqual(store.snapshot());
  });
});

describe("restore from a backup's state", () => {
  it("a full restore yields exactly the backup's key set and keeps the pool's own identity", () => {
    const source = pool();
    source.apply(activate("a1"));
    source.apply(create("k1", "r1", 1));
    source.apply(create("k1", "r2", 2));
    source.apply(create("k2", "r3", 3));
    const backup = source.store.snapshot();

    const target = pool();
    target.apply(activate("a1"));
    target.apply(create("k3", "r9", 7));
    target.apply(create("k1", "r8", 8));
    const result = target.apply({
      kind: "restoreBackup",
      requestId: "x1",
      state: backup,
      keyName: null,
      at: NOW,
    });
    expect(result.outcome).toMatchObject({ kind: "backupRestored", keys: 2 });
    expect(target.store.list().map((k) => [k.name, k.version])).toEqual(
      source.store.list().map((k) => [k.name, k.version]),
    );
    expect(target.store.listVersions("k1").length).toBe(2);
    expect(
      result.effects
        .filter((e) => e.kind === "forgetKeyVersions")
        .map((e) => e.name)
        .sort(),
    ).toEqual(["k1", "k3"]);
    expect(target.store.genesis).not.toBeNull();
    expect(target.store.securityDomain?.sdId).toBe("sd-1");
  });

  it("a selective restore brings back one key only; a key the backup lacks is refused", () => {
    const source = pool();
    source.apply(activate("a1"));
    source.apply(create("k1", "r1", 1));
    source.apply(create("k2", "r2", 2));
    const backup = source.store.snapshot();
    const target = pool();
    target.apply(activate("a1"));
    expect(
      target.apply({ kind: "restoreBackup", requestId: "x1", state: backup, keyName: "k2", at: NOW }).outcome,
    ).toMatchObject({
      kind: "backupRestored",
      keyName: "k2",
    });
    expect(target.store.list().map((k) => k.name)).toEqual(["k2"]);
    const missing = target.apply({
      kind: "restoreBackup",
      requestId: "x2",
      state: backup,
      keyName: "nope",
      at: NOW,
    });
    expect(missing.outcome).toMatchObject({ kind: "rejected", error: { code: "KeyNotFound" } });
    expect(target.store.list().map((k) => k.name)).toEqual(["k2"]);
  });

  it("refuses a restore into a pool that is not activated, and bytes that are not a state", () => {
    const target = pool();
    const source = pool();
    expect(
      target.apply({
        kind: "restoreBackup",
        requestId: "x1",
        state: source.store.snapshot(),
        keyName: null,
        at: NOW,
      }).outcome,
    ).toMatchObject({ kind: "rejected", error: { code: "NotActivated" } });
    target.apply(activate("a1"));
    expect(
      target.apply({
        kind: "restoreBackup",
        requestId: "x2",
        state: Uint8Array.of(1, 2, 3),
        keyName: null,
        at: NOW,
      }).outcome,
    ).toMatchObject({ kind: "rejected", error: { code: "BadParameter" } });
  });
});
