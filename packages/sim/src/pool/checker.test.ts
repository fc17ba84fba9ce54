import { Prng } from "@hsmpool/faults";
import { foundingKeyStoreData } from "@hsmpool/node";
import { KeyStore, type SingleKeyResult } from "@hsmpool/pool";
import { describe, expect, it } from "vitest";
import { type MemberView, PoolChecker, PoolInvariantViolation } from "./checker.js";
import { SimHsmFabric, SimPartition } from "./sim-hsm.js";
import type { ClientOp, KeyOpKind, OpStatus } from "./workload.js";

/** The history half of the pool checker, on hand-made histories. */

let nextId = 1;
function op(
  kind: KeyOpKind,
  callUs: number,
  status: OpStatus,
  returnUs: number | null,
  result: SingleKeyResult | null,
): ClientOp {
  const id = nextId++;
  return {
    id,
    client: 1,
    kind,
    name: "k",
    requestId: kind === "create" || kind === "delete" ? `req-${id}` : null,
    member: "n1",
    callUs,
    status,
    returnUs,
    result,
    refusal: null,
  };
}

function checker(): PoolChecker {
  return new PoolChecker("p", new SimHsmFabric());
}

function created(c: PoolChecker, index: number, o: ClientOp, version: number, atUs: number): void {
  c.observeApplied(
    index,
    { kind: "keyCreated", requestId: o.requestId!, name: o.name, version, duplicate: false },
    atUs,
  );
}

function violation(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof PoolInvariantViolation) return e.invariant;
    throw e;
  }
  return "none";
}

const emptyViews: MemberView[] = [];

describe("pool history checker", () => {
  it("places an unanswered create that committed no later than its first apply", async () => {
    const c = checker();
    const create = op("create", 0, "unknown", null, null);
    created(c, 2, create, 1, 5);
    const sawIt = op("get", 6, "ok", 7, 1);
    expect(violation(() => c.finalCheck([create, sawIt], emptyViews, false))).toBe("none");
    const c2 = checker();
    created(c2, 2, create, 1, 5);
    const missedIt = op("get", 6, "ok", 7, "notFound");
    expect(violation(() => c2.finalCheck([create, missedIt], emptyViews, false))).toBe(
      "linearizable-key-store",
    );
  });

  it("treats an unanswered create that never committed as never having happened", async () => {
    const create = op("create", 0, "unknown", null, null);
    expect(
      violation(() => checker().finalCheck([create, op("get", 6, "ok", 7, "notFound")], emptyViews, false)),
    ).toBe("none");
    expect(violation(() => checker().finalCheck([create, op("get", 6, "ok", 7, 1)], emptyViews, false))).toBe(
      "linearizable-key-store",
    );
  });

  it("rejects a read that misses an acknowledged create (a stale read)", async () => {
    const c = checker();
    const create = op("create", 0, "ok", 2, 1);
    created(c, 2, create, 1, 1);
    expect(
      violation(() => c.finalCheck([create, op("sign", 3, "ok", 4, "notFound")], emptyViews, false)),
    ).toBe("linearizable-key-store");
  });

  it("ignores refused operations and reads without an answer", async () => {
    const c = checker();
    const refused = op("create", 0, "refused", null, null);
    const lostRead = op("get", 1, "unknown", null, null);
    expect(
      violation(() =>
        c.finalCheck([refused, lostRead, op("get", 2, "ok", 3, "notFound")], emptyViews, false),
      ),
    ).toBe("none");
  });

  it("flags an acknowledged create that never committed, or committed as another version", async () => {
    const never = op("create", 0, "ok", 2, 1);
    expect(violation(() => checker().finalCheck([never], emptyViews, false))).toBe("acked-create-kept");
    const c = checker();
    const other = op("create", 0, "ok", 2, 1);
    created(c, 2, other, 2, 1);
    expect(violation(() => c.finalCheck([other], emptyViews, false))).toBe("acked-create-kept");
  });

  it("requires an acknowledged create on every store after healing, unless a later delete removed it", async () => {
    const fabric = new SimHsmFabric();
    const view = (appliedThrough: number): MemberView => {
      const store = KeyStore.restore(foundingKeyStoreData("p"), { poolId: "p" });
      for (let i = 2; i <= appliedThrough; i++)
        store.apply({ index: i, term: 1, type: "normal", data: new Uint8Array() });
      return {
        id: "n2",
        ownership: null,
        partition: new SimPartition("n2", fabric, Prng.fromSeed(1)),
        store,
      };
    };
    const create = op("create", 0, "ok", 2, 1);
    const run = (views: MemberView[], caughtUp: boolean, deleted: boolean) => {
      const c = checker();
      created(c, 2, create, 1, 1);
      if (deleted) {
        c.observeApplied(
          3,
          { kind: "keyDeleted", requestId: "req-del", name: "k", versions: [1], duplicate: false },
          3,
        );
      }
      return violation(() => c.finalCheck([create], views, caughtUp));
    };
    // The store applied index 2..3 but holds no key k: the acknowledged create is lost there.
    expect(run([view(3)], true, false)).toBe("acked-create-kept");
    // Behind after healing: it lacks the create.
    expect(run([view(1)], true, false)).toBe("acked-create-kept");
    // Behind but the run never healed long enough to require catching up.
    expect(run([view(1)], false, false)).toBe("none");
    // A delete committed after the create: its absence is correct.
    expect(run([view(3)], true, true)).toBe("none");
  });
});
