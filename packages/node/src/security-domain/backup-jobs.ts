/**
 * Full backup and restore as long-running jobs (the Azure shape: jobId, status
 * InProgress/Succeeded/Failed, folder, start and end time). A backup is the whole
 * replicated state as one value (the key store's snapshot: every key, version and
 * whatever else later features replicate), encrypted here under the SD-derived backup
 * key, written to `<folder>/backup.hsbk`; `<folder>/manifest.json` is written last and
 * is what makes a folder a finished backup. A job lives on the primary that ran it: if
 * that node dies mid-job the job is gone with it, never marked Succeeded.
 */
import { createHash, randomUUID } from "node:crypto";
import { fail, HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import { type ApplyOutcome, encodeCommand, type KeyStore, MAX_RESTORE_STATE_BYTES } from "@hsmpool/pool";
import { backupDomainId, openBackup, sealBackup } from "@hsmpool/security-domain";
import type { Logger } from "pino";
import { type BlobFolder, blobFolder, parseStorageUrl } from "./blob-storage.js";
import type { SecurityDomainService } from "./sd-service.js";

export const BACKUP_BLOB = "backup.hsbk";
export const MANIFEST_BLOB = "manifest.json";
const MAX_JOBS = 256;

export type JobStatus = "InProgress" | "Succeeded" | "Failed";

export interface BackupJobView {
  jobId: string;
  kind: "backup" | "restore";
  status: JobStatus;
  folder: string;
  startTimeMs: number;
  endTimeMs: number | null;
  statusDetails: string;
  error: { code: string; message: string } | null;
  keyName: string | null;
  /** The container's URL without its SAS token (the REST status names it; the token is a credential). */
  containerUri: string;
}

export interface BackupJobsContext {
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
  private readonly jobs = new Map<string, BackupJobView>();

  constructor(private readonly ctx: BackupJobsContext) {}

  private folderOf(storageUrl: string, folder: string): BlobFolder {
    return (this.ctx.folder ?? blobFolder)(storageUrl, folder);
  }

  get(jobId: string): BackupJobView {
    const job = this.jobs.get(jobId);
    if (!job) {
      // Jobs live on the primary that runs them: a secondary answers NotLeader (clients and the REST relay go there).
      this.ctx.requireLeader();
      fail(
        "NotFound",
        `no backup or restore job ${jobId} on this primary (a job ends with the node that ran it: if it restarted, the job did not complete; start a new one)`,
      );
    }
    return { ...job };
  }

  startBackup(storageUrl: string): BackupJobView {
    const container = parseStorageUrl(storageUrl);
    this.ctx.sd.requireActivated();
    this.ctx.requireLeader();
    const folder = `mhsm-${this.ctx.poolId}-${stamp(this.ctx.now())}`;
    const job = this.newJob("backup", folder, null, "Full backup is in progress", container);
    void this.run(job, () => this.backup(storageUrl, folder));
    return { ...job };
  }

  startRestore(input: { storageUrl: string; folder: string; keyName: string | null }): BackupJobView {
    const container = parseStorageUrl(input.storageUrl);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/.test(input.folder))
      fail("BadParameter", "folder must be a backup folder name");
    this.ctx.sd.requireActivated();
    this.ctx.requireLeader();
    const job = this.newJob(
      "restore",
      input.folder,
      input.keyName,
      input.keyName ? "Selective key restore is in progress" : "Full restore is in progress",
      container,
    );
    void this.run(job, () => this.restore(input.storageUrl, input.folder, input.keyName));
    return { ...job };
  }

  private newJob(
    kind: "backup" | "restore",
    folder: string,
    keyName: string | null,
    details: string,
    container: URL,
  ): BackupJobView {
    const job: BackupJobView = {
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
    };
    this.jobs.set(job.jobId, job);
    while (this.jobs.size > MAX_JOBS) this.jobs.delete(this.jobs.keys().next().value as string);
    return job;
  }

  private async run(job: BackupJobView, work: () => Promise<string>): Promise<void> {
    try {
      job.statusDetails = await work();
      job.status = "Succeeded";
    } catch (e) {
      job.status = "Failed";
      job.error = isHsmPoolError(e)
        ? { code: e.code, message: e.message }
        : { code: "Internal", message: String(e) };
      job.statusDetails = job.error.message;
      this.ctx.logger.warn({ jobId: job.jobId, kind: job.kind, error: job.error }, "backup job failed");
    } finally {
      job.endTimeMs = this.ctx.now();
    }
  }

  /** One consistent state (after a ReadIndex barrier), sealed here, blob first, manifest last. */
  private async backup(storageUrl: string, folder: string): Promise<string> {
    const keys = await this.ctx.sd.domainKeys();
    await this.ctx.readBarrier();
    const store = this.ctx.store();
    const state = store.snapshot();
    const keyCount = store.list().length;
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

  private async restore(storageUrl: string, folder: string, keyName: string | null): Promise<string> {
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
}

function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:TZ.]/g, "");
}
