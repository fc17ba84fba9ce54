import { describe, expect, it } from "vitest";
import { type BackupJobRecord, encodeCommand, KeyStore, MAX_BACKUP_JOBS, type PoolCommand } from "./index.js";
import { EntryFeed, genesisCommand } from "./testing/fixtures.js";

const NOW = 1_700_000_000_000;

function pool() {
  const store = new KeyStore({ poolId: "pool-1" });
  const feed = new EntryFeed();
  const apply = (c: PoolCommand) => store.apply(feed.next(c));
  apply(genesisCommand("pool-1", "n1"));
  return { store, apply };
}

const job = (jobId: string, over: Partial<BackupJobRecord> = {}): BackupJobRecord => ({
  jobId,
  kind: "backup",
  status: "InProgress",
  folder: `mhsm-pool-1-${jobId}`,
  startTimeMs: NOW,
  endTimeMs: null,
  statusDetails: "Full backup is in progress",
  error: null,
  keyName: null,
  containerUri: "http://127.0.0.1:10000/devstoreaccount1/backups",
  recordedBy: "n1",
  ...over,
});
const record = (j: BackupJobRecord, requestId = `r-${j.jobId}-${j.status}`): PoolCommand => ({
  kind: "recordBackupJob",
  requestId,
  job: j,
  at: NOW,
});
const ended = (j: BackupJobRecord, status: "Succeeded" | "Failed", by = "n1"): BackupJobRecord => ({
  ...j,
  status,
  endTimeMs: NOW + 5,
  recordedBy: by,
  ...(status === "Failed" ? { error: { code: "ServiceUnavailable", message: "its primary stopped" } } : {}),
});

describe("backup and restore jobs in the replicated state", () => {
  it("records a job's start and end; the first terminal status wins (a failed job never turns Succeeded)", () => {
    const { store, apply } = pool();
    const j = job("j1");
    expect(apply(record(j)).outcome).toMatchObject({ kind: "backupJobRecorded", ignored: false });
    expect(store.backupJob("j1")?.status).toBe("InProgress");
    // A new primary fails the orphan; the old primary's late Succeeded changes nothing.
    expect(apply(record(ended(j, "Failed", "n2"))).outcome).toMatchObject({ ignored: false });
    const late = apply(record(ended(j, "Succeeded"))).outcome;
    expect(late).toMatchObject({ kind: "backupJobRecorded", ignored: true, job: { status: "Failed" } });
    expect(store.backupJob("j1")).toMatchObject({ status: "Failed", recordedBy: "n2" });
    // A stale InProgress record after the end changes nothing either.
    expect(apply(record(j, "again")).outcome).toMatchObject({ ignored: true });
    expect(store.backupJob("nope")).toBeNull();
  });

  it("survives the log codec and a snapshot round trip (version 6), and keeps only the newest jobs", () => {
    const { store, apply } = pool();
    for (let i = 0; i < MAX_BACKUP_JOBS + 3; i++)
      apply(record(job(`j${String(i).padStart(3, "0")}`, { startTimeMs: NOW + i })));
    expect(store.backupJob("j000")).toBeNull();
    expect(store.backupJob("j002")).toBeNull();
    expect(store.backupJob("j003")?.status).toBe("InProgress");
    const snapshot = store.snapshot();
    expect(Buffer.from(snapshot.subarray(0, 4)).toString()).toBe("HPS1");
    const copy = KeyStore.restore(snapshot);
    expect(copy.backupJob("j066")).toEqual(store.backupJob("j066"));
    expect(copy.snapshot()).toEqual(snapshot);
    const bytes = encodeCommand(record(ended(job("x"), "Succeeded")));
    expect(bytes.length).toBeGreaterThan(0);
  });

  it("refuses malformed records and changes nothing", () => {
    const { store } = pool();
    const before = store.snapshot();
    expect(() => encodeCommand(record(job("j1", { status: "Succeeded" })))).toThrow(
      /endTimeMs is set exactly/,
    );
    expect(() => encodeCommand(record(job("j1", { kind: "nope" as "backup" })))).toThrow(
      /job.kind must be one of/,
    );
    expect(store.snapshot()).toEqual(before);
  });

  it("a full restore keeps the pool's own jobs (they are not the backup's)", () => {
    const source = pool();
    source.apply(record(job("old")));
    const backup = source.store.snapshot();
    const target = pool();
    target.apply({
      kind: "activateSecurityDomain",
      requestId: "a1",
      sdId: "sd-1",
      quorum: 2,
      shareCount: 3,
      sealedSecret: Uint8Array.of(9),
      origin: "download",
      at: NOW,
    });
    target.apply(record(job("mine", { kind: "restore" })));
    const r = target.apply({ kind: "restoreBackup", requestId: "r1", state: backup, keyName: null, at: NOW });
    expect(r.outcome).toMatchObject({ kind: "backupRestored" });
    expect(target.store.backupJob("mine")?.kind).toBe("restore");
    expect(target.store.backupJob("old")).toBeNull();
  });
});
