/**
 * Security domain and full backup/restore over the Managed HSM REST API
 * (../shared/azure-rest-examples: securitydomain/*, backup/*): thin translations onto
 * SecurityDomainService and BackupJobs, like keys-api.ts; no behaviour lives here.
 * Long-running operations answer 202 with Azure-AsyncOperation (the status URL the SDK
 * pollers follow) and Retry-After; admin jobs use `statusDetails`, the security domain
 * `status_details`, as the service does. Authorisation happened in the endpoint (routes.ts).
 */
import { createPublicKey } from "node:crypto";
import { fail } from "@hsmpool/errors";
import type { BackupJobs, BackupJobView } from "../security-domain/backup-jobs.js";
import type { SecurityDomainService, SecurityDomainState } from "../security-domain/sd-service.js";
import { objectField, stringField } from "./key-json.js";
import type { RestRequest, RestResult } from "./types.js";

const RETRY_AFTER_SECONDS = "1";
const seconds = (ms: number): number => Math.floor(ms / 1000);

function accepted(baseUrl: string, statusPath: string, body: unknown): RestResult {
  return {
    status: 202,
    headers: { "azure-asyncoperation": `${baseUrl}${statusPath}`, "retry-after": RETRY_AFTER_SECONDS },
    body,
  };
}

/** A container SAS URL from the service's `{ storageResourceUri, token }` (the SAS query, with or without '?'). */
function storageUrlOf(sas: Record<string, unknown>, field: string): string {
  const uri = stringField(sas, "storageResourceUri");
  const token = stringField(sas, "token").replace(/^\?/, "");
  if (sas.useManagedIdentity === true)
    fail("BadParameter", `${field}.useManagedIdentity is not supported: send a SAS token`, { field });
  return `${uri}?${token}`;
}

/** FullBackupOperation / RestoreOperation / SelectiveKeyRestoreOperation JSON. */
function jobJson(job: BackupJobView): Record<string, unknown> {
  return {
    status: job.status,
    statusDetails: job.statusDetails,
    error: job.error ? { code: job.error.code, message: job.error.message } : null,
    jobId: job.jobId,
    startTime: seconds(job.startTimeMs),
    endTime: job.endTimeMs === null ? null : seconds(job.endTimeMs),
    // A pre-backup check writes no backup: its container URI is null, as the real service's.
    ...(job.kind === "backup"
      ? {
          azureStorageBlobContainerUri:
            job.folder === "" ? null : `${job.containerUri.replace(/\/+$/, "")}/${job.folder}`,
        }
      : {}),
  };
}

async function jobOfKind(
  backups: BackupJobs,
  r: RestRequest,
  kind: BackupJobView["kind"],
): Promise<BackupJobView> {
  const job = await backups.get(r.params.jobId as string);
  if (job.kind !== kind) fail("NotFound", `no ${kind} job ${job.jobId} (it is a ${job.kind} job)`);
  return job;
}

export async function fullBackup(backups: BackupJobs, r: RestRequest): Promise<RestResult> {
  const url = storageUrlOf(r.body, "body");
  const job = await backups.startBackup(url);
  return accepted(r.baseUrl, `/backup/${job.jobId}/pending`, jobJson(job));
}

export async function preFullBackup(backups: BackupJobs, r: RestRequest): Promise<RestResult> {
  const job = await backups.startPreBackup(storageUrlOf(r.body, "body"));
  return accepted(r.baseUrl, `/backup/${job.jobId}/pending`, jobJson(job));
}

export async function preFullRestore(backups: BackupJobs, r: RestRequest): Promise<RestResult> {
  const job = await backups.startPreRestore({
    storageUrl: storageUrlOf(objectField(r.body, "sasTokenParameters"), "sasTokenParameters"),
    folder: stringField(r.body, "folderToRestore"),
  });
  return accepted(r.baseUrl, `/restore/${job.jobId}/pending`, jobJson(job));
}

export async function fullBackupStatus(backups: BackupJobs, r: RestRequest): Promise<RestResult> {
  return { status: 200, body: jobJson(await jobOfKind(backups, r, "backup")) };
}

export async function fullRestore(backups: BackupJobs, r: RestRequest): Promise<RestResult> {
  const url = storageUrlOf(objectField(r.body, "sasTokenParameters"), "sasTokenParameters");
  const job = await backups.startRestore({
    storageUrl: url,
    folder: stringField(r.body, "folderToRestore"),
    keyName: null,
  });
  return accepted(r.baseUrl, `/restore/${job.jobId}/pending`, jobJson(job));
}

export async function selectiveKeyRestore(backups: BackupJobs, r: RestRequest): Promise<RestResult> {
  const url = storageUrlOf(objectField(r.body, "sasTokenParameters"), "sasTokenParameters");
  const job = await backups.startRestore({
    storageUrl: url,
    folder: stringField(r.body, "folder"),
    keyName: r.params.name as string,
  });
  return accepted(r.baseUrl, `/restore/${job.jobId}/pending`, jobJson(job));
}

export async function restoreStatus(backups: BackupJobs, r: RestRequest): Promise<RestResult> {
  return { status: 200, body: jobJson(await jobOfKind(backups, r, "restore")) };
}

/** A JWK's first x5c certificate (base64 DER) as PEM; the security-domain package checks it (after the pool's state). */
function certificatePemOf(jwk: unknown, i: number): string {
  const x5c = typeof jwk === "object" && jwk !== null ? (jwk as { x5c?: unknown }).x5c : undefined;
  const der = Array.isArray(x5c) && typeof x5c[0] === "string" ? x5c[0] : null;
  if (der === null)
    return fail("BadParameter", `certificates[${i}].x5c must hold the certificate (base64 DER)`);
  return `-----BEGIN CERTIFICATE-----\n${der.match(/.{1,64}/g)?.join("\n") ?? ""}\n-----END CERTIFICATE-----\n`;
}

export async function downloadSecurityDomain(sd: SecurityDomainService, r: RestRequest): Promise<RestResult> {
  const certificates = r.body.certificates;
  if (!Array.isArray(certificates)) fail("BadParameter", "certificates must be a list of JWKs with x5c");
  const required = r.body.required;
  if (!Number.isInteger(required)) fail("BadParameter", "required must be the quorum (an integer)");
  const out = await sd.download({
    certificates: (certificates as unknown[]).map(certificatePemOf),
    quorum: required as number,
  });
  return accepted(r.baseUrl, "/securitydomain/download/pending", { value: out.securityDomainJson });
}

/** SecurityDomainOperationStatus: Success once the pool is active; what it waits for otherwise. */
function operationStatus(
  state: SecurityDomainState,
  waitingFor: "download" | "upload",
): Record<string, string> {
  if (state === "active") return { status: "Success", status_details: "The resource is active." };
  const expected = state === "recovery" ? "upload" : "download";
  if (expected !== waitingFor)
    return {
      status: "Failed",
      status_details: `this pool waits for a security domain ${expected}, not a ${waitingFor}`,
    };
  return { status: "InProgress", status_details: `waiting for the security domain ${waitingFor}` };
}

export async function downloadPending(sd: SecurityDomainService): Promise<RestResult> {
  return { status: 200, body: operationStatus(sd.status().state, "download") };
}

export async function uploadPending(sd: SecurityDomainService): Promise<RestResult> {
  return { status: 200, body: operationStatus(sd.status().state, "upload") };
}

/** The recovering pool's exchange key as the service's transfer key (a JWK for RSA-OAEP-256). */
export async function transferKey(sd: SecurityDomainService, r: RestRequest): Promise<RestResult> {
  const { exchangeKeyPem } = await sd.initRecovery();
  const { n, e } = createPublicKey(exchangeKeyPem).export({ format: "jwk" });
  return {
    status: 200,
    body: {
      key_format: "jwk",
      transfer_key: {
        kid: `${r.baseUrl}/transfer_key`,
        kty: "RSA",
        key_ops: ["encrypt"],
        alg: "RSA-OAEP-256",
        n,
        e,
      },
    },
  };
}

/** `{ value }`: the upload blob `hsmpool sd restore-blob` makes (JSON text). */
export async function uploadSecurityDomain(sd: SecurityDomainService, r: RestRequest): Promise<RestResult> {
  await sd.upload(stringField(r.body, "value"));
  return accepted(r.baseUrl, "/securitydomain/upload/pending", operationStatus(sd.status().state, "upload"));
}
