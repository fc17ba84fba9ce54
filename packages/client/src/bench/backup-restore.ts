/**
 * Security domain, full backup/restore and disaster recovery benchmark (`npm run bench --
 * backup-restore`, issue 15): a real pool of three node processes on loopback and a real
 * Azurite (hsmpool storage up). Measured, each also as a ratio to one key create timed in
 * the same run (a Raft commit plus an HSM key: what a loaded machine slows alike):
 * - SD download (activation: the SD made in the TEE, Shamir-split to 3 RSA keys) and SD
 *   upload (a recovering pool takes the old identity from a quorum's upload blob);
 * - full backup and full restore of 1,000 keys, from the start call to Succeeded (keys/s);
 * - DR time for those 1,000 keys: from `up --recover` (a blank pool on a new fabric) through
 *   init-recovery, restore-blob, the SD upload and the restore, to every key back;
 * - full backup throughput at 10,000 keys (the fill is bounded by HSMPOOL_BENCH_FILL_BUDGET_MS,
 *   default 6 min; the figure names the count reached).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reportFigure } from "@hsmpool/hfc/bench-support";
import { createCustomerKeyPair, restoreBlob } from "@hsmpool/security-domain";
import { FabricControllerClient, readHfcInfo } from "@hsmpool/wire";
import { fillKeys } from "../bench-support/fill-keys.js";
import { startPool, stopPool, waitForStatus } from "../cli/lifecycle.js";
import { storageDown, storageUp } from "../cli/storage.js";
import { type BackupJob, PoolClient } from "../sdk/pool-client.js";

const KEYS = 1000;
const BIG = 10_000;
const IN_FLIGHT = 16;
const SAMPLES = 20;
const POLL_MS = 50;
const JOB_LIMIT_MS = 600_000;
const FILL_BUDGET_MS = Number(process.env.HSMPOOL_BENCH_FILL_BUDGET_MS ?? 360_000);
const say = (line: string) => process.stdout.write(`${line}\n`);

async function untilDone(client: PoolClient, started: BackupJob): Promise<BackupJob> {
  const deadline = performance.now() + JOB_LIMIT_MS;
  let job = started;
  while (job.status === "InProgress") {
    if (performance.now() > deadline) throw new Error(`${job.kind} job ${job.jobId} did not end`);
    await new Promise((r) => setTimeout(r, POLL_MS));
    job = await client.getJob(job.jobId);
  }
  if (job.status !== "Succeeded") throw new Error(`${job.kind} job failed: ${job.statusDetails}`);
  return job;
}

const connect = (runDir: string) =>
  PoolClient.connect({ runDir, callDeadlineMs: 60_000, retry: { maxAttempts: 30, totalTimeoutMs: 120_000 } });

function figure(name: string, ms: number, create: number, what: string, perSecondOf?: number): void {
  const rate = perSecondOf === undefined ? undefined : perSecondOf / (ms / 1000);
  say(
    `${what}: ${ms.toFixed(0)} ms${rate === undefined ? "" : ` = ${rate.toFixed(0)} keys/s`} = ${(ms / create).toFixed(1)} × one create`,
  );
  if (rate !== undefined) reportFigure({ name: `${name}_per_s`, value: rate, unit: "keys/s" });
  else reportFigure({ name: `${name}_ms`, value: ms, unit: "ms" });
  reportFigure({ name: `${name}_vs_create`, value: ms / create, unit: "ratio" });
}

async function bench(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "hsmpool-bench-backup-"));
  const runDir = join(root, "run");
  const fabricDir = join(root, "fabric");
  const azurite = join(root, "azurite");
  try {
    await startPool({ runDir, fabricDir, activate: false, timeoutMs: 120_000, onProgress: () => {} });
    const poolId = (await readHfcInfo(runDir))?.poolId ?? "";
    const { url } = await storageUp(azurite);
    // The customer's three officers; their private keys stay in this process.
    const officers = await Promise.all([1, 2, 3].map((i) => createCustomerKeyPair(`bench-officer-${i}`)));
    let client = await connect(runDir);
    let t = performance.now();
    const sd = await client.downloadSecurityDomain({
      certificates: officers.map((o) => o.certificatePem),
      quorum: 2,
    });
    const sdDownloadMs = performance.now() - t;

    const ec = { kty: "EC", crv: "P-256" } as const;
    const createMs: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      t = performance.now();
      await client.createKey({ name: `c-${i}`, ...ec });
      createMs.push(performance.now() - t);
    }
    const create = [...createMs].sort((a, b) => a - b)[Math.floor(SAMPLES / 2)] as number;
    say(`baseline: create-key median ${create.toFixed(1)} ms (${SAMPLES} sequential EC P-256 creates)`);
    figure("sd_download", sdDownloadMs, create, "SD download (activation, 3 RSA-2048 shares, quorum 2)");
    await fillKeys(client, {
      keys: KEYS,
      from: SAMPLES,
      prefix: "c-",
      inFlight: IN_FLIGHT,
      budgetMs: 600_000,
      say,
    });

    t = performance.now();
    const backup = await untilDone(client, await client.startBackup(url));
    figure(`full_backup_${KEYS}_keys`, performance.now() - t, create, `full backup of ${KEYS} keys`, KEYS);
    t = performance.now();
    await untilDone(client, await client.startRestore({ storageUrl: url, folder: backup.folder }));
    figure(`full_restore_${KEYS}_keys`, performance.now() - t, create, `full restore of ${KEYS} keys`, KEYS);
    client.close();

    // Region loss: every process and every file of the pool and its fabric are gone; the backup and the SD remain.
    await stopPool(runDir, () => {});
    await rm(runDir, { recursive: true, force: true });
    await rm(fabricDir, { recursive: true, force: true });
    const drStart = performance.now();
    await startPool({ runDir, fabricDir, poolId, recover: true, timeoutMs: 120_000, onProgress: () => {} });
    client = await connect(runDir);
    const exchange = await client.initRecovery();
    const blob = await restoreBlob({
      securityDomain: sd.securityDomainJson,
      privateKeys: [officers[0]?.privateKeyPem ?? "", officers[2]?.privateKeyPem ?? ""],
      exchangeKey: exchange.exchangeKeyPem,
    });
    t = performance.now();
    await client.uploadSecurityDomain(JSON.stringify(blob));
    const sdUploadMs = performance.now() - t;
    const info = await readHfcInfo(runDir);
    const hfc = new FabricControllerClient(info?.controlAddress ?? "");
    try {
      await waitForStatus(hfc, (s) => s.state === "healthy", 120_000, "a healthy recovered pool");
    } finally {
      hfc.close();
    }
    await untilDone(client, await client.startRestore({ storageUrl: url, folder: backup.folder }));
    const drMs = performance.now() - drStart;
    const back = (await client.listKeys()).length;
    if (back < KEYS) throw new Error(`only ${back} of ${KEYS} keys back after the recovery`);
    figure("sd_upload", sdUploadMs, create, "SD upload (recovering pool takes the old identity)");
    figure(`dr_${KEYS}_keys`, drMs, create, `DR of ${KEYS} keys, up --recover to every key restored`);

    const more = await fillKeys(client, {
      keys: BIG,
      from: KEYS,
      prefix: "c-",
      inFlight: IN_FLIGHT,
      budgetMs: FILL_BUDGET_MS,
      say,
    });
    const total = KEYS + more;
    t = performance.now();
    await untilDone(client, await client.startBackup(url));
    const bigMs = performance.now() - t;
    if (total < BIG)
      say(`the fill reached ${total} of ${BIG} keys within its budget: the figure is at ${total} keys`);
    figure("full_backup_10k_keys", bigMs, create, `full backup of ${total} keys`, total);
    reportFigure({ name: "full_backup_10k_keys_count", value: total, unit: "keys" });
    client.close();
  } finally {
    await stopPool(runDir, () => {}).catch(() => {});
    await storageDown(azurite).catch(() => false);
    await rm(root, { recursive: true, force: true });
  }
}

await bench();
