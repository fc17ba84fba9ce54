import { isHsmPoolError } from "@hsmpool/errors";
import { decideJoin, encodeCommand, type JoinRequest, nextMembershipChange } from "@hsmpool/pool";
import type { PoolMember } from "./member.js";

/**
 * The primary's side of healing joins, in the sim: the same pure rules packages/node's
 * membership driver uses (`decideJoin`, `nextMembershipChange` from
 * @hsmpool/pool), carried out on a simulated member. A Join that reaches the
 * caught-up primary is recorded with a `registerMember` command; on every tick the
 * primary proposes the next single membership change (remove the replaced member,
 * promote a caught-up learner, add a registered joiner as learner). Raft refuses a
 * second change while one is pending, so a refused proposal is simply retried later.
 */

/** Every simulated enclave runs the same bundle. */
export const SIM_SVN = 1;
export const SIM_MRSIGNER = "sim-signer";

function isCaughtUpPrimary(member: PoolMember): boolean {
  const raw = member.raft.raw;
  const store = member.store;
  if (!raw || !store || member.raft.state !== "up" || member.raft.role !== "leader") return false;
  return store.appliedIndex >= raw.status().commit;
}

/** A Join request arrived at `member`; true when it is the primary and handled it. */
export function handleJoin(
  member: PoolMember,
  request: JoinRequest,
  nowMs: number,
  log: (make: () => string) => void,
): boolean {
  const store = member.store;
  if (!store || !isCaughtUpPrimary(member)) return false;
  const decision = decideJoin(
    {
      selfId: member.id,
      conf: member.raft.conf,
      registered: store.registeredMembers(),
      wasRemoved: (id) => store.wasRemoved(id),
      svnOf: () => SIM_SVN,
    },
    request,
    SIM_SVN,
  );
  log(() => `${member.id} (primary) decides on the Join of ${request.nodeId}: ${decision.kind}`);
  if (decision.kind !== "register") return true;
  const { kind: _kind, ...fields } = decision;
  propose(member, () =>
    member.raft.act((raw) => raw.propose(encodeCommand({ ...fields, kind: "registerMember", at: nowMs }))),
  );
  return true;
}

/** On the primary's tick: propose the next membership change, if any is due. */
export function advanceMembership(member: PoolMember, log: (make: () => string) => void): void {
  const store = member.store;
  const raw = member.raft.raw;
  const storage = member.raft.storage;
  if (!store || !raw || !storage || !isCaughtUpPrimary(member)) return;
  const change = nextMembershipChange({
    conf: member.raft.conf,
    registered: store.registeredMembers(),
    progress: raw.status().progress ?? {},
    lastIndex: storage.lastIndex(),
  });
  if (!change) return;
  propose(member, () => {
    member.raft.act((r) => r.proposeConfChange(change));
    log(() => `${member.id} (primary) proposes ${change.type} ${change.node}`);
  });
}

function propose(_member: PoolMember, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    // Not leader any more, or a membership change is still pending: retried on a later tick.
    if (!isHsmPoolError(e)) throw e;
  }
}
