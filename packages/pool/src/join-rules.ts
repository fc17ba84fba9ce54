/**
 * The primary's membership decisions for healing, as pure functions of what it knows
 * (Raft membership, the replicated member registry, replication progress): whether to
 * admit a joiner, and which single membership change to propose next. The shell
 * (membership-driver.ts) feeds them and carries the answers out; Raft refuses a second
 * change while one is pending, so one change at a time holds even across leader changes.
 */
import type { ErrorCode } from "@hsmpool/errors";
import type { ConfChange, ConfState, ProgressStatus } from "@hsmpool/raft";
import type { RegisteredMember } from "./keystore-state.js";

/** A learner is promoted once its log is at most this many entries behind the primary's. */
export const DEFAULT_PROMOTION_LAG_ENTRIES = 16;

export interface JoinRequest {
  nodeId: string;
  peerAddress: string;
  dataAddress: string;
  /** The member the joiner replaces, if any. */
  replaces: string | null;
}

export interface MembershipView {
  selfId: string;
  conf: ConfState;
  /** The replicated registry (RegisterMember records), any order. */
  registered: readonly RegisteredMember[];
  wasRemoved: (id: string) => boolean;
  /** The attested SVN of a member when this node knows it (registry, its own, a verified connection). */
  svnOf: (id: string) => number | null;
}

export type JoinDecision =
  /** Already registered with these addresses: nothing to write; the joiner just waits. */
  | { kind: "accept"; member: boolean }
  /** Record the joiner (or its new addresses) in the log. */
  | {
      kind: "register";
      memberId: string;
      peerAddress: string;
      dataAddress: string;
      svn: number;
      replaces: string[];
    }
  | { kind: "refuse"; code: ErrorCode; message: string };

const isMember = (conf: ConfState, id: string) => conf.voters.includes(id) || conf.learners.includes(id);

const describeMembers = (conf: ConfState) =>
  [...conf.voters, ...conf.learners.map((id) => `${id} (learner)`)].join(", ") || "none";

/**
 * The lowest SVN among the current voters whose SVN is known (this node's own always
 * is). A joiner below it would lower the code level the pool runs at: refused, whatever
 * the joiner's or the members' TLS policies admit.
 */
export function poolSvnFloor(view: MembershipView): number {
  const known = view.conf.voters.map((id) => view.svnOf(id)).filter((svn): svn is number => svn !== null);
  const own = view.svnOf(view.selfId);
  if (own !== null) known.push(own);
  return known.length === 0 ? 0 : Math.min(...known);
}

/** Should the primary admit `request` from a peer whose attestation proved `joinerSvn`? */
export function decideJoin(view: MembershipView, request: JoinRequest, joinerSvn: number): JoinDecision {
  const { conf } = view;
  const id = request.nodeId;
  if (id === view.selfId)
    return { kind: "refuse", code: "Conflict", message: `${id} is the primary's own node id` };
  if (view.wasRemoved(id)) {
    return {
      kind: "refuse",
      code: "Conflict",
      message: `node id ${id} was removed from the pool; a replacement needs a new id`,
    };
  }
  const existing = view.registered.find((m) => m.memberId === id) ?? null;
  const sameAddresses =
    existing !== null &&
    existing.peerAddress === request.peerAddress &&
    existing.dataAddress === request.dataAddress;
  const sameIntent = existing !== null && (existing.replaces[0] ?? null) === request.replaces;
  if (sameAddresses && sameIntent) return { kind: "accept", member: isMember(conf, id) };
  if (isMember(conf, id) && existing === null) {
    return {
      kind: "refuse",
      code: "Conflict",
      message: `${id} is already a member of the pool; a replacement needs a new node id`,
    };
  }
  if (request.replaces !== null && !sameIntent) {
    if (request.replaces === id)
      return { kind: "refuse", code: "BadParameter", message: `${id} cannot replace itself` };
    if (!isMember(conf, request.replaces)) {
      return {
        kind: "refuse",
        code: "Conflict",
        message: `cannot replace ${request.replaces}: it is not a member of the pool (members: ${describeMembers(conf)})`,
      };
    }
  }
  const floor = poolSvnFloor(view);
  if (joinerSvn < floor) {
    return {
      kind: "refuse",
      code: "Forbidden",
      message: `downgrade refused: ${id} runs SVN ${joinerSvn}, below SVN ${floor} that the pool's members run`,
    };
  }
  return {
    kind: "register",
    memberId: id,
    peerAddress: request.peerAddress,
    dataAddress: request.dataAddress,
    svn: joinerSvn,
    replaces: sameIntent && existing ? [...existing.replaces] : replacementChain(view, request),
  };
}

/**
 * The members to remove once the joiner is a voter: the one it replaces and, when that
 * one is a learner that never got to replace its own predecessor (it failed while
 * catching up), that predecessor too — otherwise a dead voter would stay in the pool.
 */
function replacementChain(view: MembershipView, request: JoinRequest): string[] {
  const first = request.replaces;
  if (first === null) return [];
  const chain = [first];
  const previous = view.registered.find((m) => m.memberId === first);
  if (previous && view.conf.learners.includes(first)) {
    for (const id of previous.replaces) {
      if (id !== request.nodeId && isMember(view.conf, id) && !chain.includes(id)) chain.push(id);
    }
  }
  return chain;
}

export interface ChangeInputs {
  conf: ConfState;
  registered: readonly RegisteredMember[];
  /** The leader's replication progress per member. */
  progress: Readonly<Record<string, Pick<ProgressStatus, "match" | "state">>>;
  lastIndex: number;
  promotionLagEntries?: number;
}

/**
 * The next membership change the primary should propose, or null: first remove members
 * that a registered voter replaces, then promote registered learners that have caught up,
 * then add registered members that are not members yet as learners. Only registered
 * members are ever promoted or added. Ties go by node id, so every primary decides alike.
 */
export function nextMembershipChange(input: ChangeInputs): ConfChange | null {
  const { conf } = input;
  const registered = [...input.registered].sort((a, b) => (a.memberId < b.memberId ? -1 : 1));
  const lag = input.promotionLagEntries ?? DEFAULT_PROMOTION_LAG_ENTRIES;
  for (const m of registered) {
    if (!conf.voters.includes(m.memberId)) continue;
    const stale = m.replaces.find((id) => isMember(conf, id));
    if (stale !== undefined) return { type: "removeNode", node: stale };
  }
  for (const m of registered) {
    if (!conf.learners.includes(m.memberId)) continue;
    const pr = input.progress[m.memberId];
    if (pr && pr.state === "replicate" && input.lastIndex - pr.match <= lag)
      return { type: "addVoter", node: m.memberId };
  }
  for (const m of registered) {
    if (!isMember(conf, m.memberId)) return { type: "addLearner", node: m.memberId };
  }
  return null;
}
