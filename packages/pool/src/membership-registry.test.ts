/**
 * The member registry (healing): RegisterMember records how to reach a member, a
 * removal forgets it and bars its id for good, and snapshots carry both — as version 2
 * only when there is something to carry, so a pool that never healed keeps its bytes.
 */
import { encodeConfChange } from "@hsmpool/raft";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { frame } from "./frame.js";
import {
  decodeCommand,
  encodeCommand,
  KeyStore,
  type PoolCommand,
  type RegisterMemberCommand,
  SNAPSHOT_FORMAT,
  validateCommand,
} from "./index.js";
import * as arb from "./testing/arbitraries.js";
import { EntryFeed, genesisCommand, thrown } from "./testing/fixtures.js";

const NOW = 1_700_000_000_000;

function register(memberId: string, overrides: Partial<RegisterMemberCommand> = {}): RegisterMemberCommand {
  return {
    kind: "registerMember",
    memberId,
    peerAddress: "127.0.0.1:7104",
    dataAddress: "127.0.0.1:7204",
    svn: 1,
    replaces: [],
    at: NOW,
    ...overrides,
  };
}

const GENESIS = genesisCommand("pool-1", "n1");

function pool() {
  const store = new KeyStore({ poolId: "pool-1" });
  const feed = new EntryFeed();
  const apply = (c: PoolCommand) => store.apply(feed.next(c)).outcome;
  const remove = (node: string) =>
    store.apply({
      term: 1,
      index: feed.skip(),
      type: "confChange",
      data: encodeConfChange({ type: "removeNode", node }),
    }).outcome;
  apply(GENESIS);
  return { store, apply, remove };
}

function refusedField(fn: () => unknown, field: string): void {
  expect(thrown(fn, "BadParameter").details).toMatchObject({ field });
}

describe("RegisterMember command", () => {
  it("round-trips through the log codec", () => {
    fc.assert(
      fc.property(arb.registerMember, (c) => {
        expect(decodeCommand(encodeCommand(c))).toEqual(validateCommand(c));
      }),
      { numRuns: 200 },
    );
  });

  it("refuses bad addresses, SVNs and replace lists naming the field", () => {
    refusedField(() => encodeCommand(register("n4", { peerAddress: "localhost" })), "peerAddress");
    refusedField(() => encodeCommand(register("n4", { dataAddress: "h:70000" })), "dataAddress");
    refusedField(() => encodeCommand(register("n4", { svn: 65536 })), "svn");
    refusedField(() => encodeCommand(register("n4", { svn: 1.5 })), "svn");
    refusedField(() => encodeCommand(register("n4", { replaces: ["n4"] })), "replaces");
    refusedField(() => encodeCommand(register("n4", { replaces: ["n2", "n2"] })), "replaces");
    refusedField(() => encodeCommand(register("n4", { replaces: ["bad id"] })), "replaces[0]");
  });
});

describe("KeyStore member registry", () => {
  it("records a member; re-registering updates its addresses and keeps its first registration time", () => {
    const { store, apply } = pool();
    expect(apply(register("n4", { replaces: ["n2"] }))).toMatchObject({
      kind: "memberRegistered",
      member: { memberId: "n4", replaces: ["n2"], svn: 1 },
    });
    apply(register("n4", { peerAddress: "127.0.0.1:9000", at: NOW + 5 }));
    expect(store.registeredMember("n4")).toEqual({
      memberId: "n4",
      peerAddress: "127.0.0.1:9000",
      dataAddress: "127.0.0.1:7204",
      svn: 1,
      replaces: [],
      registeredMs: NOW,
    });
    expect(store.registeredMembers().map((m) => m.memberId)).toEqual(["n4"]);
  });

  it("a removal forgets the member and its id can never register again", () => {
    const { store, apply, remove } = pool();
    apply(register("n4"));
    remove("n4");
    remove("n2");
    expect(store.registeredMember("n4")).toBeNull();
    expect(store.wasRemoved("n4")).toBe(true);
    expect(store.wasRemoved("n2")).toBe(true);
    expect(store.wasRemoved("n3")).toBe(false);
    const again = apply(register("n2"));
    expect(again).toMatchObject({ kind: "rejected", command: "registerMember", error: { code: "Conflict" } });
    expect(store.registeredMember("n2")).toBeNull();
  });

  it("snapshots stay version 1 (same bytes as before) until a member is registered or removed", () => {
    const { store, apply, remove } = pool();
    const v1 = store.snapshot();
    expect(v1[4]).toBe(SNAPSHOT_FORMAT.version);
    apply(register("n4", { replaces: ["n2"] }));
    remove("n2");
    const v2 = store.snapshot();
    expect(v2[4]).toBe(2);
    const restored = KeyStore.restore(v2);
    expect(restored.snapshot()).toEqual(v2);
    expect(restored.registeredMembers()).toEqual(store.registeredMembers());
    expect(restored.wasRemoved("n2")).toBe(true);
    expect(KeyStore.restore(v1).registeredMembers()).toEqual([]);
  });

  it("rejects corrupt version-2 snapshots: flipped bytes, truncation, an id both registered and removed", () => {
    const { store, apply, remove } = pool();
    apply(register("n5"));
    remove("n2");
    const bytes = store.snapshot();
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (at, mask) => {
        const corrupt = Uint8Array.from(bytes);
        corrupt[at % bytes.length] = (corrupt[at % bytes.length] ?? 0) ^ mask;
        thrown(() => KeyStore.restore(corrupt), "IntegrityError");
        thrown(() => KeyStore.restore(bytes.subarray(0, at % bytes.length)), "IntegrityError");
      }),
      { numRuns: 100 },
    );
    // Re-frame a payload whose removed list names the registered member (valid checksum).
    // The removed list ends the payload: its last two bytes are "n2"; make them "n5".
    const forged = Uint8Array.from(bytes.subarray(5, bytes.length - 8));
    expect(new TextDecoder().decode(forged.subarray(forged.length - 2))).toBe("n2");
    forged.set(new TextEncoder().encode("n5"), forged.length - 2);
    thrown(() => KeyStore.restore(frame({ ...SNAPSHOT_FORMAT, version: 2 }, forged)), "IntegrityError");
  });

  it("property: replicas applying the same registrations and removals hold byte-identical snapshots", () => {
    const ids = fc.constantFrom("n2", "n3", "n4", "n5");
    const step = fc.oneof(
      arb.registerMember.chain((c) => ids.map((memberId) => ({ ...c, memberId, replaces: [] }))),
      ids.map((id) => ({ remove: id })),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 20 }), (steps) => {
        const a = pool();
        const b = pool();
        const model = new Map<string, string>();
        const removed = new Set<string>();
        for (const s of steps) {
          for (const p of [a, b]) {
            if ("remove" in s) p.remove(s.remove);
            else p.apply(s);
          }
          if ("remove" in s) {
            model.delete(s.remove);
            removed.add(s.remove);
          } else if (!removed.has(s.memberId)) model.set(s.memberId, s.peerAddress);
        }
        expect(a.store.snapshot()).toEqual(b.store.snapshot());
        const restored = KeyStore.restore(a.store.snapshot());
        expect(
          Object.fromEntries(restored.registeredMembers().map((m) => [m.memberId, m.peerAddress])),
        ).toEqual(Object.fromEntries(model));
      }),
      { numRuns: 100 },
    );
  });
});
