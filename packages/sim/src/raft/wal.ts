import { ByteReader, ByteWriter } from "@hsmpool/codec";
import { type ConfState, type Entry, type HardState, MemoryStorage, type Snapshot } from "@hsmpool/raft";
import type { Recovery, SimDisk } from "../disk.js";

/**
 * The simulated node's write-ahead log: Raft state persisted through a SimDisk.
 *
 * Record payloads (inside the disk's length+CRC framing), first byte = kind:
 *   1 bootstrap  conf                      initial membership (written once, at first start)
 *   2 hardState  term, vote ("" = none), commit
 *   3 entries    count, then per entry: term, index, type (0 normal, 1 confChange), data
 *   4 snapshot   installed from the leader: index, term, conf, data (replaces the log)
 *   5 checkpoint a local compaction: snapshot at index (entries up to compactTo dropped)
 * conf = voters count + ids, learners count + ids.
 *
 * Order within one Ready is snapshot, entries, hardState, so any surviving prefix of
 * the WAL is self-consistent (a hard state never survives without its entries).
 */

const BOOTSTRAP = 1;
const HARD_STATE = 2;
const ENTRIES = 3;
const SNAPSHOT = 4;
const CHECKPOINT = 5;

function writeConf(w: ByteWriter, c: ConfState): void {
  w.varint(c.voters.length);
  for (const v of c.voters) w.varString(v);
  w.varint(c.learners.length);
  for (const l of c.learners) w.varString(l);
}

function readConf(r: ByteReader): ConfState {
  const voters: string[] = [];
  for (let n = r.varint("voter count"); n > 0; n--) voters.push(r.varString("voter"));
  const learners: string[] = [];
  for (let n = r.varint("learner count"); n > 0; n--) learners.push(r.varString("learner"));
  return { voters, learners };
}

function writeSnapshot(w: ByteWriter, s: Snapshot): void {
  w.varint(s.meta.index).varint(s.meta.term);
  writeConf(w, s.meta.conf);
  w.varBytes(s.data);
}

function readSnapshot(r: ByteReader): Snapshot {
  const index = r.varint("snapshot index");
  const term = r.varint("snapshot term");
  const conf = readConf(r);
  return { meta: { index, term, conf }, data: r.varBytes("snapshot data") };
}

export function encodeBootstrap(conf: ConfState): Uint8Array {
  const w = new ByteWriter().u8(BOOTSTRAP);
  writeConf(w, conf);
  return w.finish();
}

export function encodeHardState(hs: HardState): Uint8Array {
  return new ByteWriter()
    .u8(HARD_STATE)
    .varint(hs.term)
    .varString(hs.vote ?? "")
    .varint(hs.commit)
    .finish();
}

export function encodeEntries(entries: readonly Entry[]): Uint8Array {
  const w = new ByteWriter().u8(ENTRIES).varint(entries.length);
  for (const e of entries) {
    w.varint(e.term)
      .varint(e.index)
      .u8(e.type === "confChange" ? 1 : 0)
      .varBytes(e.data);
  }
  return w.finish();
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  const w = new ByteWriter().u8(SNAPSHOT);
  writeSnapshot(w, s);
  return w.finish();
}

export function encodeCheckpoint(s: Snapshot, compactTo: number): Uint8Array {
  const w = new ByteWriter().u8(CHECKPOINT).varint(compactTo);
  writeSnapshot(w, s);
  return w.finish();
}

export type WalRecord =
  | { kind: "bootstrap"; conf: ConfState }
  | { kind: "hardState"; hardState: HardState }
  | { kind: "entries"; entries: Entry[] }
  | { kind: "snapshot"; snapshot: Snapshot }
  | { kind: "checkpoint"; snapshot: Snapshot; compactTo: number };

export function decodeWalRecord(payload: Uint8Array): WalRecord {
  const r = new ByteReader(payload, "sim WAL record");
  const kind = r.u8("record kind");
  switch (kind) {
    case BOOTSTRAP:
      return { kind: "bootstrap", conf: readConf(r) };
    case HARD_STATE: {
      const term = r.varint("term");
      const vote = r.varString("vote");
      return {
        kind: "hardState",
        hardState: { term, vote: vote === "" ? null : vote, commit: r.varint("commit") },
      };
    }
    case ENTRIES: {
      const entries: Entry[] = [];
      for (let n = r.varint("entry count"); n > 0; n--) {
        const term = r.varint("entry term");
        const index = r.varint("entry index");
        const type = r.u8("entry type") === 1 ? "confChange" : "normal";
        entries.push({ term, index, type, data: r.varBytes("entry data") });
      }
      return { kind: "entries", entries };
    }
    case SNAPSHOT:
      return { kind: "snapshot", snapshot: readSnapshot(r) };
    case CHECKPOINT: {
      const compactTo = r.varint("compactTo");
      return { kind: "checkpoint", snapshot: readSnapshot(r), compactTo };
    }
    default:
      throw new Error(`WAL record of unknown kind ${kind}`);
  }
}

export interface RecoveredState {
  storage: MemoryStorage;
  hardState: HardState;
  recovery: Recovery;
}

/**
 * Rebuild a node's MemoryStorage from its disk after a (re)start: read the intact
 * record prefix (the disk truncates a torn/corrupt tail) and replay it in order.
 */
export function recoverStorage(disk: SimDisk): RecoveredState {
  const recovery = disk.recover();
  let storage: MemoryStorage | undefined;
  for (const payload of recovery.records) {
    const rec = decodeWalRecord(payload);
    if (rec.kind === "bootstrap") {
      storage = new MemoryStorage(rec.conf);
      continue;
    }
    if (!storage) throw new Error("WAL does not start with a bootstrap record");
    switch (rec.kind) {
      case "hardState":
        storage.setHardState(rec.hardState);
        break;
      case "entries":
        storage.append(rec.entries);
        break;
      case "snapshot":
        storage.applySnapshot(rec.snapshot);
        break;
      case "checkpoint":
        if (storage.firstIndex() - 1 < rec.snapshot.meta.index) {
          storage.createSnapshot(rec.snapshot.meta.index, rec.snapshot.meta.conf, rec.snapshot.data);
        }
        if (storage.firstIndex() - 1 < rec.compactTo) storage.compact(rec.compactTo);
        break;
    }
  }
  if (!storage) throw new Error("WAL lost its bootstrap record (it is fsynced before the node starts)");
  return { storage, hardState: storage.initialState().hardState, recovery };
}

/**
 * The records of a compacted WAL holding exactly `storage`'s state: written with
 * SimDisk.rewrite after a local compaction so the file does not grow forever.
 */
export function compactedWal(bootstrapConf: ConfState, storage: MemoryStorage): Uint8Array[] {
  const out = [encodeBootstrap(bootstrapConf)];
  const snap = storage.snapshot();
  // Founding members boot with the core's bootstrap snapshot; only a newer one needs writing.
  const bootIndex = new MemoryStorage(bootstrapConf).snapshot().meta.index;
  if (snap.meta.index > bootIndex) out.push(encodeSnapshot(snap));
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  if (last >= first) out.push(encodeEntries(storage.entries(first, last + 1)));
  out.push(encodeHardState(storage.initialState().hardState));
  return out;
}
