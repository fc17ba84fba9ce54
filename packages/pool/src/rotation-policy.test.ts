import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type ApplyOutcome,
  KeyStore,
  type PoolCommand,
  parseIsoDuration,
  policyRotationRequestId,
  toAzureRotationPolicy,
  validateRotationPolicy,
} from "./index.js";
import { fromAzureRotationPolicy } from "./rotation-policy.js";
import { EntryFeed, genesisCommand, thrown } from "./testing/fixtures.js";

const DAY = 86_400_000;
const T0 = 1_700_000_000_000;

describe("ISO-8601 durations and policies", () => {
  it("parses the API's durations; anything else is a BadParameter naming the field", () => {
    expect(parseIsoDuration("P30D", "rotateAfter")).toBe(30 * DAY);
    expect(parseIsoDuration("P1Y", "x")).toBe(365 * DAY);
    expect(parseIsoDuration("P2M", "x")).toBe(60 * DAY);
    expect(parseIsoDuration("P1W", "x")).toBe(7 * DAY);
    expect(parseIsoDuration("P1DT12H", "x")).toBe(1.5 * DAY);
    for (const bad of ["30D", "P", "PT", "P0D", "P-1D", "P1.5D", "p30d", "", "P30DT"]) {
      thrown(() => parseIsoDuration(bad, "rotateAfter"), "BadParameter");
    }
  });

  it("refuses unknown fields, too-short rotation and before-expiry rules without an expiry", () => {
    thrown(() => validateRotationPolicy({ rotateEvery: "P30D" }), "BadParameter");
    thrown(() => validateRotationPolicy({ rotateAfter: "P6D" }), "BadParameter");
    thrown(() => validateRotationPolicy({ rotateBeforeExpiry: "P7D" }), "BadParameter");
    thrown(() => validateRotationPolicy({ rotateAfter: "P90D", expiresAfter: "P30D" }), "BadParameter");
    expect(validateRotationPolicy({ rotateAfter: "P30D", expiresAfter: "P90D" })).toMatchObject({
      rotateAfter: "P30D",
      expiresAfter: "P90D",
    });
  });

  it("the Azure JSON shape round-trips (lifetimeActions, attributes.expiryTime)", () => {
    const policy = validateRotationPolicy({
      rotateBeforeExpiry: "P7D",
      notifyBeforeExpiry: "P10D",
      expiresAfter: "P90D",
    });
    const json = toAzureRotationPolicy("k", policy, { createdMs: T0, updatedMs: T0 });
    expect(json.lifetimeActions).toEqual([
      { trigger: { timeBeforeExpiry: "P7D" }, action: { type: "Rotate" } },
      { trigger: { timeBeforeExpiry: "P10D" }, action: { type: "Notify" } },
    ]);
    expect(json.attributes.expiryTime).toBe("P90D");
    expect(fromAzureRotationPolicy(JSON.parse(JSON.stringify(json)))).toEqual(policy);
  });
});

/**
 * A year in virtual time: the primary evaluates the policies every hour on its clock
 * and proposes the due rotations; a failover happens at random hours, and the old
 * primary's proposals (made before it lost leadership) still commit after the new
 * primary's — the exact double proposal "exactly once" must survive.
 */
describe("rotation policy in virtual time", () => {
  function runYear(failoverHours: Set<number>, rotateAfter: string, hours = 365 * 24): KeyStore {
    const store = new KeyStore({ poolId: "pool-1" });
    const feed = new EntryFeed();
    const apply = (c: PoolCommand): ApplyOutcome => store.apply(feed.next(c)).outcome;
    apply(genesisCommand("pool-1", "n1"));
    apply({
      kind: "createKey",
      requestId: "create",
      name: "k",
      shape: { kty: "EC", crv: "P-256" },
      ops: ["sign", "verify"],
      attributes: { enabled: true, notBeforeMs: null, expiresMs: null, tags: {} },
      wrappedMaterial: Uint8Array.of(1),
      publicJwk: { kty: "EC", crv: "P-256", x: "AA", y: "AA" },
      at: T0,
    });
    apply({
      kind: "setRotationPolicy",
      requestId: "policy",
      name: "k",
      policy: validateRotationPolicy({ rotateAfter, expiresAfter: "P1Y" }),
      at: T0,
    });
    let stale: PoolCommand[] = [];
    for (let h = 1; h <= hours; h++) {
      const now = T0 + h * 3_600_000;
      const proposals: PoolCommand[] = store.dueRotations(now).map((due) => ({
        kind: "rotateKey",
        // A fresh id per proposer would defeat the dedupe table; basedOnVersion alone must still hold.
        requestId: failoverHours.has(h)
          ? `${policyRotationRequestId(due)}/new-primary`
          : policyRotationRequestId(due),
        name: due.name,
        basedOnVersion: due.basedOnVersion,
        wrappedMaterial: Uint8Array.of(h % 250),
        publicJwk: { kty: "EC", crv: "P-256", x: "AA", y: "AA" },
        at: now,
      }));
      for (const c of [...proposals, ...stale]) apply(c);
      // After a failover the old primary's proposals of the last hour still commit, under other
      // request ids (so the dedupe table cannot help): basedOnVersion alone must keep it exactly once.
      stale = failoverHours.has(h + 1)
        ? proposals.map((c) => ({ ...c, requestId: `${(c as { requestId: string }).requestId}/old-primary` }))
        : [];
    }
    return store;
  }

  it("rotate-after-30-days over a simulated year: exactly 12 rotations (versions 2..13), whatever the failovers", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 365 * 24 }), { maxLength: 20 }),
        // Failovers right after rotations are the dangerous ones: the old primary's proposal is still in flight.
        fc.subarray(
          Array.from({ length: 12 }, (_, i) => (i + 1) * 30 * 24 + 1),
          { minLength: 1 },
        ),
        (random, afterRotation) => {
          const store = runYear(new Set([...random, ...afterRotation]), "P30D");
          const versions = store.listVersions("k");
          expect(versions.map((v) => v.version)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
          // Each rotation happened at a 30-day boundary, on the primary's clock, and expires a year later.
          versions.slice(1).forEach((v, i) => {
            expect(v.createdMs).toBe(T0 + (i + 1) * 30 * DAY);
            expect(v.attributes.expiresMs).toBe(v.createdMs + 365 * DAY);
          });
        },
      ),
      { numRuns: 10 },
    );
  });

  it("the same year replayed from a snapshot midway gives the same versions (the state is one value)", () => {
    const store = runYear(new Set([100, 2000]), "P30D", 200 * 24);
    const restored = KeyStore.restore(store.snapshot());
    expect(restored.listVersions("k")).toEqual(store.listVersions("k"));
    expect(restored.rotationPolicy("k")).toEqual(store.rotationPolicy("k"));
    expect(restored.dueRotations(T0 + 210 * DAY)).toEqual([{ name: "k", basedOnVersion: 7 }]);
  });
});
