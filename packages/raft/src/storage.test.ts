import { isHsmPoolError } from "@hsmpool/errors";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeConfChange, encodeConfChange } from "./confchange-codec.js";
import { isStorageError, limitSize, MemoryStorage } from "./storage.js";
import type { ConfChange, Entry } from "./types.js";

const enc = new TextEncoder();
const e = (index: number, term: number, data = ""): Entry => ({
  index,
  term,
  type: "normal",
  data: enc.encode(data),
});

function kind(f: () => unknown): string {
  try {
    f();
    return "ok";
  } catch (err) {
    return isStorageError(err) ? err.kind : "other";
  }
}

describe("MemoryStorage", () => {
  it("a founding member starts from a snapshot at index 1 holding the membership", () => {
    const s = new MemoryStorage({ voters: ["n1", "n2"], learners: ["n3"] });
    expect(s.firstIndex()).toBe(2);
    expect(s.lastIndex()).toBe(1);
    expect(s.term(1)).toBe(1);
    expect(s.initialState()).toEqual({
      hardState: { term: 1, vote: null, commit: 1 },
      conf: { voters: ["n1", "n2"], learners: ["n3"] },
    });
  });

  it("a blank node has nothing and knows no members", () => {
    const s = new MemoryStorage();
    expect([s.firstIndex(), s.lastIndex(), s.term(0)]).toEqual([1, 0, 0]);
    expect(s.initialState().conf).toEqual({ voters: [], learners: [] });
  });

  it("reports compacted and unavailable indexes with typed errors", () => {
    const s = new MemoryStorage();
    s.append([e(1, 1), e(2, 1), e(3, 2)]);
    s.compact(2);
    expect(kind(() => s.term(1))).toBe("compacted");
    expect(s.term(2)).toBe(1);
    expect(kind(() => s.term(4))).toBe("unavailable");
    expect(kind(() => s.entries(2, 4))).toBe("compacted");
    expect(kind(() => s.entries(3, 5))).toBe("unavailable");
    expect(s.entries(3, 4).map((x) => x.term)).toEqual([2]);
    expect(kind(() => s.compact(2))).toBe("compacted");
  });

  it("append overwrites a conflicting suffix and refuses a gap", () => {
    const s = new MemoryStorage();
    s.append([e(1, 1), e(2, 1), e(3, 1)]);
    s.append([e(2, 2, "x")]);
    expect(s.lastIndex()).toBe(2);
    expect(s.term(2)).toBe(2);
    expect(() => s.append([e(5, 2)])).toThrow(/raft invariant: missing log entry/);
    expect(s.lastIndex()).toBe(2);
  });

  it("snapshots: create at an index, refuse older ones, install from a leader", () => {
    const s = new MemoryStorage({ voters: ["n1"], learners: [] });
    s.append([e(2, 2), e(3, 2)]);
    const snap = s.createSnapshot(3, { voters: ["n1"], learners: [] }, enc.encode("state"));
    expect(snap.meta).toEqual({ index: 3, term: 2, conf: { voters: ["n1"], learners: [] } });
    expect(kind(() => s.createSnapshot(2, { voters: ["n1"], learners: [] }, enc.encode("")))).toBe(
      "compacted",
    );
    const other = new MemoryStorage();
    other.append([e(1, 1)]);
    other.applySnapshot(snap);
    expect([other.firstIndex(), other.lastIndex(), other.term(3)]).toEqual([4, 3, 2]);
    expect(kind(() => other.applySnapshot({ ...snap, meta: { ...snap.meta, index: 2 } }))).toBe("compacted");
  });

  it("matches a plain-array model under any mix of append, compact and reads", () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("append" as const),
        at: fc.nat(30),
        n: fc.integer({ min: 1, max: 4 }),
        t: fc.nat(3),
      }),
      fc.record({ kind: fc.constant("compact" as const), at: fc.nat(30) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const s = new MemoryStorage();
        let model: number[] = []; // model[i-1] = term of index i
        let first = 1;
        for (const o of ops) {
          if (o.kind === "append") {
            const at = Math.max(first, Math.min(o.at, model.length + 1));
            const prevTerm = model[at - 2] ?? 0;
            const ents = Array.from({ length: o.n }, (_, k) => e(at + k, prevTerm + o.t));
            s.append(ents);
            model = model.slice(0, at - 1).concat(ents.map((x) => x.term));
          } else if (o.at >= first && o.at <= model.length) {
            s.compact(o.at);
            first = o.at + 1;
          }
          expect(s.firstIndex()).toBe(first);
          expect(s.lastIndex()).toBe(model.length);
          for (let i = first; i <= model.length; i++) expect(s.term(i)).toBe(model[i - 1]);
          if (first <= model.length) {
            expect(s.entries(first, model.length + 1).map((x) => x.term)).toEqual(model.slice(first - 1));
          }
        }
      }),
    );
  });

  it("size limits always return at least one entry, and never exceed the budget beyond that", () => {
    const ents = [e(1, 1, "aaaa"), e(2, 1, "bbbb"), e(3, 1, "cccc")];
    expect(limitSize(ents, 1)).toHaveLength(1);
    expect(limitSize(ents, 2 * 28)).toHaveLength(2);
    expect(limitSize(ents, undefined)).toHaveLength(3);
  });
});

describe("conf change codec", () => {
  it("round-trips every valid change", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<ConfChange["type"]>("addVoter", "addLearner", "removeNode"),
        fc.string({ minLength: 1 }),
        (type, node) => {
          expect(decodeConfChange(encodeConfChange({ type, node }))).toEqual({ type, node });
        },
      ),
    );
  });

  it("rejects garbage with BadParameter", () => {
    for (const bad of [
      "",
      "{",
      "null",
      '{"type":"addVoter"}',
      '{"type":"grow","node":"n1"}',
      '{"type":"addVoter","node":""}',
    ]) {
      let err: unknown;
      try {
        decodeConfChange(enc.encode(bad));
      } catch (x) {
        err = x;
      }
      expect(isHsmPoolError(err, "BadParameter"), bad).toBe(true);
    }
  });
});
