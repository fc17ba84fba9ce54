/**
 * Startup wiring: the security-domain service (download/upload ceremony, recovery,
 * activation) over this node's partition and enclave.
 */

import type { Enclave } from "@hsmpool/platform";
import type { ApplyOutcome, KeyStore } from "@hsmpool/pool";
import type { Logger } from "pino";
import type { NodeConfig } from "../config.js";
import type { PartitionAccess } from "../hsm/partition-access.js";
import type { OwnershipSyncedInfo } from "../ownership/ownership-driver.js";
import { type Clock, sleep } from "../seams/index.js";
import { SecurityDomainService } from "../security-domain/sd-service.js";

export interface SecurityDomainWiring {
  config: NodeConfig;
  store: () => KeyStore;
  access: PartitionAccess;
  enclave: Enclave;
  synced: () => OwnershipSyncedInfo | null;
  /** The data plane's write path (ServiceUnavailable until it starts). */
  requireLeader: () => void;
  commit: (requestId: string, data: Uint8Array) => Promise<ApplyOutcome>;
  logger: Logger;
  now: () => number;
  clock: Clock;
}

export function wireSecurityDomain(w: SecurityDomainWiring): SecurityDomainService {
  const { config, clock } = w;
  return new SecurityDomainService({
    nodeId: config.nodeId,
    poolId: config.poolId,
    recovering: config.recover,
    store: w.store,
    access: w.access,
    enclave: w.enclave,
    synced: w.synced,
    requireLeader: w.requireLeader,
    commit: w.commit,
    fallbackBinding: () => config.identity,
    logger: w.logger.child({ part: "security-domain" }),
    now: w.now,
    sleep: (ms) => sleep(clock, ms),
  });
}
