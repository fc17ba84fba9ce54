import { encodeConfChange } from "@hsmpool/raft";
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import type { KeyOp } from "./algorithms.js";
import { FRAME_HASH_BYTES_PER_STEP } from "./frame.js";
import {
  type ApplyOutcome,
  type CreateKeyCommand,
  encodeCommand,
  type GenesisCommand,
  type KeyShape,
  KeyStore,
  type PoolCommand,
  validateCommand,
} from "./index.js";
import { SNAPSHOT_KEYS_PER_STEP } from "./keystore-state.js";
import * as arb from "./testing/arbitraries.js";
import { EntryFeed, genesisCommand, newSigner, thrown } from "./testing/fixtures.js";

const NOW = 1_700_000_000_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function createCmd(
  name: string,
  requestId: string,
  overrides: Partial<CreateKeyCommand> = {},
): CreateKeyCommand {
  return {
    kind: "createKey",
    requestId,
    name,
    shape: { kty: "EC", crv: "P-256" },
    ops: ["sign", "verify"],
    attributes: { enabled: true, notBeforeMs: null, expiresMs: null, tags: {} },
    wrappedMaterial: Uint8Array.of(7, 7, 7),
    publicJwk: { kty: "EC", crv: "P-256", x: "AA", y: "AA" },
    at: NOW,
    ...overrides,
  };
}

let genesis: GenesisCommand;

/** KeyStore.restoreSteps run to its end: the store and how often it paused. */
function restoredInSteps(bytes: Uint8Array): { store: KeyStore; pauses: number } {
  const steps = KeyStore.restoreSteps(bytes, { poolId: "pool-1" });
  let pauses = 0;
  let step = steps.next();
  for (; !step.done; step = steps.next()) pauses++;
  return { store: step.value, pauses };
}

beforeEach(() => {
  genesis = genesisCommand("pool-1", "n1");
});

/** A store with Genesis applied, plus the feed that made its entries. */
function ownedStore(options = {}): {
  store: KeyStore;
  feed: EntryFeed;
  apply: (c: PoolCommand) => ApplyOutcome;
} {
  const store = new KeyStore({ poolId: "pool-1", ...options });
  const feed = new EntryFeed();
  const apply = (c: PoolCommand) => store.apply(feed.next(c)).outcome;
  expect(apply(genesis).kind).toBe("genesisAccepted");
  return { store, feed, apply };
}

describe("KeyStore: keys and versions", () => {
  it("create on an existing name adds a version; get defaults to the latest", () => {
    const { store, feed } = ownedStore();
    const first = store.apply(feed.next(createCmd("k1", "r1")));
    expect(first.outcome).toMatchObject({ kind: "keyCreated", name: "k1", version: 1, duplicate: false });
    expect(first.effects).toEqual([
      { kind: "importKeyVersion", name: "k1", version: 1, wrappedMaterial: Uint8Array.of(7, 7, 7) },
    ]);
    const second = store.apply(
      feed.next(
        createCmd("k1", "r2", {
          shape: { kty: "RSA", size: 3072 },
          ops: ["encrypt"],
          publicJwk: null,
          at: NOW + 5,
        }),
      ),
    );
    expect(second.outcome).toMatchObject({ kind: "keyCreated", version: 2 });
    expect(store.get("k1")).toMatchObject({
      version: 2,
      shape: { kty: "RSA", size: 3072 },
      createdMs: NOW + 5,
    });
    expect(store.get("k1", 1)).toMatchObject({
      version: 1,
      shape: { kty: "EC", crv: "P-256" },
      createdMs: NOW,
    });
    expect(store.listVersions("k1").map((v) => v.version)).toEqual([1, 2]);
    expect(thrown(() => store.get("k1", 3), "KeyNotFound").message).toBe("key k1 has no version 3");
    expect(thrown(() => store.get("nope"), "KeyNotFound").message).toBe("key nope does not exist");
  });

  it("delete soft-deletes every version (the shell forgets them); re-create is a Conflict until purge", () => {
    const { store, feed, apply } = ownedStore();
    apply(createCmd("k1", "r1", { wrappedMaterial: Uint8Array.of(1, 1) }));
    apply(createCmd("k1", "r2", { wrappedMaterial: Uint8Array.of(2, 2) }));
    const deleted = store.apply(feed.next({ kind: "deleteKey", requestId: "r3", name: "k1", at: NOW }));
    expect(deleted.outcome).toMatchObject({ kind: "keyDeleted", versions: [1, 2], duplicate: false });
    expect(deleted.effects).toEqual([
      {
        kind: "forgetKeyVersions",
        name: "k1",
        versions: [1, 2],
        wrappedMaterial: [Uint8Array.of(1, 1), Uint8Array.of(2, 2)],
      },
    ]);
    thrown(() => store.get("k1"), "KeyNotFound");
    expect(store.getDeleted("k1")).toMatchObject({
      versions: [1, 2],
      deletedMs: NOW,
      scheduledPurgeMs: NOW + 90 * DAY,
    });
    expect(apply({ kind: "deleteKey", requestId: "r4", name: "k1", at: NOW })).toMatchObject({
      kind: "rejected",
      error: { code: "KeyNotFound" },
    });
    expect(apply(createCmd("k1", "r5"))).toMatchObject({ kind: "rejected", error: { code: "Conflict" } });
    thrown(() => store.validateCreate({ name: "k1", kty: "EC" }, NOW), "Conflict");
    expect(apply({ kind: "recoverKey", requestId: "r6", name: "k1", at: NOW })).toMatchObject({
      kind: "keyRecovered",
      versions: [1, 2],
    });
    expect(store.get("k1").version).toBe(2);
    apply({ kind: "deleteKey", requestId: "r7", name: "k1", at: NOW });
    // The shell forgot the versions at the delete: the purge asks nothing more of it.
    const purged = store.apply(feed.next({ kind: "purgeKey", requestId: "r8", name: "k1", at: NOW }));
    expect(purged.outcome).toMatchObject({ kind: "keyPurged" });
    expect(purged.effects).toEqual([]);
    thrown(() => store.getDeleted("k1"), "KeyNotFound");
    expect(apply(createCmd("k1", "r9"))).toMatchObject({ kind: "keyCreated", version: 1 });
  });

  it("purge is refused under purge protection until the retention ends; protection cannot be turned off", () => {
    const { store, apply } = ownedStore();
    const set = (setting: "purge-protection" | "soft-delete-retention-days", value: string, id: string) =>
      apply({ kind: "setSetting", requestId: id, setting, value, at: NOW });
    expect(set("soft-delete-retention-days", "7", "s1")).toMatchObject({ kind: "settingChanged" });
    expect(set("purge-protection", "on", "s2")).toMatchObject({ kind: "settingChanged" });
    apply(createCmd("k1", "c1"));
    apply({ kind: "deleteKey", requestId: "d1", name: "k1", at: NOW });
    const before = store.snapshot();
    expect(apply({ kind: "purgeKey", requestId: "p1", name: "k1", at: NOW + 7 * DAY - 1 })).toMatchObject({
      kind: "rejected",
      error: { code: "Forbidden" },
    });
    thrown(() => store.validatePurge("k1", NOW + DAY), "Forbidden");
    expect(set("purge-protection", "off", "s3")).toMatchObject({
      kind: "rejected",
      error: { code: "BadParameter" },
    });
    expect(set("soft-delete-retention-days", "3", "s4")).toMatchObject({
      kind: "rejected",
      error: { code: "BadParameter" },
    });
    thrown(() => store.validateSetting("soft-delete-retention-days", "91"), "BadParameter");
    // Refusals change nothing but the applied index.
    expect(KeyStore.restore(before).getDeleted("k1")).toEqual(store.getDeleted("k1"));
    expect(store.listSettings()).toEqual([
      { name: "soft-delete-retention-days", value: "7" },
      { name: "purge-protection", value: "on" },
    ]);
    expect(store.duePurges(NOW + 7 * DAY)).toEqual(["k1"]);
    expect(apply({ kind: "purgeKey", requestId: "p2", name: "k1", at: NOW + 7 * DAY })).toMatchObject({
      kind: "keyPurged",
    });
    expect(KeyStore.restore(store.snapshot()).listSettings()).toEqual(store.listSettings());
  });

  it("lists the latest version of every key ordered by name (ordinal order) and counts the keys", () => {
    fc.assert(
      fc.property(fc.uniqueArray(arb.keyName, { maxLength: 12 }), (names) => {
        const { store, apply } = ownedStore();
        names.forEach((n, i) => {
          apply(createCmd(n, `r${i}`));
        });
        const expected = [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        expect(store.list().map((k) => k.name)).toEqual(expected);
        // keyCount counts keys, not versions: a second version of a key leaves it unchanged.
        if (names[0] !== undefined) apply(createCmd(names[0], "again"));
        expect(store.keyCount).toBe(names.length);
      }),
      { numRuns: 50 },
    );
  });

  it("updates attributes of the latest or a given version, stamping updatedMs from the entry", () => {
    const { store, apply } = ownedStore();
    apply(createCmd("k1", "r1"));
    apply(createCmd("k1", "r2"));
    const outcome = apply({
      kind: "updateKeyAttributes",
      requestId: "r3",
      name: "k1",
      version: 1,
      changes: { enabled: false, tags: { env: "prod" } },
      at: NOW + 10,
    });
    expect(outcome).toMatchObject({ kind: "keyUpdated", version: 1 });
    expect(store.get("k1", 1)).toMatchObject({
      attributes: { enabled: false, tags: { env: "prod" } },
      updatedMs: NOW + 10,
      createdMs: NOW,
    });
    expect(store.get("k1", 2).attributes.enabled).toBe(true);
  });
});

describe("KeyStore: authorizeOperation", () => {
  function storeWith(overrides: Partial<CreateKeyCommand>): KeyStore {
    const { store, apply } = ownedStore();
    apply(createCmd("k1", "r1", overrides));
    return store;
  }

  it("allows a permitted operation with a fitting algorithm", () => {
    expect(storeWith({}).authorizeOperation("k1", "sign", "ES256", NOW)).toEqual({
      name: "k1",
      version: 1,
      shape: { kty: "EC", crv: "P-256" },
      op: "sign",
      alg: "ES256",
    });
  });

  it("a disabled key refuses sign (Forbidden), and works again once enabled", () => {
    const { store, apply } = ownedStore();
    apply(
      createCmd("k1", "r1", { attributes: { enabled: false, notBeforeMs: null, expiresMs: null, tags: {} } }),
    );
    expect(thrown(() => store.authorizeOperation("k1", "sign", "ES256", NOW), "Forbidden").message).toMatch(
      /disabled/,
    );
    apply({
      kind: "updateKeyAttributes",
      requestId: "r2",
      name: "k1",
      version: null,
      changes: { enabled: true },
      at: NOW,
    });
    expect(() => store.authorizeOperation("k1", "sign", "ES256", NOW)).not.toThrow();
  });

  it("refuses before not-before and from expiry on (Forbidden)", () => {
    const store = storeWith({
      attributes: { enabled: true, notBeforeMs: NOW, expiresMs: NOW + HOUR, tags: {} },
    });
    expect(
      thrown(() => store.authorizeOperation("k1", "sign", "ES256", NOW - 1), "Forbidden").message,
    ).toMatch(/not valid before 2023-11-14T22:13:20.000Z/);
    expect(() => store.authorizeOperation("k1", "sign", "ES256", NOW)).not.toThrow();
    expect(() => store.authorizeOperation("k1", "sign", "ES256", NOW + HOUR - 1)).not.toThrow();
    expect(
      thrown(() => store.authorizeOperation("k1", "sign", "ES256", NOW + HOUR), "Forbidden").message,
    ).toMatch(/expired/);
  });

  it("refuses operations the key does not allow (OperationNotAllowed)", () => {
    const store = storeWith({ ops: ["verify"] });
    expect(
      thrown(() => store.authorizeOperation("k1", "sign", "ES256", NOW), "OperationNotAllowed").message,
    ).toMatch(/does not allow sign; its operations are verify/);
    thrown(() => store.authorizeOperation("k1", "encrypt", "RSA-OAEP", NOW), "OperationNotAllowed");
  });

  it("refuses an algorithm that does not fit the key's type, curve or size (BadParameter naming alg)", () => {
    const ec = storeWith({});
    expect(thrown(() => ec.authorizeOperation("k1", "sign", "ES384", NOW), "BadParameter").message).toMatch(
      /ES384 needs curve P-384; this is an EC P-256 key/,
    );
    expect(thrown(() => ec.authorizeOperation("k1", "sign", "RS256", NOW), "BadParameter").details).toEqual({
      field: "alg",
    });
    expect(thrown(() => ec.authorizeOperation("k1", "sign", "XS999", NOW), "BadParameter").message).toMatch(
      /unknown sign algorithm "XS999"/,
    );
    const aes = storeWith({
      shape: { kty: "oct", size: 256 },
      ops: ["encrypt", "decrypt", "wrapKey"],
      publicJwk: null,
    });
    expect(() => aes.authorizeOperation("k1", "encrypt", "A256GCM", NOW)).not.toThrow();
    expect(() => aes.authorizeOperation("k1", "wrapKey", "A256KW", NOW)).not.toThrow();
    expect(
      thrown(() => aes.authorizeOperation("k1", "encrypt", "A128GCM", NOW), "BadParameter").message,
    ).toMatch(/needs a 128-bit AES key/);
    thrown(() => aes.authorizeOperation("k1", "sign" as KeyOp, "ES256", NOW), "OperationNotAllowed");
    thrown(() => aes.authorizeOperation("k1", "fly" as KeyOp, "ES256", NOW), "BadParameter");
    thrown(() => aes.authorizeOperation("k2", "encrypt", "A256GCM", NOW), "KeyNotFound");
  });
});

describe("KeyStore: idempotent requests", () => {
  it("a retried create (same requestId) creates nothing and returns the first answer", () => {
    const { store, feed, apply } = ownedStore();
    apply(createCmd("k1", "r1"));
    const retry = store.apply(feed.next(createCmd("k1", "r1", { wrappedMaterial: Uint8Array.of(9) })));
    expect(retry.outcome).toMatchObject({ kind: "keyCreated", version: 1, duplicate: true });
    expect(retry.effects).toEqual([]);
    expect(store.listVersions("k1")).toHaveLength(1);
    expect(store.wrappedMaterialOf("k1", 1)).toEqual(Uint8Array.of(7, 7, 7));
  });

  it("knows a purge or recover whose first attempt applied, which its pre-check would refuse", () => {
    const { store, apply } = ownedStore();
    apply(createCmd("k1", "r1"));
    apply({ kind: "deleteKey", requestId: "r2", name: "k1", at: NOW });
    apply({ kind: "recoverKey", requestId: "r3", name: "k1", at: NOW });
    thrown(() => store.validateRecover("k1"), "KeyNotFound");
    expect(store.appliedAlready("recoverKey", "r3", "k1")).toBe(true);
    apply({ kind: "deleteKey", requestId: "r4", name: "k1", at: NOW });
    expect(apply({ kind: "purgeKey", requestId: "r5", name: "k1", at: NOW })).toMatchObject({
      kind: "keyPurged",
      duplicate: false,
    });
    thrown(() => store.validatePurge("k1", NOW), "KeyNotFound");
    expect(store.appliedAlready("purgeKey", "r5", "k1")).toBe(true);
    expect(apply({ kind: "purgeKey", requestId: "r5", name: "k1", at: NOW })).toMatchObject({
      kind: "keyPurged",
      duplicate: true,
    });
    // Only that request, of that kind, on that key.
    expect(store.appliedAlready("purgeKey", "r5", "k2")).toBe(false);
    expect(store.appliedAlready("recoverKey", "r5", "k1")).toBe(false);
    expect(store.appliedAlready("purgeKey", "r9", "k1")).toBe(false);
  });

  it("knows a restore whose first attempt applied, which its pre-check would refuse", () => {
    const { store, apply } = ownedStore();
    const made = createCmd("k1", "r1");
    const restore = {
      kind: "restoreKey",
      requestId: "r2",
      name: "k1",
      versions: [
        {
          name: "k1",
          version: 1,
          shape: made.shape,
          ops: made.ops,
          attributes: made.attributes,
          createdMs: NOW - DAY,
          updatedMs: NOW - DAY,
          publicJwk: made.publicJwk,
          wrappedMaterial: made.wrappedMaterial,
        },
      ],
      at: NOW,
    } as PoolCommand;
    expect(apply(restore)).toMatchObject({ kind: "keyRestored", duplicate: false });
    thrown(() => store.validateRestore("k1"), "Conflict");
    expect(store.appliedAlready("restoreKey", "r2", "k1")).toBe(true);
    expect(apply(restore)).toMatchObject({ kind: "keyRestored", duplicate: true });
    expect(store.listVersions("k1")).toHaveLength(1);
  });

  it("a requestId reused for another request is a Conflict and changes nothing", () => {
    const { store, apply } = ownedStore();
    apply(createCmd("k1", "r1"));
    const before = store.snapshot();
    expect(apply(createCmd("k2", "r1"))).toMatchObject({ kind: "rejected", error: { code: "Conflict" } });
    expect(apply({ kind: "deleteKey", requestId: "r1", name: "k1", at: NOW })).toMatchObject({
      kind: "rejected",
      error: { code: "Conflict" },
    });
    expect(store.has("k2")).toBe(false);
    expect(store.has("k1")).toBe(true);
    expect(withoutIndex(store.snapshot())).toEqual(withoutIndex(before));
  });

  it("remembers a bounded window of requests, oldest forgotten first", () => {
    const { store, apply } = ownedStore({ maxRememberedRequests: 2 });
    apply(createCmd("k1", "r1"));
    apply(createCmd("k2", "r2"));
    apply(createCmd("k3", "r3"));
    // r1 fell out of the window: a very late retry is a new request.
    expect(apply(createCmd("k1", "r1"))).toMatchObject({ kind: "keyCreated", version: 2, duplicate: false });
    expect(apply(createCmd("k3", "r3"))).toMatchObject({ kind: "keyCreated", version: 1, duplicate: true });
    expect(store.listVersions("k1")).toHaveLength(2);
  });
});

/** Snapshot bytes with the applied index zeroed (rejected entries still advance it). */
function withoutIndex(snapshot: Uint8Array): Uint8Array {
  const copy = Uint8Array.from(snapshot);
  copy.fill(0, 5, 13);
  return copy.subarray(0, copy.length - 8);
}

describe("KeyStore: bad input changes nothing", () => {
  it("validateCreate names the bad field (BadParameter) and has no side effects", () => {
    const { store } = ownedStore();
    const before = store.snapshot();
    const cases: [unknown, string][] = [
      [{ name: "bad name", kty: "EC" }, "name"],
      [{ name: "k".repeat(128), kty: "EC" }, "name"],
      [{ name: "k1", kty: "DSA" }, "kty"],
      [{ name: "k1", kty: "RSA", size: 1024 }, "size"],
      [{ name: "k1", kty: "EC", crv: "P-192" }, "crv"],
      [{ name: "k1", kty: "EC", size: 256 }, "size"],
      [{ name: "k1", kty: "EC", ops: ["encrypt"] }, "ops"],
      [{ name: "k1", kty: "oct", ops: [] }, "ops"],
      [{ name: "k1", kty: "oct", ops: ["encrypt", "encrypt"] }, "ops"],
      [{ name: "k1", kty: "EC", enabled: "yes" }, "enabled"],
      [{ name: "k1", kty: "EC", notBeforeMs: NOW, expiresMs: NOW }, "expiresMs"],
      [{ name: "k1", kty: "EC", expiresMs: NOW - 1 }, "expiresMs"],
      [{ name: "k1", kty: "EC", notBeforeMs: -5 }, "notBeforeMs"],
      [{ name: "k1", kty: "EC", tags: { a: 5 } }, "tags"],
      [
        {
          name: "k1",
          kty: "EC",
          tags: Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`t${i}`, "v"])),
        },
        "tags",
      ],
    ];
    for (const [request, field] of cases) {
      const e = thrown(() => store.validateCreate(request, NOW), "BadParameter");
      expect(e.details, `${JSON.stringify(request)} -> ${e.message}`).toEqual({ field });
    }
    expect(store.validateCreate({ name: "Key-1", kty: "RSA" }, NOW)).toEqual({
      name: "Key-1",
      shape: { kty: "RSA", size: 2048 },
      ops: ["sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey"],
      attributes: { enabled: true, notBeforeMs: null, expiresMs: null, tags: {} },
    });
    expect(store.snapshot()).toEqual(before);
  });

  it("validateUpdate checks the key, the version, the ops for its type and the time window", () => {
    const { store, apply } = ownedStore();
    apply(
      createCmd("k1", "r1", { attributes: { enabled: true, notBeforeMs: NOW, expiresMs: null, tags: {} } }),
    );
    thrown(() => store.validateUpdate({ name: "k2", enabled: false }, NOW), "KeyNotFound");
    thrown(() => store.validateUpdate({ name: "k1", version: 2, enabled: false }, NOW), "KeyNotFound");
    expect(
      thrown(() => store.validateUpdate({ name: "k1", ops: ["encrypt"] }, NOW), "BadParameter").message,
    ).toMatch(/cannot encrypt/);
    thrown(() => store.validateUpdate({ name: "k1", expiresMs: NOW - 1 }, NOW), "BadParameter");
    thrown(() => store.validateUpdate({ name: "k1" }, NOW), "BadParameter");
    expect(store.validateUpdate({ name: "k1", expiresMs: NOW + HOUR, tags: { a: "b" } }, NOW)).toEqual({
      name: "k1",
      version: 1,
      changes: { expiresMs: NOW + HOUR, tags: { a: "b" } },
    });
  });

  it("an update that cannot apply to the key is rejected on apply, deterministically, with nothing changed", () => {
    const { store, apply } = ownedStore();
    apply(
      createCmd("k1", "r1", { attributes: { enabled: true, notBeforeMs: NOW, expiresMs: null, tags: {} } }),
    );
    const before = store.snapshot();
    const bad: PoolCommand[] = [
      {
        kind: "updateKeyAttributes",
        requestId: "u1",
        name: "k1",
        version: null,
        changes: { ops: ["encrypt"] },
        at: NOW,
      },
      {
        kind: "updateKeyAttributes",
        requestId: "u2",
        name: "k1",
        version: null,
        changes: { expiresMs: NOW },
        at: NOW,
      },
      {
        kind: "updateKeyAttributes",
        requestId: "u3",
        name: "k1",
        version: 9,
        changes: { enabled: false },
        at: NOW,
      },
      {
        kind: "updateKeyAttributes",
        requestId: "u4",
        name: "zz",
        version: null,
        changes: { enabled: false },
        at: NOW,
      },
    ];
    expect(bad.map((c) => apply(c))).toMatchObject([
      { kind: "rejected", error: { code: "BadParameter" } },
      { kind: "rejected", error: { code: "BadParameter" } },
      { kind: "rejected", error: { code: "KeyNotFound" } },
      { kind: "rejected", error: { code: "KeyNotFound" } },
    ]);
    expect(withoutIndex(store.snapshot())).toEqual(withoutIndex(before));
  });

  it("a corrupt entry is an IntegrityError: nothing applied, the applied index does not move", () => {
    const { store, feed } = ownedStore();
    const entry = feed.next(createCmd("k1", "r1"));
    const corrupt = { ...entry, data: Uint8Array.from(entry.data) };
    corrupt.data[20] = (corrupt.data[20] ?? 0) ^ 1;
    const before = store.snapshot();
    thrown(() => store.apply(corrupt), "IntegrityError");
    expect(store.snapshot()).toEqual(before);
    expect(store.appliedIndex).toBe(1);
    expect(store.apply(entry).outcome.kind).toBe("keyCreated");
  });

  it("refuses entries out of order (Internal) instead of applying them", () => {
    const { store, feed } = ownedStore();
    feed.skip();
    thrown(() => store.apply(feed.next(createCmd("k1", "r1"))), "Internal");
    expect(store.has("k1")).toBe(false);
  });
});

describe("KeyStore: Genesis and members", () => {
  it("the first committed Genesis wins; a later one is ignored and reported", () => {
    const { store, apply } = ownedStore();
    const other = genesisCommand("pool-1", "n2");
    expect(apply(other)).toMatchObject({ kind: "genesisIgnored", proposer: "n2", sameRoot: false });
    expect(apply(genesis)).toMatchObject({ kind: "genesisIgnored", proposer: "n1", sameRoot: true });
    expect(store.genesis?.proposer).toBe("n1");
  });

  it("refuses a Genesis whose owner root certificate is not self-signed, or is for another pool", () => {
    const store = new KeyStore({ poolId: "pool-1" });
    const feed = new EntryFeed();
    const forged = {
      ...genesis,
      ownerRootCert: { ...genesis.ownerRootCert, publicKey: newSigner().publicKey },
    };
    expect(store.apply(feed.next(forged)).outcome).toMatchObject({
      kind: "rejected",
      error: { code: "Forbidden" },
    });
    expect(store.apply(feed.next(genesisCommand("pool-2"))).outcome).toMatchObject({
      kind: "rejected",
      error: { code: "Forbidden" },
    });
    expect(store.genesis).toBeNull();
  });

  it("key commands before Genesis are rejected with OwnershipPending", () => {
    const store = new KeyStore();
    expect(store.apply(new EntryFeed().next(createCmd("k1", "r1"))).outcome).toMatchObject({
      kind: "rejected",
      error: { code: "OwnershipPending" },
    });
  });

  it("records synced members with the pool's DEK only, and drops a removed member", () => {
    const { store, feed, apply } = ownedStore();
    const synced = (memberId: string, dekFingerprint: string) =>
      apply({
        kind: "memberOwnershipSynced",
        memberId,
        partitionCertFingerprint: "a".repeat(64),
        dekFingerprint,
        at: NOW,
      });
    expect(synced("n2", genesis.dekFingerprint)).toEqual({ kind: "memberSynced", memberId: "n2" });
    expect(synced("n3", "b".repeat(64))).toMatchObject({ kind: "rejected", error: { code: "Conflict" } });
    expect(store.syncedMembers().map((m) => m.memberId)).toEqual(["n2"]);
    const index = feed.skip();
    const removed = store.apply({
      term: 1,
      index,
      type: "confChange",
      data: encodeConfChange({ type: "removeNode", node: "n2" }),
    });
    expect(removed.outcome).toEqual({ kind: "memberRemoved", memberId: "n2" });
    expect(store.syncedMembers()).toEqual([]);
  });
});

describe("KeyStore: snapshots", () => {
  function busyStore(): { store: KeyStore; log: Parameters<KeyStore["apply"]>[0][] } {
    const { store, feed } = ownedStore();
    const log = [];
    for (const c of [
      createCmd("b", "r1", {
        attributes: { enabled: true, notBeforeMs: 5, expiresMs: NOW * 2, tags: { z: "1", a: "2" } },
      }),
      createCmd("a", "r2"),
      createCmd("b", "r3", { shape: { kty: "oct", size: 128 }, ops: ["wrapKey"], publicJwk: null }),
      { kind: "deleteKey", requestId: "r4", name: "a", at: NOW } as const,
      {
        kind: "memberOwnershipSynced",
        memberId: "n3",
        partitionCertFingerprint: "c".repeat(64),
        dekFingerprint: genesis.dekFingerprint,
        at: NOW,
      } as const,
    ]) {
      const entry = feed.next(c);
      log.push(entry);
      store.apply(entry);
    }
    return { store, log };
  }

  it("gives the same bytes for the same state, and restores to a store that answers the same", () => {
    const { store } = busyStore();
    const bytes = store.snapshot();
    expect(store.snapshot()).toEqual(bytes);
    const restored = KeyStore.restore(bytes);
    expect(restored.snapshot()).toEqual(bytes);
    expect(restored.list()).toEqual(store.list());
    expect(restored.listVersions("b")).toEqual(store.listVersions("b"));
    expect(restored.syncedMembers()).toEqual(store.syncedMembers());
    expect(restored.genesis).toEqual(store.genesis);
    expect(restored.appliedIndex).toBe(store.appliedIndex);
  });

  it("encodes in steps (a pause every SNAPSHOT_KEYS_PER_STEP keys) to the bytes snapshot() gives", () => {
    const { store, apply } = ownedStore();
    const keys = SNAPSHOT_KEYS_PER_STEP * 2 + 1;
    for (let i = 0; i < keys; i++) expect(apply(createCmd(`k${i}`, `r${i}`)).kind).toBe("keyCreated");
    const steps = store.snapshotSteps();
    let pauses = 0;
    let step = steps.next();
    for (; !step.done; step = steps.next()) pauses++;
    expect(pauses).toBe(2);
    expect(step.value).toEqual(store.snapshot());
    const restored = KeyStore.restore(step.value);
    expect(restored.list()).toEqual(store.list());
    expect(restored.snapshot()).toEqual(step.value);
  });

  it("decodes in steps (pauses while checking the checksum and every SNAPSHOT_KEYS_PER_STEP keys) to the store restore() gives", () => {
    const { store, apply } = ownedStore();
    const keys = SNAPSHOT_KEYS_PER_STEP * 2 + 1;
    for (let i = 0; i < keys; i++) expect(apply(createCmd(`k${i}`, `r${i}`)).kind).toBe("keyCreated");
    const bytes = store.snapshot();
    const { store: restored, pauses } = restoredInSteps(bytes);
    // Checksum of the body (all but its 8 checksum bytes), then two pauses between the 1,001 keys.
    expect(pauses).toBe(Math.ceil((bytes.length - 8) / FRAME_HASH_BYTES_PER_STEP) - 1 + 2);
    expect(restored.snapshot()).toEqual(bytes);
    expect(restored.list()).toEqual(store.list());
    expect(restored.wrappedMaterialOf("k1000", 1)).toEqual(store.wrappedMaterialOf("k1000", 1));
  });

  it("rejects a snapshot with any flipped byte or truncation (IntegrityError)", () => {
    const bytes = busyStore().store.snapshot();
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (at, mask) => {
        const corrupt = Uint8Array.from(bytes);
        corrupt[at % bytes.length] = (corrupt[at % bytes.length] ?? 0) ^ mask;
        thrown(() => KeyStore.restore(corrupt), "IntegrityError");
        thrown(() => restoredInSteps(corrupt), "IntegrityError");
        thrown(() => KeyStore.restore(bytes.subarray(0, at % bytes.length)), "IntegrityError");
      }),
      { numRuns: 200 },
    );
  });

  it("property: random command sequences match a Map model, and replicas agree byte for byte", () => {
    // Few names and request ids, mostly "latest version" updates: collisions, retries and conflicts are common.
    const names = fc.constantFrom("a", "B", "0");
    const requestId = fc.integer({ min: 0, max: 12 }).map((i) => `r${i}`);
    const version = fc.oneof(
      { weight: 3, arbitrary: fc.constant(null) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 2 }) },
    );
    const op: fc.Arbitrary<PoolCommand> = fc.oneof(
      fc
        .tuple(arb.createKey, names, requestId)
        .map(([c, name, id]) => ({ ...c, name, requestId: id }) as PoolCommand),
      fc.tuple(arb.updateKey, names, requestId, version, fc.boolean()).map(([u, name, id, v, keepOps]) => {
        const { ops, ...rest } = (u as Extract<PoolCommand, { kind: "updateKeyAttributes" }>).changes;
        const changes = keepOps || Object.keys(rest).length === 0 ? { ...rest, ops } : rest;
        return { ...u, name, requestId: id, version: v, changes } as PoolCommand;
      }),
      fc
        .tuple(fc.constantFrom("deleteKey", "recoverKey", "purgeKey"), names, requestId, arb.timeMs)
        .map(([kind, name, id, at]) => ({ kind, requestId: id, name, at }) as PoolCommand),
      fc.tuple(names, requestId, fc.integer({ min: 1, max: 3 }), arb.timeMs, fc.boolean()).map(
        ([name, id, basedOnVersion, at, ec]) =>
          ({
            kind: "rotateKey",
            requestId: id,
            name,
            basedOnVersion,
            wrappedMaterial: Uint8Array.of(9),
            publicJwk: ec ? { kty: "EC", crv: "P-256", x: "AA", y: "AA" } : null,
            at,
          }) as PoolCommand,
      ),
      fc.tuple(names, requestId, fc.constantFrom("on", "off")).map(
        ([, id, value]) =>
          ({
            kind: "setSetting",
            requestId: id,
            setting: "purge-protection",
            value,
            at: NOW,
          }) as PoolCommand,
      ),
      fc.tuple(names, requestId).map(
        ([name, id]) =>
          ({
            kind: "restoreKey",
            requestId: id,
            name,
            versions: [createCmd(name, id)].map((c) => ({
              name,
              version: 1,
              shape: c.shape,
              ops: c.ops,
              attributes: c.attributes,
              createdMs: NOW - DAY,
              updatedMs: NOW - DAY,
              publicJwk: c.publicJwk,
              wrappedMaterial: c.wrappedMaterial,
            })),
            at: NOW,
          }) as PoolCommand,
      ),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 5, maxLength: 40 }), (commands) => {
        const { store, apply } = ownedStore();
        const replica = ownedStore();
        const model = new KeyModel();
        for (const c of commands) {
          const outcome = apply(c);
          replica.apply(c);
          expect(outcome.kind, JSON.stringify(outcome)).toBe(model.apply(validateCommand(c)));
        }
        expect(Object.fromEntries(store.list().map((k) => [k.name, store.listVersions(k.name)]))).toEqual(
          model.view(),
        );
        expect(store.listDeleted().map((d) => [d.name, d.versions, d.deletedMs])).toEqual(
          model.deletedView(),
        );
        expect(replica.store.snapshot()).toEqual(store.snapshot());
        expect(KeyStore.restore(store.snapshot()).snapshot()).toEqual(store.snapshot());
        // Restored in steps: the same state (bytes, keys, versions with their material, deleted keys).
        const inSteps = restoredInSteps(store.snapshot()).store;
        expect(inSteps.snapshot()).toEqual(store.snapshot());
        expect(inSteps.list()).toEqual(store.list());
        for (const k of store.list())
          expect(inSteps.versionRecords(k.name)).toEqual(store.versionRecords(k.name));
        expect(inSteps.listDeleted()).toEqual(store.listDeleted());
      }),
      { numRuns: 100 },
    );
  });
});

interface ModelVersion {
  name: string;
  version: number;
  shape: KeyShape;
  ops: KeyOp[];
  attributes: {
    enabled: boolean;
    notBeforeMs: number | null;
    expiresMs: number | null;
    tags: Record<string, string>;
  };
  createdMs: number;
  updatedMs: number;
  publicJwk: Record<string, string> | null;
}

/**
 * The simplest thing that could be the key store: Maps of live version lists and of
 * soft-deleted ones, purge protection as a flag, and a Map of seen requests.
 */
class KeyModel {
  private readonly keys = new Map<string, ModelVersion[]>();
  private readonly deleted = new Map<string, { versions: ModelVersion[]; deletedMs: number }>();
  private protection = false;
  private readonly seen = new Map<string, { kind: string; name: string }>();

  apply(c: PoolCommand): ApplyOutcome["kind"] {
    if (
      c.kind === "genesis" ||
      c.kind === "memberOwnershipSynced" ||
      c.kind === "registerMember" ||
      c.kind === "setRotationPolicy" ||
      c.kind === "activateSecurityDomain" ||
      c.kind === "restoreBackup" ||
      c.kind === "recordBackupJob" ||
      c.kind === "access"
    )
      throw new Error("not modelled");
    const name = c.kind === "setSetting" ? c.setting : c.name;
    const prior = this.seen.get(c.requestId);
    if (prior) return prior.kind === c.kind && prior.name === name ? outcomeOf(c.kind) : "rejected";
    const versions = this.keys.get(name);
    const gone = this.deleted.get(name);
    if (c.kind === "setSetting") {
      if (this.protection && c.value === "off") return "rejected";
      this.protection = c.value === "on";
    } else if (c.kind === "recoverKey") {
      if (!gone) return "rejected";
      this.deleted.delete(c.name);
      this.keys.set(c.name, gone.versions);
    } else if (c.kind === "purgeKey") {
      if (!gone || (this.protection && c.at < gone.deletedMs + 90 * DAY)) return "rejected";
      this.deleted.delete(c.name);
    } else if (c.kind === "restoreKey") {
      if (gone || versions) return "rejected";
      this.keys.set(
        c.name,
        c.versions.map(({ wrappedMaterial: _material, ...v }) => ({
          ...v,
          shape: { ...v.shape },
          ops: [...v.ops],
          attributes: { ...v.attributes, tags: { ...v.attributes.tags } },
          publicJwk: v.publicJwk ? { ...v.publicJwk } : null,
        })),
      );
    } else if (c.kind === "rotateKey") {
      const latest = versions?.at(-1);
      if (gone || !latest || latest.version !== c.basedOnVersion) return "rejected";
      if ((c.publicJwk === null) !== (latest.shape.kty === "oct")) return "rejected";
      versions?.push({
        name: c.name,
        version: latest.version + 1,
        shape: { ...latest.shape },
        ops: [...latest.ops],
        attributes: {
          enabled: true,
          notBeforeMs: null,
          expiresMs: null,
          tags: { ...latest.attributes.tags },
        },
        createdMs: c.at,
        updatedMs: c.at,
        publicJwk: c.publicJwk ? { ...c.publicJwk } : null,
      });
    } else if (c.kind === "createKey") {
      if (gone) return "rejected";
      const version = (versions?.at(-1)?.version ?? 0) + 1;
      this.keys.set(c.name, [
        ...(versions ?? []),
        {
          name: c.name,
          version,
          shape: { ...c.shape },
          ops: [...c.ops],
          attributes: { ...c.attributes, tags: { ...c.attributes.tags } },
          createdMs: c.at,
          updatedMs: c.at,
          publicJwk: c.publicJwk ? { ...c.publicJwk } : null,
        },
      ]);
    } else if (c.kind === "deleteKey") {
      if (!versions) return "rejected";
      this.keys.delete(c.name);
      this.deleted.set(c.name, { versions, deletedMs: c.at });
    } else {
      const target = c.version === null ? versions?.at(-1) : versions?.find((v) => v.version === c.version);
      if (!target) return "rejected";
      const ops = c.changes.ops ?? target.ops;
      const kinds: Record<string, KeyOp[]> = {
        EC: ["sign", "verify"],
        oct: ["sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey"],
      };
      if (target.shape.kty !== "RSA" && ops.some((op) => !kinds[target.shape.kty]?.includes(op)))
        return "rejected";
      const nb = c.changes.notBeforeMs !== undefined ? c.changes.notBeforeMs : target.attributes.notBeforeMs;
      const ex = c.changes.expiresMs !== undefined ? c.changes.expiresMs : target.attributes.expiresMs;
      if (nb !== null && ex !== null && ex <= nb) return "rejected";
      Object.assign(target, {
        ops: [...ops],
        updatedMs: c.at,
        attributes: {
          enabled: c.changes.enabled ?? target.attributes.enabled,
          notBeforeMs: nb,
          expiresMs: ex,
          tags: { ...(c.changes.tags ?? target.attributes.tags) },
        },
      });
    }
    this.seen.set(c.requestId, { kind: c.kind, name });
    return outcomeOf(c.kind);
  }

  view(): Record<string, ModelVersion[]> {
    return Object.fromEntries([...this.keys].filter(([, v]) => v.length > 0));
  }

  deletedView(): [string, number[], number][] {
    return [...this.deleted]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, d]) => [name, d.versions.map((v) => v.version), d.deletedMs]);
  }
}

const OUTCOMES: Record<string, ApplyOutcome["kind"]> = {
  createKey: "keyCreated",
  deleteKey: "keyDeleted",
  updateKeyAttributes: "keyUpdated",
  rotateKey: "keyRotated",
  recoverKey: "keyRecovered",
  purgeKey: "keyPurged",
  restoreKey: "keyRestored",
  setSetting: "settingChanged",
};

function outcomeOf(kind: string): ApplyOutcome["kind"] {
  return OUTCOMES[kind] ?? "rejected";
}

it("entries encode the same command the same way on every member (encodeCommand is a function of the command)", () => {
  fc.assert(
    fc.property(arb.command, (c) => {
      expect(encodeCommand(c)).toEqual(encodeCommand(validateCommand(c)));
    }),
    { numRuns: 100 },
  );
});

describe("bad input gets a typed error and changes nothing", () => {
  it("unknown attribute, retention of 3 days, an ISO duration that does not parse, an unknown setting", () => {
    const { store, apply } = ownedStore();
    apply(createCmd("k1", "c1"));
    apply({ kind: "deleteKey", requestId: "d0", name: "k1", at: NOW });
    apply({ kind: "recoverKey", requestId: "r0", name: "k1", at: NOW });
    const before = store.snapshot();
    thrown(() => store.validateUpdate({ name: "k1", enabled: false, colour: "red" }, NOW), "BadParameter");
    thrown(() => store.validateSetting("soft-delete-retention-days", "3"), "BadParameter");
    thrown(() => store.validateSetting("retention", "30"), "BadParameter");
    thrown(() => store.validateRotationPolicy("k1", { rotateAfter: "thirty days" }), "BadParameter");
    thrown(() => store.validateRotationPolicy("nope", { rotateAfter: "P30D" }), "KeyNotFound");
    thrown(() => store.validateRecover("k1"), "KeyNotFound");
    thrown(() => store.validatePurge("k1", NOW), "KeyNotFound");
    thrown(() => store.validateRestore("k1"), "Conflict");
    expect(store.snapshot()).toEqual(before);
    // The same mistakes arriving as log entries apply as refusals that change nothing but the index.
    const refused = [
      apply({
        kind: "setSetting",
        requestId: "s1",
        setting: "soft-delete-retention-days",
        value: "3",
        at: NOW,
      }),
      apply({
        kind: "rotateKey",
        requestId: "x1",
        name: "k1",
        basedOnVersion: 9,
        wrappedMaterial: Uint8Array.of(1),
        publicJwk: null,
        at: NOW,
      }),
      apply({ kind: "purgeKey", requestId: "x2", name: "k1", at: NOW }),
    ];
    expect(refused.map((o) => o.kind)).toEqual(["rejected", "rejected", "rejected"]);
    const after = KeyStore.restore(store.snapshot());
    expect(after.listVersions("k1")).toEqual(KeyStore.restore(before).listVersions("k1"));
    expect(after.listSettings()).toEqual(KeyStore.restore(before).listSettings());
  });
});
