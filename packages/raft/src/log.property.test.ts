import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RaftLog } from "./log.js";
import { MemoryStorage } from "./storage.js";
import type { Entry } from "./types.js";

/**
 * Property: a follower's RaftLog, fed MsgApp slices from a succession of leaders
 * (with persistence and compaction at arbitrary points), always equals a model
 * written straight from the paper's AppendEntries rules on a plain array.
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

interface ModelEntry {
  term: number;
  data: string;
}

type Op =
  | { kind: "newLeader"; keep: number; add: number }
  | { kind: "extend"; add: number }
  | { kind: "leaderCommit"; upTo: number }
  | { kind: "send"; from: number; count: number; prevTermLie: boolean }
  | { kind: "persist" }
  | { kind: "compact"; at: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("newLeader" as const), keep: fc.nat(40), add: fc.nat(5) }),
  fc.record({ kind: fc.constant("extend" as const), add: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ kind: fc.constant("leaderCommit" as const), upTo: fc.nat(40) }),
  fc.record({
    kind: fc.constant("send" as const),
    from: fc.nat(40),
    count: fc.nat(6),
    prevTermLie: fc.boolean(),
  }),
  fc.record({ kind: fc.constant("persist" as const) }),
  fc.record({ kind: fc.constant("compact" as const), at: fc.nat(40) }),
);

function toEntry(e: ModelEntry, index: number): Entry {
  return { term: e.term, index, type: "normal", data: enc.encode(e.data) };
}

/** AppendEntries receiver rules (Figure 2) on an array; index i lives at model[i-1]. */
function modelAppend(
  model: ModelEntry[],
  prev: number,
  prevTerm: number,
  ents: ModelEntry[],
): { ok: boolean; model: ModelEntry[] } {
  const termAt = (i: number) => (i === 0 ? 0 : model[i - 1]?.term);
  if (termAt(prev) !== prevTerm) return { ok: false, model };
  const next = [...model];
  for (let k = 0; k < ents.length; k++) {
    const index = prev + 1 + k;
    if (next[index - 1]?.term === ents[k]!.term) continue;
    next.length = index - 1; // delete the conflicting entry and all that follow it
    next.push(...ents.slice(k));
    break;
  }
  return { ok: true, model: next };
}

describe("RaftLog against a model of the AppendEntries rules", () => {
  it("follower log, commit index and accept/reject decisions match the model", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const storage = new MemoryStorage();
        const log = new RaftLog(storage);
        let model: ModelEntry[] = [];
        let modelCommit = 0;
        // The current leader's log; entries up to leaderCommitIndex are committed forever.
        let term = 1;
        let leader: ModelEntry[] = [];
        let leaderCommitIndex = 0;
        let generation = 0;
        const fresh = (n: number) =>
          Array.from({ length: n }, (_, k) => ({
            term,
            data: `g${generation}-t${term}-${leader.length + k + 1}`,
          }));

        for (const op of ops) {
          switch (op.kind) {
            case "newLeader": {
              // A newer term; it must hold every committed entry, may lack uncommitted ones.
              term++;
              generation++;
              const keep = Math.min(leader.length, leaderCommitIndex + op.keep);
              leader = leader.slice(0, keep);
              leader = leader.concat(fresh(op.add));
              break;
            }
            case "extend":
              leader = leader.concat(fresh(op.add));
              break;
            case "leaderCommit":
              leaderCommitIndex = Math.max(leaderCommitIndex, Math.min(op.upTo, leader.length));
              break;
            case "send": {
              const prev = Math.min(op.from, leader.length);
              // The raft core answers a MsgApp below its commit index without touching the log.
              if (prev < log.committed) break;
              const ents = leader.slice(prev, prev + op.count);
              const realPrevTerm = prev === 0 ? 0 : leader[prev - 1]!.term;
              const prevTerm = op.prevTermLie && prev > 0 ? realPrevTerm + 100 : realPrevTerm;
              const expected = modelAppend(model, prev, prevTerm, ents);
              // The leader sends its whole commit index; the follower may only commit
              // what this message proved it shares with the leader (up to prev + ents).
              const got = log.maybeAppend(
                prev,
                prevTerm,
                leaderCommitIndex,
                ents.map((e, k) => toEntry(e, prev + 1 + k)),
              );
              expect(got !== null).toBe(expected.ok);
              if (expected.ok) {
                expect(got).toBe(prev + ents.length);
                model = expected.model;
                modelCommit = Math.max(modelCommit, Math.min(leaderCommitIndex, prev + ents.length));
              }
              break;
            }
            case "persist": {
              const { entries } = log.unstable();
              storage.append(entries);
              const last = entries[entries.length - 1];
              if (last) log.stableTo(last.index, last.term);
              break;
            }
            case "compact": {
              const at = Math.min(op.at, log.committed, storage.lastIndex());
              if (at > storage.firstIndex() - 1) storage.compact(at);
              break;
            }
          }
          // Whole-log comparison after every step.
          expect(log.lastIndex()).toBe(model.length);
          expect(log.committed).toBe(modelCommit);
          const first = log.firstIndex();
          const ents = log.entries(first);
          expect(ents.map((e) => [e.index, e.term, dec.decode(e.data)])).toEqual(
            model.slice(first - 1).map((e, k) => [first + k, e.term, e.data]),
          );
          for (let i = first; i <= model.length; i++) expect(log.term(i)).toBe(model[i - 1]!.term);
          // The committed prefix always agrees with the leader that committed it.
          for (let i = 1; i <= Math.min(modelCommit, leaderCommitIndex); i++) {
            expect(model[i - 1]).toEqual(leader[i - 1]);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("findConflictByTerm returns the last index at or below `index` whose term is <= `term`", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 30 }),
        fc.nat(35),
        fc.nat(6),
        (increments, index, term) => {
          // A log's terms never decrease: build them from non-negative increments.
          const storage = new MemoryStorage();
          let t = 0;
          const terms = increments.map((inc) => {
            t += inc % 2 === 0 ? 0 : inc;
            return t;
          });
          storage.append(
            terms.map((tm, k) => ({
              term: Math.max(tm, 1),
              index: k + 1,
              type: "normal",
              data: enc.encode(""),
            })),
          );
          const log = new RaftLog(storage);
          const at = Math.min(index, log.lastIndex());
          const [j, jt] = log.findConflictByTerm(at, term);
          expect(j).toBeLessThanOrEqual(at);
          if (j > 0) {
            expect(jt).toBe(log.term(j));
            expect(jt).toBeLessThanOrEqual(term);
          }
          for (let k = j + 1; k <= at; k++) expect(log.term(k)).toBeGreaterThan(term);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("the voting rule: up to date means a higher last term, or the same term and at least as long", () => {
    fc.assert(
      fc.property(fc.nat(5), fc.nat(10), fc.nat(5), fc.nat(10), (ourTerm, ourLen, theirTerm, theirIndex) => {
        const storage = new MemoryStorage();
        const len = ourTerm === 0 ? 0 : ourLen;
        storage.append(
          Array.from({ length: len }, (_, k) => ({
            term: ourTerm,
            index: k + 1,
            type: "normal",
            data: enc.encode(""),
          })),
        );
        const log = new RaftLog(storage);
        const want =
          theirTerm > log.lastTerm() || (theirTerm === log.lastTerm() && theirIndex >= log.lastIndex());
        expect(log.isUpToDate(theirIndex, theirTerm)).toBe(want);
      }),
    );
  });
});

describe("RaftLog invariants", () => {
  it("refuses to overwrite a committed entry", () => {
    const storage = new MemoryStorage();
    const log = new RaftLog(storage);
    log.append([1, 2, 3].map((i) => ({ term: 1, index: i, type: "normal" as const, data: enc.encode("") })));
    log.commitTo(2);
    expect(() => log.append([{ term: 2, index: 2, type: "normal", data: enc.encode("") }])).toThrow(
      /raft invariant: append at 2 would overwrite committed 2/,
    );
    expect(log.lastIndex()).toBe(3);
  });

  it("refuses to commit beyond the last index, and never moves commit backwards", () => {
    const log = new RaftLog(new MemoryStorage());
    log.append([{ term: 1, index: 1, type: "normal", data: enc.encode("") }]);
    expect(() => log.commitTo(2)).toThrow(/raft invariant: commit 2 beyond last index 1/);
    log.commitTo(1);
    log.commitTo(0);
    expect(log.committed).toBe(1);
  });

  it("keeps an overwritten entry unstable when a late persist report names the old term", () => {
    const storage = new MemoryStorage();
    const log = new RaftLog(storage);
    log.append([{ term: 1, index: 1, type: "normal", data: enc.encode("a") }]);
    // The entry is replaced (term 2) before the application reports persisting the term-1 one.
    log.append([{ term: 2, index: 1, type: "normal", data: enc.encode("b") }]);
    log.stableTo(1, 1);
    expect(log.unstable().entries.map((e) => e.term)).toEqual([2]);
  });
});
