/**
 * Durable Raft storage: an in-memory MemoryStorage (what the Raft core reads) kept
 * in step with two files in `<dir>`:
 *
 *   wal.log        record log (record-log.ts); each record is one sealed batch
 *                  (hard state + entries of one Ready), AAD = "hsmpool-wal-v1" |
 *                  file generation | record number
 *   snapshot.bin   "HSNP" | version 1 | sealed snapshot (AAD "hsmpool-snapshot-v1"),
 *                  written atomically
 *
 * persist() appends one record per Ready and fdatasyncs before returning, so the
 * persist-before-send contract holds. compact() writes a snapshot and then rewrites
 * the WAL to hold only what follows it (atomic rename). A crash between the two
 * leaves the old WAL, whose entries at or below the snapshot are skipped on replay.
 */
import { join } from "node:path";
import { ByteWriter, utf8 } from "@hsmpool/codec";
import { fail, isHsmPoolError } from "@hsmpool/errors";
import { secondsSince } from "@hsmpool/metrics";
import {
  type ConfState,
  type Entry,
  type HardState,
  MemoryStorage,
  type Ready,
  type Snapshot,
} from "@hsmpool/raft";
import { type Randomness, systemRandomness } from "../seams/random.js";
import { type DurableStorage, fileStorage, type SyncOptions } from "../seams/storage.js";
import { type Batch, decodeBatch, decodeSnapshot, encodeBatch, encodeSnapshot } from "./raft-records.js";
import { newGeneration, RecordLog } from "./record-log.js";
import type { Sealers } from "./sealer.js";

export const WAL_FILE = "wal.log";
export const SNAPSHOT_FILE = "snapshot.bin";
/** The WAL is kept zero-filled this far ahead of its last record (record-log.ts: no journal commit per fdatasync). */
export const WAL_PREALLOCATE_BYTES = 1024 * 1024;
const SNAPSHOT_MAGIC = utf8("HSNP");
const SNAPSHOT_VERSION = 1;
const SNAPSHOT_AAD = utf8("hsmpool-snapshot-v1");

export function walAad(generation: Uint8Array, recordNumber: number): Uint8Array {
  return new ByteWriter().raw(utf8("hsmpool-wal-v1")).raw(generation).u64(recordNumber).finish();
}

export interface RecoveredRaftState {
  snapshot: Snapshot;
  hardState: HardState;
  /** Entries after the snapshot. */
  lastIndex: number;
  /** Bytes cut off the WAL's torn tail. */
  truncatedBytes: number;
  /** True when nothing was on disk (a new member). */
  fresh: boolean;
}

export interface OpenRaftStoreOptions {
  dir: string;
  sealers: Sealers;
  /** Where the files live (default: the file system). */
  storage?: DurableStorage;
  /** Draws WAL file generations (default: the OS CSPRNG). */
  random?: Randomness;
  /** For a founding member with no state: the initial snapshot (index 1, term 1) to write. */
  bootstrap?: { conf: ConfState; data: Uint8Array };
}

export class RaftStore {
  private durable: HardState = { term: 0, vote: null, commit: 0 };

  private constructor(
    private readonly dir: string,
    private readonly sealers: Sealers,
    readonly storage: MemoryStorage,
    private wal: RecordLog,
    private readonly files: DurableStorage,
    private readonly random: Randomness,
  ) {}

  static async open(
    opts: OpenRaftStoreOptions,
  ): Promise<{ store: RaftStore; recovered: RecoveredRaftState }> {
    const { dir, sealers } = opts;
    const files = opts.storage ?? fileStorage;
    const random = opts.random ?? systemRandomness;
    const storage = new MemoryStorage();
    let snapshot = await readSnapshotFile(files, join(dir, SNAPSHOT_FILE), sealers);
    const fresh = snapshot === null;
    if (snapshot === null && opts.bootstrap) {
      snapshot = { meta: { index: 1, term: 1, conf: opts.bootstrap.conf }, data: opts.bootstrap.data };
      await writeSnapshotFile(files, join(dir, SNAPSHOT_FILE), sealers, snapshot);
    }
    if (snapshot !== null && snapshot.meta.index > 0) storage.applySnapshot(snapshot);

    const { log, records, truncatedBytes } = await RecordLog.open(
      join(dir, WAL_FILE),
      files,
      random,
      WAL_PREALLOCATE_BYTES,
    );
    const store = new RaftStore(dir, sealers, storage, log, files, random);
    let hardState: HardState = { term: 0, vote: null, commit: 0 };
    try {
      for (let i = 0; i < records.length; i++) {
        const plaintext = await sealers.open(records[i]!, walAad(log.generation, i), `WAL record ${i}`);
        const batch = decodeBatch(plaintext);
        replayEntries(storage, batch.entries, i);
        if (batch.hardState) hardState = batch.hardState;
      }
    } catch (e) {
      await log.close();
      throw e;
    }
    const snap = storage.snapshot();
    // The snapshot is committed by definition; a hard state from before it is stale.
    hardState = {
      term: Math.max(hardState.term, snap.meta.term),
      vote: hardState.term >= snap.meta.term ? hardState.vote : null,
      commit: Math.min(Math.max(hardState.commit, snap.meta.index), storage.lastIndex()),
    };
    storage.setHardState(hardState);
    store.durable = hardState;
    if (fresh && opts.bootstrap && records.length === 0) {
      // Make the founding hard state durable too, so a restart finds the same state.
      await store.appendBatch({ hardState, entries: [] });
    }
    return {
      store,
      recovered: { snapshot: snap, hardState, lastIndex: storage.lastIndex(), truncatedBytes, fresh },
    };
  }

  /** TEST-ONLY chaos hook run before every durable write (a slow or failing disk). */
  beforeWrite: (() => Promise<void>) | null = null;
  /** Told how long each WAL fdatasync took, in seconds (the node's metrics). */
  onFsync: ((seconds: number) => void) | null = null;

  /**
   * Durably stores a Ready's snapshot, entries and hard state (in that order), then
   * fsyncs. A Ready whose only change is the commit index (`mustSync` false, as in
   * etcd) is kept in memory and not written: the commit index is only a hint on
   * restart (a lower one is re-learned from the leader), and the next record that must
   * be synced carries the latest hard state. So a commit costs no fsync of its own.
   * `options.background`: fdatasync on the thread pool (a leader's write of entries it
   * has already sent, raft-driver.ts); the durability promise is the same.
   */
  async persist(rd: Ready, options?: SyncOptions): Promise<void> {
    if (!this.needsWrite(rd)) {
      this.keepInMemory(rd);
      return;
    }
    if (rd.snapshot) {
      if (this.beforeWrite) await this.beforeWrite();
      this.storage.applySnapshot(rd.snapshot);
      await writeSnapshotFile(this.files, join(this.dir, SNAPSHOT_FILE), this.sealers, rd.snapshot);
      await this.rewriteWal();
    }
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    if (rd.entries.length > 0 || (rd.hardState && rd.mustSync)) {
      if (this.beforeWrite && !rd.snapshot) await this.beforeWrite();
      await this.appendBatch(
        { entries: rd.entries, hardState: this.storage.initialState().hardState },
        options,
      );
    }
  }

  /** Whether persist(rd) writes and syncs: a snapshot, entries, or a hard state that must be synced. */
  needsWrite(rd: Ready): boolean {
    return Boolean(rd.snapshot) || rd.entries.length > 0 || (Boolean(rd.hardState) && rd.mustSync);
  }

  /** persist() of a Ready that needs no write (needsWrite false): the hard state is kept in memory only. */
  keepInMemory(rd: Ready): void {
    if (this.needsWrite(rd)) fail("Internal", "keepInMemory: this Ready must be written");
    if (rd.hardState) this.storage.setHardState(rd.hardState);
  }

  /**
   * Snapshot at `index` (<= applied) with membership `conf` and application state
   * `data`; drops the log up to it, on disk and in memory.
   */
  async compact(index: number, conf: ConfState, data: Uint8Array): Promise<void> {
    const snap = this.storage.createSnapshot(index, conf, data);
    await writeSnapshotFile(this.files, join(this.dir, SNAPSHOT_FILE), this.sealers, snap);
    this.storage.compact(index);
    await this.rewriteWal();
  }

  /** Rewrites the WAL (atomically) to hold the current hard state and entries after the snapshot. */
  private async rewriteWal(): Promise<void> {
    const first = this.storage.firstIndex();
    const last = this.storage.lastIndex();
    const entries: Entry[] = last >= first ? this.storage.entries(first, last + 1) : [];
    const batch: Batch = { hardState: this.storage.initialState().hardState, entries };
    // One atomic replace: the new file appears complete (hard state included) or not at all.
    const generation = newGeneration(this.random);
    const sealed = await this.sealers.seal(encodeBatch(batch), walAad(generation, 0));
    await this.wal.close();
    this.wal = await RecordLog.create(
      join(this.dir, WAL_FILE),
      [sealed],
      generation,
      this.files,
      WAL_PREALLOCATE_BYTES,
    );
    if (batch.hardState) this.durable = batch.hardState;
  }

  /** The hard state of the last synced record (what a restart would recover, commit aside). */
  get durableHardState(): HardState {
    return this.durable;
  }

  private async appendBatch(batch: Batch, options?: SyncOptions): Promise<void> {
    const sealed = await this.sealers.seal(
      encodeBatch(batch),
      walAad(this.wal.generation, this.wal.recordCount),
    );
    await this.wal.append([sealed]);
    const started = process.hrtime.bigint();
    await this.wal.sync(options);
    this.onFsync?.(secondsSince(started));
    if (batch.hardState) this.durable = batch.hardState;
  }

  get walSizeBytes(): number {
    return this.wal.sizeBytes;
  }

  async close(): Promise<void> {
    await this.wal.close();
  }
}

function replayEntries(storage: MemoryStorage, entries: Entry[], record: number): void {
  if (entries.length === 0) return;
  try {
    storage.append(entries);
  } catch (e) {
    if (isHsmPoolError(e)) throw e;
    fail("IntegrityError", `WAL record ${record} does not continue the log: ${(e as Error).message}`);
  }
}

async function readSnapshotFile(
  files: DurableStorage,
  path: string,
  sealers: Sealers,
): Promise<Snapshot | null> {
  const bytes = await files.read(path);
  if (bytes === null) return null;
  const header = SNAPSHOT_MAGIC.length + 1;
  if (bytes.length <= header || !SNAPSHOT_MAGIC.every((b, i) => bytes[i] === b)) {
    fail("IntegrityError", `${path} is not an hsmpool snapshot file`);
  }
  if (bytes[SNAPSHOT_MAGIC.length] !== SNAPSHOT_VERSION) {
    fail("IntegrityError", `${path} has snapshot format version ${bytes[SNAPSHOT_MAGIC.length]}`);
  }
  return decodeSnapshot(await sealers.open(bytes.subarray(header), SNAPSHOT_AAD, path));
}

async function writeSnapshotFile(
  files: DurableStorage,
  path: string,
  sealers: Sealers,
  snap: Snapshot,
): Promise<void> {
  const header = Uint8Array.of(...SNAPSHOT_MAGIC, SNAPSHOT_VERSION);
  await files.writeAtomic(path, await sealers.seal(encodeSnapshot(snap), SNAPSHOT_AAD, header));
}
