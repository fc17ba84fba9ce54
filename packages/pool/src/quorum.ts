/**
 * Which voters this node can reach right now, in words a person can act on: the
 * reason a write or read is refused without quorum ("no quorum: 1 of 3 voters
 * reachable (n2, n3 unreachable)"). Pure: the shell says which links are up and when
 * each peer was last heard from.
 */

export interface QuorumInputs {
  selfId: string;
  voters: readonly string[];
  /** True when the attested link to `id` is connected. */
  connected: (id: string) => boolean;
  /** When a Raft message from `id` last arrived (ms), or undefined. */
  lastHeardMs: (id: string) => number | undefined;
  nowMs: number;
  /** A peer heard within this window counts as reachable. */
  windowMs: number;
}

export interface QuorumReport {
  voters: number;
  reachable: string[];
  unreachable: string[];
  /** A majority of the voters is reachable (this node included when it is one). */
  hasQuorum: boolean;
}

export function quorumReport(q: QuorumInputs): QuorumReport {
  const reachable: string[] = [];
  const unreachable: string[] = [];
  for (const id of [...q.voters].sort()) {
    const heard = q.lastHeardMs(id);
    const up = id === q.selfId || q.connected(id) || (heard !== undefined && q.nowMs - heard <= q.windowMs);
    (up ? reachable : unreachable).push(id);
  }
  return {
    voters: q.voters.length,
    reachable,
    unreachable,
    hasQuorum: q.voters.length > 0 && reachable.length > q.voters.length / 2,
  };
}

/** "no quorum: 1 of 3 voters reachable (n2, n3 unreachable)" or "3 of 3 voters reachable". */
export function describeQuorum(r: QuorumReport): string {
  const counted = `${r.reachable.length} of ${r.voters} voters reachable`;
  const missing = r.unreachable.length > 0 ? ` (${r.unreachable.join(", ")} unreachable)` : "";
  return r.hasQuorum ? `${counted}${missing}` : `no quorum: ${counted}${missing}`;
}
