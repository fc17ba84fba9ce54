/**
 * The operator's and customer's side of a chaos `regionLoss` run: loopback blob storage
 * (`hsmpool storage up`'s Azurite), full backups as the run's administrator, and the
 * recovery of a lost region exactly as a customer does it — `up --recover` on a new
 * fabric, `sd init-recovery`, `sd restore-blob` with two of the three keys the ceremony
 * made (offline, on the customer's side), `sd upload`, `restore` of the latest backup.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { RegionRecoveryDriver } from "@hsmpool/chaos";
import { restoreBlob } from "@hsmpool/security-domain";
import { FabricControllerClient, readHfcInfo } from "@hsmpool/wire";
import { PoolClient } from "../sdk/pool-client.js";
import { TenantDirectoryCredential } from "../tenant/credential.js";
import { customerDirFor } from "./activation.js";
import { waitForJob } from "./backup.js";
import { chaosTenantDir, grantWorkload } from "./chaos-identity.js";
import { debugBundle } from "./debug-bundle.js";
import { startPool, waitForStatus } from "./lifecycle.js";
import { storageDown, storageUp } from "./storage.js";

/** How long the recovered pool may take to sync ownership after the upload, and a restore to end. */
const AFTER_UPLOAD_MS = 120_000;
const RESTORE_LIMIT_MS = 120_000;

function administrator(poolDir: string): Promise<PoolClient> {
  return PoolClient.connect({
    runDir: poolDir,
    credential: new TenantDirectoryCredential(chaosTenantDir(poolDir), "admin"),
    retry: { totalTimeoutMs: 60_000 },
  });
}

export const chaosRegionRecovery: RegionRecoveryDriver = {
  async storageUp(dir) {
    return (await storageUp(dir)).url;
  },
  async storageDown(dir) {
    await storageDown(dir);
  },
  async fullBackup(poolDir, storageUrl, timeoutMs) {
    const admin = await administrator(poolDir);
    try {
      const job = await waitForJob(admin, await admin.startBackup(storageUrl), timeoutMs);
      return {
        jobId: job.jobId,
        status: job.status,
        folder: job.folder,
        ...(job.error ? { error: `${job.error.code}: ${job.error.message}` } : {}),
      };
    } finally {
      admin.close();
    }
  },
  async recover(o) {
    const tenantDir = chaosTenantDir(o.runDir);
    await startPool({
      runDir: o.runDir,
      fabricDir: o.fabricDir,
      bundleDir: await debugBundle(o.runDir),
      tenantDir,
      poolId: o.poolId,
      recover: true,
      healthIntervalMs: o.healthIntervalMs,
      failureThreshold: o.failureThreshold,
      timeoutMs: o.timeoutMs,
      onProgress: o.onProgress,
    });
    const customer = customerDirFor(tenantDir, o.poolId);
    const admin = await administrator(o.runDir);
    try {
      const exchange = await admin.initRecovery();
      const blob = await restoreBlob({
        securityDomain: await readFile(join(customer, "sd.json"), "utf8"),
        privateKeys: await Promise.all(
          ["sd-officer-1.key", "sd-officer-3.key"].map((k) => readFile(join(customer, k), "utf8")),
        ),
        exchangeKey: exchange.exchangeKeyPem,
      });
      const { sdId } = await admin.uploadSecurityDomain(JSON.stringify(blob));
      o.onProgress(`security domain ${sdId} uploaded with 2 of the customer's 3 keys`);
      const info = await readHfcInfo(o.runDir);
      const hfc = new FabricControllerClient(info?.controlAddress ?? "");
      try {
        await waitForStatus(hfc, (s) => s.state === "healthy", AFTER_UPLOAD_MS, "a healthy recovered pool");
      } finally {
        hfc.close();
      }
      const restores = o.unsafeSkipKey
        ? o.keys.filter((k) => k !== o.unsafeSkipKey).map((keyName) => ({ keyName }))
        : [{}];
      for (const which of restores) {
        const started = await admin.startRestore({ storageUrl: o.storageUrl, folder: o.folder, ...which });
        const job = await waitForJob(admin, started, RESTORE_LIMIT_MS);
        // Key by key (TEST-ONLY), a key the backup does not hold is refused: that is not the restore failing.
        if (job.status !== "Succeeded" && !(o.unsafeSkipKey && job.error?.code === "KeyNotFound"))
          return { status: job.status, error: `${job.error?.code}: ${job.error?.message}` };
      }
      // Key by key restores no role assignment: the workload gets its roles again (the full restore brings them back).
      if (o.unsafeSkipKey) await grantWorkload(o.runDir);
      return { status: "Succeeded" };
    } finally {
      admin.close();
    }
  },
};
