/**
 * What a simulator (or a test) may watch inside a running node: facts the shell
 * reports at the moment they happen, in the order they happen. It never changes what
 * the node does; a real node runs without one.
 */
import type { ApplyOutcome, OwnershipEffect, OwnershipState } from "@hsmpool/pool";
import type { Entry, HardState, Message, Ready, Storage } from "@hsmpool/raft";

type PoolProposal = Extract<OwnershipEffect, { kind: "propose" }>["command"];

export interface NodeObserver {
  /** Raft state recovered from disk at start. */
  raftRecovered?(storage: Storage, hardState: HardState): void;
  /** A Ready's snapshot, entries and hard state are durable. */
  raftPersisted?(rd: Ready): void;
  /** Messages handed to the transport. */
  raftSent?(messages: readonly Message[]): void;
  /** A committed entry was applied to the key store. */
  applied?(entry: Entry, outcome: ApplyOutcome): void;
  /** The ownership machine proposed a command (after handing it to Raft). */
  proposed?(command: PoolProposal): void;
  /** The ownership machine's state changed (after its checkpoint was written). */
  ownershipChanged?(state: OwnershipState): void;
  /** The key service is about to answer `op` with a result. */
  serving?(op: string): void;
}
