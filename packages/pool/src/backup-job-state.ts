/**
 * Full backup and restore jobs in the replicated log: the primary that runs a job commits
 * its record when it starts (InProgress) and when it ends, so the job survives a failover
 * and any later primary reports it. The first terminal status wins: once a job is
 * Succeeded or Failed, no later record changes it — so a job that a new primary marked
 * Failed (its runner died mid-job) can never turn Succeeded afterwards. The record names
 * the container without its SAS token (a credential never enters the log).
 */

import type { ByteReader, ByteWriter } from "@hsmpool/codec";
import { fail } from "@hsmpool/errors";
import { compareStrings } from "./jwk.js";
import { requireKeyName } from "./key-request.js";
import { requireIdentifier, requireTimeMs } from "./validate.js";

export type BackupJobKind = "backup" | "restore";
export type BackupJobStatus = "InProgress" | "Succeeded" | "Failed";

export interface BackupJobRecord {
  readonly jobId: string;
  readonly kind: BackupJobKind;
  readonly status: BackupJobStatus;
  readonly folder: string;
  readonly startTimeMs: number;
  readonly endTimeMs: number | null;
  readonly statusDetails: string;
  readonly error: { readonly code: string; readonly message: string } | null;
  readonly keyName: string | null;
  /** The container's URL without its SAS token. */
  readonly containerUri: string;
  /** The member that ran (or failed) the job. */
  readonly recordedBy: string;
}

export interface RecordBackupJobCommand {
  readonly kind: "recordBackupJob";
  readonly requestId: string;
  readonly job: BackupJobRecord;
  readonly at: number;
}

/** The replicated state keeps the newest jobs only (by start time, then id: the same on every member). */
export const MAX_BACKUP_JOBS = 64;
const MAX_TEXT_BYTES = 1024;
const MAX_URI_BYTES = 2048;
const KINDS: readonly BackupJobKind[] = ["backup", "restore"];
const STATUSES: readonly BackupJobStatus[] = ["InProgress", "Succeeded", "Failed"];

function text(v: unknown, field: string, max: number): string {
  if (typeof v !== "string" || Buffer.byteLength(v) > max)
    fail("BadParameter", `${field} must be a string of at most ${max} bytes`, { field });
  return v as string;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], field: string): T {
  if (!allowed.includes(v as T))
    fail("BadParameter", `${field} must be one of ${allowed.join(", ")}`, { field });
  return v as T;
}

export function validateBackupJob(input: unknown): BackupJobRecord {
  if (typeof input !== "object" || input === null)
    fail("BadParameter", "job must be an object", { field: "job" });
  const j = input as Record<string, unknown>;
  const status = oneOf(j.status, STATUSES, "job.status");
  const endTimeMs =
    j.endTimeMs === null || j.endTimeMs === undefined ? null : requireTimeMs(j.endTimeMs, "job.endTimeMs");
  if ((status === "InProgress") !== (endTimeMs === null))
    fail("BadParameter", "job.endTimeMs is set exactly when the job has ended", { field: "job.endTimeMs" });
  const error = j.error as Record<string, unknown> | null | undefined;
  return Object.freeze({
    jobId: requireIdentifier(j.jobId, "job.jobId"),
    kind: oneOf(j.kind, KINDS, "job.kind"),
    status,
    folder: text(j.folder, "job.folder", MAX_TEXT_BYTES),
    startTimeMs: requireTimeMs(j.startTimeMs, "job.startTimeMs"),
    endTimeMs,
    statusDetails: text(j.statusDetails, "job.statusDetails", MAX_TEXT_BYTES),
    error:
      error === null || error === undefined
        ? null
        : Object.freeze({
            code: text(error.code, "job.error.code", MAX_TEXT_BYTES),
            message: text(error.message, "job.error.message", MAX_TEXT_BYTES),
          }),
    keyName: j.keyName === null || j.keyName === undefined ? null : requireKeyName(j.keyName),
    containerUri: text(j.containerUri, "job.containerUri", MAX_URI_BYTES),
    recordedBy: requireIdentifier(j.recordedBy, "job.recordedBy"),
  });
}

export function validateRecordBackupJob(c: Record<string, unknown>): RecordBackupJobCommand {
  return Object.freeze({
    kind: "recordBackupJob",
    requestId: requireIdentifier(c.requestId, "requestId"),
    job: validateBackupJob(c.job),
    at: requireTimeMs(c.at, "at"),
  });
}

/** The job as one JSON text (the log entry's and the snapshot's encoding; validated when read). */
export function writeBackupJob(w: ByteWriter, job: BackupJobRecord): void {
  w.string(JSON.stringify(job));
}

export function readBackupJob(r: ByteReader): unknown {
  const raw = r.string("job", MAX_URI_BYTES + 8 * MAX_TEXT_BYTES);
  try {
    return JSON.parse(raw);
  } catch {
    return r.corrupt("a backup job record is not JSON");
  }
}

/**
 * Applies a job record: a new job or a change of an InProgress one is taken; a record for a
 * job that already ended changes nothing (`ignored`). Keeps the newest MAX_BACKUP_JOBS.
 */
export function applyBackupJob(
  jobs: Map<string, BackupJobRecord>,
  job: BackupJobRecord,
): { job: BackupJobRecord; ignored: boolean } {
  const existing = jobs.get(job.jobId);
  if (existing && existing.status !== "InProgress") return { job: existing, ignored: true };
  jobs.set(job.jobId, job);
  if (jobs.size > MAX_BACKUP_JOBS) {
    const oldest = [...jobs.values()].sort(
      (a, b) => a.startTimeMs - b.startTimeMs || compareStrings(a.jobId, b.jobId),
    )[0];
    if (oldest) jobs.delete(oldest.jobId);
  }
  return { job, ignored: false };
}
