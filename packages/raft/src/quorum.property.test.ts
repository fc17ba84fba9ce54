import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { leaderCommitIndex, majority, quorumMatchIndex, voteResult } from "./quorum.js";

/**
 * The commit rule and the vote tally against brute-force models written from the
 * definitions ("largest index replicated on a majority whose term is current").
 */

/** A leader's log as a list of non-decreasing terms (index i has terms[i-1]), ending in the current term or below. */
const leaderLogArb = fc
  .tuple(fc.array(fc.nat(2), { minLength: 1, maxLength: 25 }), fc.nat(2))
  .map(([steps, extra]) => {
    let t = 1;
    const terms = steps.map((s) => {
      t += s;
      return t;
    });
    return { terms, currentTerm: t + extra };
  });

function modelCommit(matches: number[], terms: number[], currentTerm: number, committed: number): number {
  let best = committed;
  for (let n = committed + 1; n <= terms.length; n++) {
    const replicas = matches.filter((m) => m >= n).length;
    if (replicas >= Math.floor(matches.length / 2) + 1 && terms[n - 1] === currentTerm) best = n;
  }
  return best;
}

describe("commit rule", () => {
  it("commit index = largest index on a majority whose entry is from the current term (else unchanged)", () => {
    fc.assert(
      fc.property(
        leaderLogArb,
        fc.array(fc.nat(30), { minLength: 1, maxLength: 7 }),
        fc.nat(30),
        ({ terms, currentTerm }, rawMatches, rawCommitted) => {
          const last = terms.length;
          // The leader (first voter) has its whole log; followers have some prefix.
          const matches = [last, ...rawMatches.slice(1).map((m) => Math.min(m, last))];
          const committed = Math.min(rawCommitted, last);
          const termAt = (i: number) => (i === 0 ? 0 : terms[i - 1]!);
          expect(leaderCommitIndex(matches, termAt, currentTerm, committed)).toBe(
            modelCommit(matches, terms, currentTerm, committed),
          );
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("an old-term entry on every voter is still not committed by counting", () => {
    const terms = [1, 2, 2];
    expect(leaderCommitIndex([3, 3, 3], (i) => terms[i - 1] ?? 0, 3, 1)).toBe(1);
    // The deliberately unsafe Figure-8 variant does commit it.
    expect(leaderCommitIndex([3, 3, 3], (i) => terms[i - 1] ?? 0, 3, 1, true)).toBe(3);
  });

  it("the quorum match index is replicated on a majority, and no larger index is", () => {
    fc.assert(
      fc.property(fc.array(fc.nat(50), { minLength: 1, maxLength: 9 }), (matches) => {
        const q = quorumMatchIndex(matches);
        const need = majority(matches.length);
        expect(matches.filter((m) => m >= q).length).toBeGreaterThanOrEqual(need);
        expect(matches.filter((m) => m >= q + 1).length).toBeLessThan(need);
      }),
    );
  });

  it("with no voters nothing commits", () => {
    expect(quorumMatchIndex([])).toBe(0);
  });
});

describe("vote tally", () => {
  it("won iff a majority granted, lost iff a majority can no longer grant", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(true, false, undefined), { minLength: 1, maxLength: 9 }),
        (answers) => {
          const voters = answers.map((_, i) => `n${i}`);
          const votes = new Map<string, boolean>();
          answers.forEach((a, i) => {
            if (a !== undefined) votes.set(`n${i}`, a);
          });
          const granted = answers.filter((a) => a === true).length;
          const open = answers.filter((a) => a === undefined).length;
          const need = Math.floor(voters.length / 2) + 1;
          const want = granted >= need ? "won" : granted + open < need ? "lost" : "pending";
          expect(voteResult(voters, votes)).toBe(want);
        },
      ),
    );
  });

  it("votes from non-voters (learners, strangers) do not count", () => {
    const votes = new Map([
      ["n1", true],
      ["n4", true],
      ["n5", true],
    ]);
    expect(voteResult(["n1", "n2", "n3"], votes)).toBe("pending");
  });
});
