/**
 * Full backup and restore as long-running jobs (the Azure shape: jobId, status
 * InProgress/Succeeded/Failed, folder, start and end time). A backup is the whole
 * replicated state as one value (the key store's snapshot: every key, version and
 * whatever else later features replicate), encrypted here under the SD-derived backup
 * key, written to `<folder>/backup.hsbk`; `<folder>/manifest.json` is written last and
 * is what makes a folder a finished backup. The primary commits the job's record through
 * Raft when it starts and when it ends, so after a failover the next primary reports it;
 * a job still InProgress in the log that no process here runs (its primary died or lost
 * leadership mid-job) is marked Failed by the primary that is asked about it, and the
 * first terminal status wins (pool/backup-job-state.ts): such a job never turns Succeeded.
 */
import { createHash, randomUUID } from "node:crypto";
import { fail, HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import {
  type ApplyOutcome,
  type BackupJobRecord,
  encodeCommand,
  type KeyStore,
  MAX_RESTORE_STATE_BYTES,
} from "@hsmpool/pool";
import { backupDomainId, openBackup, sealBackup } from "@hsmpool/security-domain";
import type { Logger } from "pino";
import { type BlobFolder, blobFolder, parseStorageUrl } from "./blob-storage.js";
import type { SecurityDomainService } from "./sd-service.js";

export const BACKUP_BLOB = "backup.hsbk";
export const MANIFEST_BLOB = "manifest.json";
/** What a pre-backup check writes and deletes again (no secret: it proves the container takes writes). */
const PROBE_BLOB = "prebackup-probe";
/** Tries to commit a job's end before leaving it to the next primary to fail it. */
const END_RECORD_ATTEMPTS = 3;
const END_RECORD_RETRY_MS = 500;

export type JobStatus = BackupJobRecord["status"];

/** A job as reported: its replicated record (containerUri has no SAS token: the token is a credential). */
export type BackupJobView = BackupJobRecord;

export interface BackupJobsContext {
  nodeId: string;
  poolId: string;
  sd: SecurityDomainService;
  store(): KeyStore;
  requireLeader(): void;
  readBarrier(): Promise<void>;
  commit(requestId: string, data: Uint8Array): Promise<ApplyOutcome>;
  /** Where a job's blobs go (tests may inject another store). */
  folder?: (storageUrl: string, folder: string) => BlobFolder;
  logger: Logger;
  now(): number;
  sleep(ms: number): Promise<void>;
}

interface Manifest {
  format: "hsmpool-backup-manifest";
  version: 1;
  poolId: string;
  sdId: string;
  createdAt: string;
  keys: number;
  bytes: number;
  sha256: string;
}

export class BackupJobs {
  /** Jobs this process runs now (a record InProgress that is not here has lost its runner). */
  private readonly running = new Set<string>();

  constructor(private readonly ctx: BackupJobsContext) {}

  private folderOf(storageUrl: string, folder: string): BlobFolder {
    return (this.ctx.folder ?? blobFolder)(storageUrl, folder);
  }

  /**
   * The job's replicated record, answered by the primary after a read barrier (a secondary answers
   * NotLeader: clients and the REST relay go to the primary). A job InProgress that this process
   * does not run lost its primary mid-job: it is failed here, through Raft, before it is reported.
   */
  async get(jobId: string): Promise<BackupJobView> {
    this.ctx.requireLeader();
    await this.ctx.readBarrier();
    const job =
      this.ctx.store().backupJob(jobId) ??
      fail("NotFound", `no backup or restore job ${jobId} in this pool (the pool keeps its newest jobs)`);
    if (job.status !== "InProgress" || this.running.has(jobId)) return job;
    const failed: BackupJobRecord = {
      ...job,
      status: "Failed",
      endTimeMs: Math.max(job.startTimeMs, this.ctx.now()),
      error: {
        code: "ServiceUnavailable",
        message: `the primary running this ${job.kind} (${job.recordedBy}) stopped before it ended; start a new one`,
      },
      statusDetails: `the primary running this ${job.kind} stopped before it ended`,
      recordedBy: this.ctx.nodeId,
    };
    this.ctx.logger.warn(
      { jobId, kind: job.kind, ranOn: job.recordedBy },
      "job lost its primary: marked Failed",
    );
    return this.record(failed);
  }

  async startBackup(storageUrl: string): Promise<BackupJobView> {
    const container = parseStorageUrl(storageUrl);
    this.ctx.sd.requireActivated();
    this.ctx.requireLeader();
    const folder = `mhsm-${this.ctx.poolId}-${stamp(this.ctx.now())}`;
    const job = this.newJob("backup", folder, null, "Full backup is in progress", container);
    return this.start(job, () => this.backup(storageUrl, folder));
  }

  /** The real service's pre-backup check: the pool can seal a backup and the container takes writes. */
  async startPreBackup(storageUrl: string): Promise<BackupJobView> {
    const container = parseStorageUrl(storageUrl);
    this.ctx.sd.requireActivated();
    this.ctx.requireLeader();
    const job = this.newJob("backup", "", null, "Pre full backup is in progress", container);
    return this.start(job, () => this.preBackup(storageUrl));
  }

  /** The real service's pre-restore check: the folder holds a finished backup this pool can open; nothing changes. */
  async startPreRestore(input: { storageUrl: string; folder: string }): Promise<BackupJobView> {
    const container = parseStorageUrl(input.storageUrl);
    requireFolderName(input.folder);
    this.ctx.sd.requireActivated();
    this.ctx.requireLeader();
    const job = this.newJob("restore", input.folder, null, "Pre full restore is in progress", container);
    return this.start(job, () => this.preRestore(input.storageUrl, input.folder));
  }

  async startRestore(input: {
    storageUrl: string;
    folder: string;
    keyName: string | null;
  }): Promise<BackupJobView> {
    const container = parseStorageUrl(input.storageUrl);
    requireFolderName(input.folder);
    this.ctx.sd.requireActivated();
    this.ctx.requireLeader();
    const job = this.newJob(
      "restore",
      input.folder,
      input.keyName,
      input.keyName ? "Selective key restore is in progress" : "Full restore is in progress",
      container,
    );
    return this.start(job, () => this.restore(input.storageUrl, input.folder, input.keyName));
  }

  /** Commits the job's InProgress record (the job exists once it is committed), then runs it. */
  private async start(job: BackupJobRecord, work: () => Promise<string>): Promise<BackupJobView> {
    // Running from before its record commits: a status read can never see it InProgress with no runner.
    this.running.add(job.jobId);
    let recorded: BackupJobRecord;
    try {
      recorded = await this.record(job);
    } catch (e) {
      this.running.delete(job.jobId);
      throw e;
    }
    void this.run(recorded, work);
    return recorded;
  }

  /** Commits a job record through Raft; the applied record (the first terminal status wins). */
  private async record(job: BackupJobRecord): Promise<BackupJobRecord> {
    const requestId = randomUUID();
    const outcome = await this.ctx.commit(
      requestId,
      encodeCommand({ kind: "recordBackupJob", requestId, job, at: this.ctx.now() }),
    );
    if (outcome.kind === "rejected") throw new HsmPoolError(outcome.error.code, outcome.error.message);
    if (outcome.kind !== "backupJobRecorded")
      fail("Internal", `unexpected job record outcome ${outcome.kind}`);
    return outcome.job;
  }

  private newJob(
    kind: "backup" | "restore",
    folder: string,
    keyName: string | null,
    details: string,
    container: URL,
  ): BackupJobRecord {
    return {
      jobId: randomUUID().replaceAll("-", ""),
      kind,
      status: "InProgress",
      folder,
      startTimeMs: this.ctx.now(),
      endTimeMs: null,
      statusDetails: details,
      error: null,
      keyName,
      containerUri: `${container.origin}${container.pathname}`,
      recordedBy: this.ctx.nodeId,
    };
  }

  private async run(job: BackupJobRecord, work: () => Promise<string>): Promise<void> {
    let end: BackupJobRecord;
    try {
      end = { ...job, status: "Succeeded", statusDetails: await work() };
    } catch (e) {
      const error = isHsmPoolError(e)
        ? { code: e.code, message: e.message }
        : { code: "Internal", message: String(e) };
      end = { ...job, status: "Failed", error, statusDetails: error.message };
      this.ctx.logger.warn({ jobId: job.jobId, kind: job.kind, error }, "backup job failed");
    }
    end = { ...end, endTimeMs: Math.max(job.startTimeMs, this.ctx.now()) };
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.record(end);
          return;
        } catch (e) {
          // Lost leadership or quorum: the next primary fails the job (never Succeeded without this record).
          if (attempt >= END_RECORD_ATTEMPTS) {
            this.ctx.logger.warn({ jobId: job.jobId, error: String(e) }, "job end not recorded");
            return;
          }
          await this.ctx.sleep(END_RECORD_RETRY_MS);
        }
      }
    } finally {
      this.running.delete(job.jobId);
    }
  }

  /** One consistent state (after a ReadIndex barrier), sealed here, blob first, manifest last. */
  private async backup(storageUrl: string, folder: string): Promise<string> {
    const keys = await this.ctx.sd.domainKeys();
    await this.ctx.readBarrier();
    const store = this.ctx.store();
    const state = store.snapshot();
    const keyCount = store.keyCount;
    const blob = sealBackup(keys, state);
    const target = this.folderOf(storageUrl, folder);
    await target.put(BACKUP_BLOB, blob);
    const manifest: Manifest = {
      format: "hsmpool-backup-manifest",
      version: 1,
      poolId: this.ctx.poolId,
      sdId: keys.sdId,
      createdAt: new Date(this.ctx.now()).toISOString(),
      keys: keyCount,
      bytes: blob.length,
      sha256: createHash("sha256").update(blob).digest("hex"),
    };
    await target.put(MANIFEST_BLOB, Buffer.from(JSON.stringify(manifest, null, 2)));
    return `Full backup of ${keyCount} keys completed`;
  }

  private async preBackup(storageUrl: string): Promise<string> {
    await this.ctx.sd.domainKeys();
    const probe = this.folderOf(storageUrl, `mhsm-${this.ctx.poolId}-prebackup-${stamp(this.ctx.now())}`);
    await probe.put(PROBE_BLOB, Buffer.from("hsmpool pre-backup check"));
    await probe.delete(PROBE_BLOB);
    return "Pre full backup check passed: the pool can seal a backup and the container accepts writes";
  }

  private async preRestore(storageUrl: string, folder: string): Promise<string> {
    const { keys } = await this.openBackupFolder(storageUrl, folder);
    return `Pre full restore check passed: ${folder} holds a backup of this security domain (${keys} keys)`;
  }

  private async restore(storageUrl: string, folder: string, keyName: string | null): Promise<string> {
    const { state } = await this.openBackupFolder(storageUrl, folder);
    this.ctx.requireLeader();
    const requestId = randomUUID();
    const outcome = await this.ctx.commit(
      requestId,
      encodeCommand({ kind: "restoreBackup", requestId, state, keyName, at: this.ctx.now() }),
    );
    if (outcome.kind === "rejected") throw new HsmPoolError(outcome.error.code, outcome.error.message);
    if (outcome.kind !== "backupRestored") fail("Internal", `unexpected restore outcome ${outcome.kind}`);
    return keyName ? `Key ${keyName} restored` : `Full restore of ${outcome.keys} keys completed`;
  }

  /** A finished backup of this pool's SD, opened in the TEE: manifest, checksum, SD id and seal all checked. */
  private async openBackupFolder(
    storageUrl: string,
    folder: string,
  ): Promise<{ state: Uint8Array; keys: number }> {
    const source = this.folderOf(storageUrl, folder);
    if (!(await source.exists(MANIFEST_BLOB)))
      fail(
        "BadParameter",
        `folder ${folder} holds no finished backup (no ${MANIFEST_BLOB}: the backup never completed)`,
      );
    const manifest = JSON.parse((await source.get(MANIFEST_BLOB)).toString("utf8")) as Partial<Manifest>;
    const blob = await source.get(BACKUP_BLOB);
    if (manifest.sha256 !== createHash("sha256").update(blob).digest("hex"))
      fail("IntegrityError", `the backup in ${folder} does not match its manifest (altered or incomplete)`);
    const keys = await this.ctx.sd.domainKeys();
    const sdId = backupDomainId(blob);
    if (sdId !== keys.sdId)
      fail(
        "BadParameter",
        `the backup in ${folder} was made by a pool with another security domain (${sdId}; this pool holds ${keys.sdId})`,
      );
    const state = openBackup(keys, blob);
    if (state.length > MAX_RESTORE_STATE_BYTES)
      fail("BadParameter", "the backup is larger than a restore can carry");
    return { state, keys: manifest.keys ?? 0 };
  }
}

function requireFolderName(folder: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/.test(folder))
    fail("BadParameter", "folder must be a backup folder name");
}

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:TZ.]/g, "");
}
