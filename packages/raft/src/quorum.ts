/**
 * Majority arithmetic over a set of voters. Pure functions so the commit rule and
 * the vote tally can be property-tested against a brute-force model.
 */

/** Number of voters that form a majority. */
export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest index that a majority of voters has (the majority-th largest match).
 * With no voters there is no quorum, so nothing can be committed: returns 0.
 */
export function quorumMatchIndex(matches: readonly number[]): number {
  if (matches.length === 0) return 0;
  const sorted = [...matches].sort((a, b) => b - a);
  return sorted[majority(matches.length) - 1]!;
}

export type VoteResult = "won" | "lost" | "pending";

/** Tally of votes cast by `voters` (absent = not yet answered). */
export function voteResult(voters: readonly string[], votes: ReadonlyMap<string, boolean>): VoteResult {
  if (voters.length === 0) return "lost";
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const need = majority(voters.length);
  if (granted >= need) return "won";
  if (voters.length - rejected < need) return "lost";
  return "pending";
}

/**
 * The leader's commit rule (Raft §5.3/§5.4.2): the new commit index is the largest
 * index stored on a majority of voters, but only if that entry is from the current
 * term; otherwise the commit index stays put. (Terms never decrease along the log,
 * so no lower index could qualify either.) `anyTerm` is the deliberately unsafe
 * Figure-8 variant for checker self-tests.
 */
export function leaderCommitIndex(
  voterMatches: readonly number[],
  termAt: (index: number) => number,
  currentTerm: number,
  committed: number,
  anyTerm = false,
): number {
  const index = quorumMatchIndex(voterMatches);
  if (index > committed && (anyTerm || termAt(index) === currentTerm)) return index;
  return committed;
}
