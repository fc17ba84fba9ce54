/**
 * Deliberately wrong shell behaviours, for checker self-tests only: each breaks one
 * pool invariant on purpose, so a sweep proves the matching checker can fire. The
 * protocol code (@hsmpool/pool, @hsmpool/raft) is never changed; only the harness's
 * node shell misbehaves.
 */
export type PoolUnsafeMode =
  /** Gets and signs skip requireOwnership (a member serves before it holds the DEK). */
  | "serveWithoutOwnership"
  /** The proposer feeds its own Genesis back as committed the moment it proposes it. */
  | "genesisBeforeCommit"
  /** Creates are acknowledged when proposed, not when applied. */
  | "ackBeforeCommit"
  /** The first member to import the DEK gets other material under the DEK's key id (a faulty HSM). */
  | "divergentDek"
  /** Gets and signs read the local key store without a ReadIndex barrier. */
  | "staleReads"
  /** The ownership checkpoint is written after the step's effects ran (Genesis leaves unrecorded). */
  | "checkpointAfterEffects";

export const POOL_UNSAFE_MODES: readonly PoolUnsafeMode[] = [
  "serveWithoutOwnership",
  "genesisBeforeCommit",
  "ackBeforeCommit",
  "divergentDek",
  "staleReads",
  "checkpointAfterEffects",
];
