/**
 * Startup wiring: the Raft core over the recovered WAL and snapshot, its driver
 * (persist-before-send, apply, snapshots, reads) and the waiters that acknowledge a
 * client write once its entry applies. PoolNode.boot calls this first, after storage
 * recovery (startup.ts); the hooks are the node's own reactions.
 */
import { RawNode } from "@hsmpool/raft";
import type { Logger } from "pino";
import type { NodeConfig } from "../config.js";
import { ProposalWaiters } from "../keyvault/proposals.js";
import { RaftDriver, type RaftDriverHooks } from "../raft/raft-driver.js";
import type { Clock, NodeObserver, Randomness, ShellVariants } from "../seams/index.js";
import type { RaftStore, RecoveredRaftState } from "../storage/raft-store.js";

export interface RaftWiring {
  config: NodeConfig;
  store: RaftStore;
  recovered: RecoveredRaftState;
  logger: Logger;
  clock: Clock;
  random: Randomness;
  variants: ShellVariants;
  observer: NodeObserver | undefined;
  /** Why the pool may not answer now (no quorum, which voters are unreachable). */
  quorumNote: () => string;
  /** Runs right after each Raft tick (the node's other periodic duties share Raft's timer). */
  afterTick: () => void;
  hooks: RaftDriverHooks;
}

export function wireRaft(w: RaftWiring): { proposals: ProposalWaiters; raft: RaftDriver } {
  const { config, recovered, clock, random, observer } = w;
  const tickMs = config.electionTickMs;
  const proposals = new ProposalWaiters(
    clock,
    Math.max(2_000, tickMs * config.electionTicks * 5),
    w.quorumNote,
  );
  const rawNode = new RawNode({
    id: config.nodeId,
    storage: w.store.storage,
    electionTicks: config.electionTicks,
    electionJitterTicks: config.electionJitterTicks,
    heartbeatTicks: config.heartbeatTicks,
    random: () => random.float(),
    preVote: true,
    checkQuorum: true,
    // Followers learn commits from the next append or heartbeat (see packages/raft README).
    lazyCommitBroadcast: true,
    applied: recovered.snapshot.meta.index,
  });
  const raft = new RaftDriver({
    node: rawNode,
    store: w.store,
    tickMs,
    electionTicks: config.electionTicks,
    snapshotEveryEntries: config.snapshotEveryEntries,
    snapshotBytes: recovered.snapshot.data.length,
    conf: rawNode.status().conf,
    appliedIndex: recovered.snapshot.meta.index,
    logger: w.logger,
    clock,
    random,
    variants: w.variants,
    ...(observer ? { observer } : {}),
    quorumNote: w.quorumNote,
    afterTick: w.afterTick,
    hooks: w.hooks,
  });
  return { proposals, raft };
}
