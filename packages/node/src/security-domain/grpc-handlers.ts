/** gRPC handlers of proto/pool.proto's SecurityDomain service, onto the transport-free functions. */
import type * as grpc from "@grpc/grpc-js";
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
  onInternalError: (e: unknown) => void,
): grpc.UntypedServiceImplementation {
  const h = <Req, Res>(f: (r: Req) => Promise<Res>) =>
    unary(f, onInternalError) as grpc.handleUnaryCall<unknown, unknown>;
  return {
    Download: h(async (r: { certificatesPem: string[]; quorum: number }) =>
      sd.download({ certificates: r.certificatesPem, quorum: r.quorum }),
    ),
    InitRecovery: h(async () => sd.initRecovery()),
    Upload: h(async (r: { uploadBlobJson: string }) => sd.upload(r.uploadBlobJson)),
    Status: h(async () => {
      const { state, record } = sd.status();
      return {
        state,
        sdId: record?.sdId ?? "",
        quorum: record?.quorum ?? 0,
        shareCount: record?.shareCount ?? 0,
        activatedMs: record?.activatedMs ?? 0,
      };
    }),
    StartBackup: h(async (r: { storageUrl: string }) => jobMessage(backups.startBackup(r.storageUrl))),
    StartRestore: h(async (r: { storageUrl: string; folder: string; keyName: string }) =>
      jobMessage(
        backups.startRestore({ storageUrl: r.storageUrl, folder: r.folder, keyName: r.keyName || null }),
      ),
    ),
    GetJob: h(async (r: { jobId: string }) => jobMessage(backups.get(r.jobId))),
  };
}
