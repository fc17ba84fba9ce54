import { fail } from "@hsmpool/errors";
import type { ConfChange, ConfState } from "./types.js";

/** Sorted copy, so a ConfState has one canonical form (deterministic output, easy comparison). */
export function normalizeConf(c: ConfState): ConfState {
  return { voters: [...new Set(c.voters)].sort(), learners: [...new Set(c.learners)].sort() };
}

export function isVoter(c: ConfState, id: string): boolean {
  return c.voters.includes(id);
}

export function isMember(c: ConfState, id: string): boolean {
  return c.voters.includes(id) || c.learners.includes(id);
}

/**
 * Why `cc` may not be proposed against `conf`, or null if it may. Every accepted
 * change moves at most one voter, which is what keeps single-step changes safe
 * (any two adjacent configurations share a majority).
 */
export function confChangeProblem(conf: ConfState, cc: ConfChange): string | null {
  if (typeof cc.node !== "string" || cc.node.length === 0)
    return "conf change node must be a non-empty node id";
  switch (cc.type) {
    case "addVoter":
      return isVoter(conf, cc.node) ? `${cc.node} is already a voter` : null;
    case "addLearner":
      if (conf.learners.includes(cc.node)) return `${cc.node} is already a learner`;
      if (isVoter(conf, cc.node) && conf.voters.length === 1)
        return `cannot demote ${cc.node}, the only voter`;
      return null;
    case "removeNode":
      if (!isMember(conf, cc.node)) return `${cc.node} is not a member`;
      if (conf.voters.length === 1 && isVoter(conf, cc.node))
        return `cannot remove ${cc.node}, the only voter`;
      return null;
    default:
      return `unknown conf change type ${String((cc as { type: unknown }).type)}`;
  }
}

/**
 * The membership after applying `cc`. addVoter promotes a learner; addLearner on a
 * voter demotes it; removeNode drops it from both lists. Throws BadParameter for a
 * change that confChangeProblem() refuses (the leader never commits such a change).
 */
export function applyToConf(conf: ConfState, cc: ConfChange): ConfState {
  const problem = confChangeProblem(conf, cc);
  if (problem !== null) fail("BadParameter", `conf change refused: ${problem}`, { change: { ...cc } });
  const voters = conf.voters.filter((id) => id !== cc.node);
  const learners = conf.learners.filter((id) => id !== cc.node);
  if (cc.type === "addVoter") voters.push(cc.node);
  if (cc.type === "addLearner") learners.push(cc.node);
  return normalizeConf({ voters, learners });
}
