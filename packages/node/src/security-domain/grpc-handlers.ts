/**
 * gRPC handlers of proto/pool.proto's SecurityDomain service, onto the transport-free
 * functions. Every handler authorises first (bearer token + local RBAC, as every data-plane
 * call): the HFC's client certificate alone can neither download the SD nor start a
 * restore. The data actions are the real service's (docs/identity.md).
 */
import type * as grpc from "@grpc/grpc-js";
import { DataActions as A, keyScope, ROOT_SCOPE } from "@hsmpool/pool";
import type { DataPlaneAccess } from "../data-plane/access.js";
import { unary } from "../data-plane/grpc-errors.js";
import type { BackupJobs, BackupJobView } from "./backup-jobs.js";
import type { SecurityDomainService } from "./sd-service.js";

export function jobMessage(job: BackupJobView) {
  return {
    jobId: job.jobId,
    kind: job.kind,
    status: job.status,
    folder: job.folder,
    startTimeMs: job.startTimeMs,
    endTimeMs: job.endTimeMs ?? 0,
    statusDetails: job.statusDetails,
    errorCode: job.error?.code ?? "",
    errorMessage: job.error?.message ?? "",
    keyName: job.keyName ?? "",
  };
}

export function securityDomainImplementation(
  sd: SecurityDomainService,
  backups: BackupJobs,
  access: DataPlaneAccess,
  onInternalError: (e: unknown) => void,
): grpc.UntypedServiceImplementation {
  const h = <Req, Res>(f: (r: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>) =>
    unary(f, onInternalError) as grpc.handleUnaryCall<unknown, unknown>;
  return {
    Download: h(async (r: { certificatesPem: string[]; quorum: number }, call) => {
      await access.authorize(call, A.SecurityDomainDownload, ROOT_SCOPE);
      return sd.download({ certificates: r.certificatesPem, quorum: r.quorum });
    }),
    InitRecovery: h(async (_r: unknown, call) => {
      await access.authorize(call, A.SecurityDomainTransferKey, ROOT_SCOPE);
      return sd.initRecovery();
    }),
    Upload: h(async (r: { uploadBlobJson: string }, call) => {
      await access.authorize(call, A.SecurityDomainUpload, ROOT_SCOPE);
      return sd.upload(r.uploadBlobJson);
    }),
    Status: h(async (_r: unknown, call) => {
      const { state, record } = sd.status();
      // A pool in recovery reports on the upload, any other on the download (the real service's two pending reads).
      const action = state === "recovery" ? A.SecurityDomainUploadStatus : A.SecurityDomainDownloadStatus;
      await access.authorize(call, action, ROOT_SCOPE);
      return {
        state,
        sdId: record?.sdId ?? "",
        quorum: record?.quorum ?? 0,
        shareCount: record?.shareCount ?? 0,
        activatedMs: record?.activatedMs ?? 0,
      };
    }),
    StartBackup: h(async (r: { storageUrl: string }, call) => {
      await access.authorize(call, A.BackupStart, ROOT_SCOPE);
      return jobMessage(await backups.startBackup(r.storageUrl));
    }),
    StartRestore: h(async (r: { storageUrl: string; folder: string; keyName: string }, call) => {
      // A full restore replaces every key: `/`; a selective one only its key's scope.
      await access.authorize(call, A.RestoreStart, r.keyName ? keyScope(r.keyName) : ROOT_SCOPE);
      return jobMessage(
        await backups.startRestore({
          storageUrl: r.storageUrl,
          folder: r.folder,
          keyName: r.keyName || null,
        }),
      );
    }),
    GetJob: h(async (r: { jobId: string }, call) => {
      await access.authenticate(call);
      const job = await backups.get(r.jobId);
      await access.authorize(call, job.kind === "backup" ? A.BackupStatus : A.RestoreStatus, ROOT_SCOPE);
      return jobMessage(job);
    }),
  };
}
