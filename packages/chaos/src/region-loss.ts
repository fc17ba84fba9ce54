/**
 * The region-loss phases of a chaos run (issue 15): full backups to the run's own blob
 * storage while the workload runs; at the scenario's time every server of the pool is
 * lost (HFC LoseServer for each member, then nothing of the region is left: its run dir
 * and fabric are moved out of reach); after the workload a blank pool is recovered by the
 * customer's procedure (`up --recover`, SD init-recovery / restore-blob with a quorum of
 * the customer's keys / upload, restore of the latest successful backup); then every key
 * is read, signed with, and every signature the clients hold is verified again, for the
 * recovery checker. Every step is bounded in time.
 */
import { mkdir, rename } from "node:fs/promises";
import { join } from "node:path";
import type { FullBackupRecord } from "./checkers/recovery.js";
import type { HistoryRecorder } from "./history.js";
import type { StatusSample } from "./timeline.js";
import { type KeyVaultClient, runOperation } from "./workload/client.js";
import type { HeldSignature } from "./workload/generator.js";

/** Where the lost region's pool and fabric are kept for the checkers (node logs, leak scan): out of the new pool's reach. */
export const LOST_REGION_DIR = "lost-region";
export const STORAGE_DIR = "storage";
/** How long one full backup may take before the harness stops waiting for it. */
const BACKUP_TIMEOUT_MS = 60_000;

export interface FullBackupOutcome {
  jobId: string;
  status: string;
  folder: string;
  error?: string;
}

export interface RecoverOptions {
  runDir: string;
  fabricDir: string;
  /** The lost pool's id: the customer recreates the same pool. */
  poolId: string;
  healthIntervalMs: number;
  failureThreshold: number;
  timeoutMs: number;
  storageUrl: string;
  folder: string;
  /** The workload's key space (for a key-by-key restore). */
  keys: readonly string[];
  /** TEST-ONLY: restore key by key and leave this key out. */
  unsafeSkipKey?: string;
  onProgress: (line: string) => void;
}

/** What a region-loss run needs of the pool's operator and customer (the CLI provides it). */
export interface RegionRecoveryDriver {
  /** Starts loopback blob storage with its data in `dir`; a container SAS URL. */
  storageUp(dir: string): Promise<string>;
  /** Stops the storage started in `dir` (only that one). */
  storageDown(dir: string): Promise<void>;
  /** A full backup of the pool to the container, waited for until it ends (or `timeoutMs`). */
  fullBackup(poolDir: string, storageUrl: string, timeoutMs: number): Promise<FullBackupOutcome>;
  /**
   * A blank pool in recovery mode at `runDir` on a new fabric, the security domain uploaded
   * with a quorum of the customer's keys, then the restore of `folder`: the restore job's end.
   */
  recover(opts: RecoverOptions): Promise<{ status: string; error?: string }>;
}

/** What the region-loss phases share with the run. */
export interface RegionRun {
  readonly runDir: string;
  readonly poolDir: string;
  readonly fabricDir: string;
  readonly history: HistoryRecorder;
  readonly nowMs: () => number;
  readonly progress: (line: string) => void;
  readonly backups: FullBackupRecord[];
}

/** Full backups every `everyMs` from `fromMs` until `untilMs` (run time), one after the other, recorded with their history indexes. */
export async function backupsUntil(
  run: RegionRun,
  driver: RegionRecoveryDriver,
  storageUrl: string,
  opts: {
    fromMs: number;
    everyMs: number;
    untilMs: number;
    sleep: (ms: number) => Promise<void>;
    stopped: () => boolean;
  },
): Promise<void> {
  for (let next = opts.fromMs + opts.everyMs; next < opts.untilMs && !opts.stopped(); next += opts.everyMs) {
    await opts.sleep(Math.max(0, next - run.nowMs()));
    if (opts.stopped() || run.nowMs() >= opts.untilMs) break;
    const fromIndex = run.history.events.length;
    const budget = Math.min(BACKUP_TIMEOUT_MS, opts.untilMs - run.nowMs() + 5000);
    const outcome = await driver
      .fullBackup(run.poolDir, storageUrl, budget)
      .catch((e: unknown) => ({ jobId: "", status: "Unknown", folder: "", error: messageOf(e) }));
    const record: FullBackupRecord = { ...outcome, fromIndex, toIndex: run.history.events.length };
    run.backups.push(record);
    run.progress(
      `  full backup ${record.folder || "(none)"}: ${record.status}${record.error ? ` (${record.error})` : ""}`,
    );
  }
}

/** The latest backup that succeeded (and ended) before the region was lost. */
export function latestGoodBackup(backups: readonly FullBackupRecord[]): FullBackupRecord | undefined {
  return backups.filter((b) => b.status === "Succeeded").at(-1);
}

/**
 * Loses every member's server through the HFC (a nemesis event naming them), then moves the
 * region's run dir and fabric out of reach once `teardown` has stopped what is left.
 */
export async function loseRegion(
  run: RegionRun,
  hfc: { loseServer(serverId: string): Promise<{ fenced: string[] }> },
  status: StatusSample | undefined,
  teardown: () => Promise<void>,
): Promise<void> {
  const members = status?.members.filter((m) => m.server !== "") ?? [];
  const lost: string[] = [];
  const fenced: string[] = [];
  for (const m of members) {
    try {
      fenced.push(...(await hfc.loseServer(m.server)).fenced);
      lost.push(`${m.server} (${m.id})`);
    } catch (e) {
      run.progress(`  could not lose server ${m.server}: ${messageOf(e)}`);
    }
  }
  run.history.nemesis({
    type: "start",
    f: "server-loss",
    faultId: 0,
    targets: members.map((m) => m.id),
    detail: `region loss: servers ${lost.join(", ") || "none"} lost (fenced ${fenced.join(", ") || "none"})`,
  });
  run.progress(`region lost: ${lost.join(", ")}`);
  await teardown();
  await mkdir(join(run.runDir, LOST_REGION_DIR), { recursive: true });
  await rename(run.poolDir, join(run.runDir, LOST_REGION_DIR, "pool"));
  await rename(run.fabricDir, join(run.runDir, LOST_REGION_DIR, "fabric"));
}

/** After the recovery: every key read and signed with, every held signature verified, and a list — all `final`. */
export async function readRecoveredKeys(
  reader: KeyVaultClient,
  keys: readonly string[],
  held: readonly HeldSignature[],
  process: number,
  history: HistoryRecorder,
  timeoutMs: number,
): Promise<void> {
  const opts = { timeoutMs, final: true };
  for (const key of keys) {
    const got = await runOperation(reader, { f: "get", key }, process, history, opts);
    if (got.type === "ok")
      await runOperation(
        reader,
        { f: "sign", key, data: new TextEncoder().encode(`after the recovery: ${key}`) },
        process,
        history,
        opts,
      );
  }
  for (const h of held)
    await runOperation(reader, { f: "verify", key: h.key, held: h }, process, history, opts);
  await runOperation(reader, { f: "list" }, process, history, opts);
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
