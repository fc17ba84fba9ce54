import { Prng } from "@hsmpool/faults";
import { type Entry, MemoryStorage } from "@hsmpool/raft";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SimDisk } from "../disk.js";
import {
  compactedWal,
  decodeWalRecord,
  encodeBootstrap,
  encodeCheckpoint,
  encodeEntries,
  encodeHardState,
  encodeSnapshot,
  recoverStorage,
} from "./wal.js";

const CONF = { voters: ["n1", "n2", "n3"], learners: [] };
const entry = (index: number, term: number, data: number[] = [index]): Entry => ({
  index,
  term,
  type: "normal",
  data: new Uint8Array(data),
});

const entryArb = fc.record({
  term: fc.nat({ max: 1e9 }),
  index: fc.nat({ max: 2 ** 40 }),
  type: fc.constantFrom("normal" as const, "confChange" as const),
  data: fc.uint8Array({ maxLength: 30 }),
});
const confArb = fc.record({
  voters: fc.array(fc.string({ minLength: 1, maxLength: 5 }), { maxLength: 5 }),
  learners: fc.array(fc.string({ minLength: 1, maxLength: 5 }), { maxLength: 3 }),
});

describe("WAL record codec", () => {
  it("round-trips every record kind — property", () => {
    fc.assert(
      fc.property(
        fc.array(entryArb, { maxLength: 10 }),
        confArb,
        fc.nat(),
        fc.option(fc.string({ minLength: 1, maxLength: 8 }), { nil: null }),
        fc.uint8Array({ maxLength: 50 }),
        (entries, conf, n, vote, data) => {
          expect(decodeWalRecord(encodeEntries(entries))).toEqual({ kind: "entries", entries });
          expect(decodeWalRecord(encodeBootstrap(conf))).toEqual({ kind: "bootstrap", conf });
          const hardState = { term: n, vote, commit: n >> 1 };
          expect(decodeWalRecord(encodeHardState(hardState))).toEqual({ kind: "hardState", hardState });
          const snapshot = { meta: { index: n, term: n >> 2, conf }, data };
          expect(decodeWalRecord(encodeSnapshot(snapshot))).toEqual({ kind: "snapshot", snapshot });
          expect(decodeWalRecord(encodeCheckpoint(snapshot, n >> 1))).toEqual({
            kind: "checkpoint",
            snapshot,
            compactTo: n >> 1,
          });
        },
      ),
    );
  });

  it("rejects a record of unknown kind", () => {
    expect(() => decodeWalRecord(new Uint8Array([99]))).toThrow(/unknown kind/);
  });
});

describe("recoverStorage", () => {
  it("rebuilds hard state, entries (with overwritten suffixes) and snapshots in WAL order", () => {
    const disk = new SimDisk();
    disk.append(encodeBootstrap(CONF));
    disk.append(encodeEntries([entry(2, 2), entry(3, 2), entry(4, 2)]));
    disk.append(encodeHardState({ term: 2, vote: "n1", commit: 3 }));
    disk.append(encodeEntries([entry(4, 3, [44]), entry(5, 3)])); // a new leader overwrote 4
    disk.append(encodeHardState({ term: 3, vote: "n2", commit: 5 }));
    disk.fsync();
    const { storage, hardState, recovery } = recoverStorage(disk);
    expect(recovery.problem).toBeUndefined();
    expect(hardState).toEqual({ term: 3, vote: "n2", commit: 5 });
    expect(storage.entries(2, 6)).toEqual([entry(2, 2), entry(3, 2), entry(4, 3, [44]), entry(5, 3)]);
  });

  it("after a crash, recovers a consistent prefix: never a hard state without its entries", () => {
    for (let seed = 0; seed < 200; seed++) {
      const disk = new SimDisk();
      disk.append(encodeBootstrap(CONF));
      disk.fsync();
      // One Ready: entries, then the hard state that commits them.
      disk.append(encodeEntries([entry(2, 2), entry(3, 2)]));
      disk.append(encodeHardState({ term: 2, vote: "n1", commit: 3 }));
      disk.crash(Prng.fromSeed(seed), { corruptProbability: 0.5 });
      const { storage, hardState } = recoverStorage(disk);
      expect(hardState.commit).toBeLessThanOrEqual(storage.lastIndex());
      if (hardState.commit === 3) expect(storage.lastIndex()).toBe(3);
    }
  });

  it("replays a local compaction checkpoint and a compacted rewrite to the same storage", () => {
    const disk = new SimDisk();
    disk.append(encodeBootstrap(CONF));
    const ents = Array.from({ length: 10 }, (_, i) => entry(i + 2, 2));
    disk.append(encodeEntries(ents));
    disk.append(encodeHardState({ term: 2, vote: "n1", commit: 11 }));
    const live = new MemoryStorage(CONF);
    live.append(ents);
    live.setHardState({ term: 2, vote: "n1", commit: 11 });
    const snap = live.createSnapshot(8, CONF, new Uint8Array([1, 2, 3]));
    live.compact(8);
    disk.append(encodeCheckpoint(snap, 8));
    disk.fsync();

    const a = recoverStorage(disk).storage;
    expect(a.firstIndex()).toBe(9);
    expect(a.snapshot().meta.index).toBe(8);
    expect(a.entries(9, 12)).toEqual(ents.slice(7));

    disk.rewrite(compactedWal(CONF, live));
    const b = recoverStorage(disk).storage;
    expect(b.snapshot()).toEqual(a.snapshot());
    expect(b.entries(9, 12)).toEqual(a.entries(9, 12));
    expect(b.initialState()).toEqual(a.initialState());
  });

  it("refuses a disk that lost its bootstrap record", () => {
    expect(() => recoverStorage(new SimDisk())).toThrow(/bootstrap/);
  });
});
