/**
 * Startup wiring: the ownership driver (bootstrap, secondary sync, serving peers,
 * restart from the sealed checkpoint) over this node's partition, Raft and peer links.
 */
import type { OwnershipCheckpoint } from "@hsmpool/pool";
import type { Logger } from "pino";
import type { NodeConfig } from "../config.js";
import type { PartitionAccess } from "../hsm/partition-access.js";
import type { CheckpointFile } from "../ownership/checkpoint-file.js";
import { OwnershipDriver, type OwnershipSyncedInfo } from "../ownership/ownership-driver.js";
import type { RaftDriver } from "../raft/raft-driver.js";
import type { Clock, NodeObserver, PeerTransport, Randomness, ShellVariants } from "../seams/index.js";
import type { SecurityDomainService } from "../security-domain/sd-service.js";

export interface OwnershipWiring {
  config: NodeConfig;
  access: PartitionAccess;
  checkpoints: CheckpointFile;
  /** The checkpoint recovered at start (null for a blank member). */
  checkpoint: OwnershipCheckpoint | null;
  members: string[];
  raft: RaftDriver;
  links: PeerTransport;
  securityDomain: SecurityDomainService;
  onSynced: (info: OwnershipSyncedInfo) => Promise<void>;
  onFatal: (error: unknown) => void;
  logger: Logger;
  clock: Clock;
  random: Randomness;
  variants: ShellVariants;
  observer: NodeObserver | undefined;
}

export function wireOwnership(w: OwnershipWiring): OwnershipDriver {
  const { config, raft, links, securityDomain, observer } = w;
  return OwnershipDriver.create(
    {
      nodeId: config.nodeId,
      poolId: config.poolId,
      retryTicks: Math.max(10, config.electionTicks * 2),
      access: w.access,
      checkpoints: w.checkpoints,
      propose: (data) => raft.propose(data),
      exchange: (peer, message, timeoutMs) => links.exchange(peer, message, timeoutMs),
      onSynced: w.onSynced,
      ...(config.recover
        ? { createOwnershipKeys: (id: string) => securityDomain.recoveredOwnershipKeys(id) }
        : {}),
      onFatal: w.onFatal,
      logger: w.logger.child({ part: "ownership" }),
      clock: w.clock,
      random: w.random,
      exchangeTimeoutMs: 5_000,
      variants: w.variants,
      ...(observer ? { observer } : {}),
    },
    w.checkpoint,
    w.members,
  );
}
