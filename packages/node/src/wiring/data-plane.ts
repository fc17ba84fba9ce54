/**
 * Startup wiring of the data plane, in the order boot starts it: the key service (the
 * one write path), backup/restore jobs, then who-may-call-what, the sealed audit log,
 * and the gRPC + Key Vault REST server on the data address.
 */

import type { Enclave } from "@hsmpool/platform";
import type { KeyStore, QuorumReport } from "@hsmpool/pool";
import { poolResourceUri } from "@hsmpool/pool";
import type { NodeStatus } from "@hsmpool/wire";
import type { Logger } from "pino";
import { AuditLog } from "../audit/audit-log.js";
import type { NodeConfig } from "../config.js";
import { DataPlaneAccess } from "../data-plane/access.js";
import { accessControlImplementation } from "../data-plane/access-handlers.js";
import { auditEntryOf, withAudit } from "../data-plane/audited.js";
import type { PartitionAccess } from "../hsm/partition-access.js";
import type { KeyIndex } from "../keyvault/key-index.js";
import type { KeyReserve } from "../keyvault/key-reserve.js";
import { KeyService, type LeaderView } from "../keyvault/key-service.js";
import type { ProposalWaiters } from "../keyvault/proposals.js";
import type { NodeMetrics } from "../metrics/node-metrics.js";
import type { RaftDriver } from "../raft/raft-driver.js";
import { accessAuthority } from "../rest/access-authority.js";
import { WriteForwarder } from "../rest/forward.js";
import { restEndpoint } from "../rest/rest-endpoint.js";
import {
  type Clock,
  type DataPlane,
  type LaunchedServer,
  type NodeObserver,
  type NodeSeams,
  type ShellVariants,
  sleep,
} from "../seams/index.js";
import { BackupJobs } from "../security-domain/backup-jobs.js";
import type { SecurityDomainService } from "../security-domain/sd-service.js";

export interface KeyServiceWiring {
  config: NodeConfig;
  store: () => KeyStore;
  raft: RaftDriver;
  access: PartitionAccess;
  index: KeyIndex;
  proposals: ProposalWaiters;
  reserve: KeyReserve;
  dekKeyId: () => string;
  leader: () => LeaderView;
  quorum: () => QuorumReport;
  clock: Clock;
  seams: NodeSeams;
  variants: ShellVariants;
  observer: NodeObserver | undefined;
}

export function wireKeyService(w: KeyServiceWiring): KeyService {
  return new KeyService({
    nodeId: w.config.nodeId,
    store: w.store,
    raft: w.raft,
    access: w.access,
    index: w.index,
    proposals: w.proposals,
    reserve: w.reserve,
    dekKeyId: w.dekKeyId,
    leader: w.leader,
    quorum: w.quorum,
    clock: w.clock,
    random: w.seams.random,
    variants: w.variants,
    ...(w.observer ? { observer: w.observer } : {}),
  });
}

export interface BackupJobsWiring {
  config: NodeConfig;
  keys: KeyService;
  raft: RaftDriver;
  securityDomain: SecurityDomainService;
  store: () => KeyStore;
  logger: Logger;
  now: () => number;
  clock: Clock;
}

export function wireBackupJobs(w: BackupJobsWiring): BackupJobs {
  const { keys, raft, clock } = w;
  return new BackupJobs({
    nodeId: w.config.nodeId,
    poolId: w.config.poolId,
    sd: w.securityDomain,
    store: w.store,
    requireLeader: () => keys.requireLeader(),
    readBarrier: () => raft.readBarrier(),
    commit: (requestId, data) => keys.commit(requestId, data),
    logger: w.logger.child({ part: "backup" }),
    now: w.now,
    sleep: (ms) => sleep(clock, ms),
  });
}

export interface DataPlaneWiring {
  server: LaunchedServer;
  config: NodeConfig;
  logger: Logger;
  seams: NodeSeams;
  enclave: Enclave;
  keys: KeyService;
  backups: BackupJobs;
  securityDomain: SecurityDomainService;
  store: () => KeyStore;
  leader: () => LeaderView;
  metrics: NodeMetrics;
  status: () => NodeStatus;
  stopped: () => boolean;
  now: () => number;
  /** The audit log is open (before the server starts, so stopping closes it whatever happens next). */
  onAuditOpened: (audit: AuditLog) => void;
}

/** Opens the audit log and serves the data plane; null when this server has no data-plane endpoint. */
export async function serveDataPlane(w: DataPlaneWiring): Promise<DataPlane | null> {
  const { config, logger, seams, keys, backups, securityDomain } = w;
  const access = new DataPlaneAccess(
    {
      tenant: () => w.store().access.tenant,
      assignmentsOf: (principalId) => w.store().access.assignmentsOf(principalId),
      definitions: () => w.store().access.definitions(),
      recoveryBinding: () => (config.recover ? config.identity : null),
    },
    poolResourceUri(config.poolId),
    w.now,
  );
  const audit = await AuditLog.open({
    stateDir: config.stateDir,
    storage: seams.storage,
    random: seams.random,
    sealer: {
      seal: (plaintext) => w.enclave.seal(plaintext, { policy: "mrsigner" }),
      unseal: (blob) => w.enclave.unseal(blob),
    },
    member: config.nodeId,
    now: w.now,
  });
  w.onAuditOpened(audit);
  return w.server.serveDataPlane({
    config,
    logger,
    keys,
    securityDomain,
    backups,
    access,
    accessControl: accessControlImplementation({
      access,
      writes: keys,
      state: () => w.store().access,
      audit,
      nodeId: config.nodeId,
      onInternalError: (e) => logger.error({ error: String(e) }, "internal error in a data-plane call"),
    }),
    audited: (impl) =>
      withAudit(impl, {
        audit,
        access,
        newRequestId: () => seams.random.uuid(),
        skip: ["ReadAudit", "VerifyAudit"],
        onError: (e) => logger.error({ error: String(e) }, "audit record not written"),
      }),
    auditOperation: (method, principal, request, response, result) =>
      audit
        .record(auditEntryOf(method, principal, request, response, result, () => seams.random.uuid()))
        .catch((e: unknown) => logger.error({ error: String(e) }, "audit record not written")),
    metrics: w.metrics,
    status: w.status,
    stopped: w.stopped,
    onInternalError: (e) => logger.error({ error: String(e) }, "internal error in a data-plane call"),
    rest: (caPem) => {
      const forwarder = new WriteForwarder({
        nodeId: config.nodeId,
        leader: w.leader,
        clock: seams.clock,
        caPem,
      });
      const listener = restEndpoint({
        services: { keys, securityDomain, backups },
        authority: accessAuthority(access, () => null),
        forwarder,
        random: seams.random,
        logger: logger.child({ part: "rest" }),
        audit: (entry) =>
          audit
            .record(entry)
            .catch((e: unknown) => logger.error({ error: String(e) }, "audit record not written")),
      });
      return { listener, close: () => forwarder.close() };
    },
  });
}
