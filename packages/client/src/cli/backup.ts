/**
 * `hsmpool backup create|status` and `hsmpool restore`: full backups of the pool to Azure
 * Blob Storage (a container SAS URL), encrypted inside the TEE under a key derived from the
 * security domain; restores into a pool holding the same security domain. Long-running jobs
 * with the Azure shape; --json prints { jobId, status, folder, startTime, endTime }.
 */
import { fail } from "@hsmpool/errors";
import type { Command } from "commander";
import type { BackupJob, PoolClient } from "../sdk/pool-client.js";
import { out, RUN_DIR_HELP, resolveRunDir, withPool } from "./context.js";

const POLL_MS = 250;
const WAIT_LIMIT_MS = 30 * 60_000;

function jobJson(j: BackupJob): string {
  return JSON.stringify({
    jobId: j.jobId,
    status: j.status,
    folder: j.folder,
    startTime: new Date(j.startTime).toISOString(),
    endTime: j.endTime === null ? null : new Date(j.endTime).toISOString(),
    ...(j.error ? { error: j.error } : {}),
  });
}

function jobLine(j: BackupJob): string {
  return `${j.kind} ${j.jobId}: ${j.status}, folder ${j.folder}${j.statusDetails ? ` (${j.statusDetails})` : ""}`;
}

/** Polls a job until it has ended (at most `limitMs`, then Timeout). */
export async function waitForJob(
  client: PoolClient,
  job: BackupJob,
  limitMs = WAIT_LIMIT_MS,
): Promise<BackupJob> {
  const deadline = Date.now() + limitMs;
  let current = job;
  while (current.status === "InProgress") {
    if (Date.now() > deadline)
      fail("Timeout", `job ${job.jobId} is still in progress; check it with hsmpool backup status`);
    await new Promise((r) => setTimeout(r, POLL_MS));
    current = await client.getJob(job.jobId);
  }
  return current;
}

/** Prints the job; a failed job is a failed command (its error as the one line). */
function report(job: BackupJob, json: boolean | undefined): void {
  out(json ? jobJson(job) : jobLine(job));
  if (job.status === "Failed") {
    process.exitCode = 1;
    if (!json)
      process.stderr.write(
        `hsmpool: ${job.error?.message ?? "the job failed"} [${job.error?.code ?? "Internal"}]\n`,
      );
  }
}

export function registerBackupCommands(program: Command): void {
  const backup = program.command("backup").description("full backups of the pool to Azure Blob Storage");
  registerBackupCreateCommand(backup);
  registerBackupStatusCommand(backup);
  registerRestoreCommand(program);
}

function registerBackupCreateCommand(backup: Command): void {
  backup
    .command("create")
    .description("start a full backup (every key and version, and the rest of the pool's replicated state)")
    .requiredOption("--storage <url>", "container SAS URL (hsmpool storage up prints one)")
    .option("--wait", "wait until the job has finished")
    .option("--json", "print { jobId, status, folder, startTime, endTime }")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (opts: { storage: string; wait?: boolean; json?: boolean; runDir?: string }) => {
      const job = await withPool(resolveRunDir(opts.runDir), async (c) => {
        const started = await c.startBackup(opts.storage);
        return opts.wait ? waitForJob(c, started) : started;
      });
      report(job, opts.json);
    });
}

function registerBackupStatusCommand(backup: Command): void {
  backup
    .command("status")
    .description("the status of a backup or restore job")
    .argument("<job>", "job id")
    .option("--json", "print { jobId, status, folder, startTime, endTime }")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (jobId: string, opts: { json?: boolean; runDir?: string }) => {
      report(await withPool(resolveRunDir(opts.runDir), (c) => c.getJob(jobId)), opts.json);
    });
}

function registerRestoreCommand(program: Command): void {
  program
    .command("restore")
    .description(
      "restore a full backup (or one key with --key) into this pool; it must hold the backup's security domain",
    )
    .requiredOption("--storage <url>", "container SAS URL")
    .requiredOption("--folder <name>", "the backup's folder (backup create prints it)")
    .option("--key <name>", "restore only this key (all its versions)")
    .option("--wait", "wait until the job has finished")
    .option("--json", "print { jobId, status, folder, startTime, endTime }")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(
      async (opts: {
        storage: string;
        folder: string;
        key?: string;
        wait?: boolean;
        json?: boolean;
        runDir?: string;
      }) => {
        const job = await withPool(resolveRunDir(opts.runDir), async (c) => {
          const started = await c.startRestore({
            storageUrl: opts.storage,
            folder: opts.folder,
            ...(opts.key ? { keyName: opts.key } : {}),
          });
          return opts.wait ? waitForJob(c, started) : started;
        });
        report(job, opts.json);
      },
    );
}
