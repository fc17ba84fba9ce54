import { randomBytes } from "node:crypto";
import { readdir, readFile, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isHsmPoolError } from "@hsmpool/errors";
import { HsmDevice, type Session } from "@hsmpool/hsm";
import type { Enclave, Fabric } from "@hsmpool/platform";
import type { Entry, Ready } from "@hsmpool/raft";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchTestEnclave, makeFabric, removeTempDirs, tempDir } from "../testing/fixtures.js";
import { RaftStore, SNAPSHOT_FILE, WAL_FILE } from "./raft-store.js";
import { FILE_HEADER_BYTES, RECORD_HEADER_BYTES, RecordLog } from "./record-log.js";
import { cpuSealer, poolKeySealer, Sealers } from "./sealer.js";

let root: string;
let fabric: Fabric;
let enclave: Enclave;
let device: HsmDevice;
let session: Session;
let poolKeyId: string;

beforeAll(async () => {
  root = await tempDir();
  fabric = await makeFabric(root, 1);
  enclave = await launchTestEnclave(root, fabric);
  device = await HsmDevice.open(fabric.servers()[0]!.hsmDir);
  const credential = await device.partition(0).initialize();
  session = await device.partition(0).login(credential);
  poolKeyId = (await session.generateKey({ kty: "oct", size: 256, ops: ["encrypt", "decrypt"] })).id;
});

afterAll(async () => {
  await device.close();
  await removeTempDirs();
});

async function expectIntegrityError(p: Promise<unknown>): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(isHsmPoolError(e, "IntegrityError"), `expected IntegrityError, got ${String(e)}`).toBe(true);
}

type Op =
  | { kind: "append"; sizes: number[] }
  | { kind: "sync" }
  | { kind: "crash"; cut: number; tear: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      sizes: fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 3 }),
    }),
  },
  { weight: 3, arbitrary: fc.constant({ kind: "sync" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("crash" as const),
      cut: fc.double({ min: 0, max: 1, noNaN: true }),
      tear: fc.boolean(),
    }),
  },
);

describe("record log crash recovery", () => {
  it("recovers a prefix that holds every fsynced record after random crashes and torn tails", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), fc.integer(), async (ops, seed) => {
        const path = join(await tempDir("hsmpool-wal-prop-"), "wal.log");
        let { log } = await RecordLog.open(path);
        /** What the log holds as far as the writer knows, and where each record starts. */
        let written: Uint8Array[] = [];
        let offsets: number[] = [];
        let end = FILE_HEADER_BYTES;
        let synced = { count: 0, size: FILE_HEADER_BYTES };
        let salt = seed;
        for (const op of ops) {
          if (op.kind === "append") {
            const payloads = op.sizes.map((n) =>
              Uint8Array.from(randomBytes(n)).map((b) => b ^ (salt++ & 0xff)),
            );
            await log.append(payloads);
            for (const p of payloads) {
              offsets.push(end);
              written.push(p);
              end += RECORD_HEADER_BYTES + p.length;
            }
          } else if (op.kind === "sync") {
            await log.sync();
            synced = { count: written.length, size: end };
          } else {
            await log.close();
            // After a crash the file is the synced prefix plus some prefix of the unsynced bytes ...
            const cut = synced.size + Math.floor(op.cut * (end - synced.size));
            await truncate(path, cut);
            // ... and the last, partly written record may hold garbage instead of its bytes.
            const lastStart = [...offsets].reverse().find((o) => o < cut);
            if (op.tear && lastStart !== undefined && lastStart >= synced.size && cut - lastStart > 1) {
              const image = await readFile(path);
              const at = lastStart + 1 + (Math.abs(salt) % (cut - lastStart - 1));
              image[at] = (image[at]! ^ 0x5a) & 0xff;
              await writeFile(path, image);
            }
            const reopened = await RecordLog.open(path);
            log = reopened.log;
            const got = reopened.records;
            expect(got.length).toBeGreaterThanOrEqual(synced.count);
            expect(got.length).toBeLessThanOrEqual(written.length);
            expect(got.map((r) => Buffer.from(r).toString("hex"))).toEqual(
              written.slice(0, got.length).map((w) => Buffer.from(w).toString("hex")),
            );
            written = written.slice(0, got.length);
            offsets = offsets.slice(0, got.length);
            end = log.sizeBytes;
            synced = { count: got.length, size: end };
          }
        }
        await log.close();
      }),
      { numRuns: 60 },
    );
  });

  it("refuses to start on a flipped byte before the last record (IntegrityError)", async () => {
    const dir = await tempDir("hsmpool-wal-flip-");
    const path = join(dir, "wal.log");
    const { log } = await RecordLog.open(path);
    await log.append([1, 2, 3, 4, 5].map((n) => new Uint8Array(20 + n).fill(n)));
    await log.sync();
    await log.close();
    const image = await readFile(path);
    const lastRecordStart = image.length - (RECORD_HEADER_BYTES + 25);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: lastRecordStart - 1 }),
        fc.integer({ min: 1, max: 255 }),
        async (at, x) => {
          const copy = Buffer.from(image);
          copy[at] = copy[at]! ^ x;
          const p = join(dir, `flipped-${at}-${x}.log`);
          await writeFile(p, copy);
          await expectIntegrityError(RecordLog.open(p));
        },
      ),
      { numRuns: 80 },
    );
  });

  it("a preallocated log keeps zeros ahead of its records: not a torn tail; grows by chunks; a torn record in it is cut", async () => {
    const path = join(await tempDir("hsmpool-wal-prealloc-"), "wal.log");
    const chunk = 4096;
    const { log } = await RecordLog.open(path, undefined, undefined, chunk);
    const first = [1, 2, 3].map((n) => new Uint8Array(100).fill(n));
    await log.append(first);
    await log.sync();
    await log.close();
    expect((await readFile(path)).length).toBe(chunk);
    const reopened = await RecordLog.open(path, undefined, undefined, chunk);
    expect(reopened.truncatedBytes).toBe(0);
    expect(reopened.records.map((r) => r[0])).toEqual([1, 2, 3]);
    await reopened.log.append([new Uint8Array(5000).fill(4)]); // past the chunk: the file grows to 2 chunks
    await reopened.log.sync();
    const logical = reopened.log.sizeBytes;
    await reopened.log.close();
    const image = await readFile(path);
    expect(image.length).toBe(2 * chunk);
    // A record torn into the zeroed space: cut, the rest kept, appending goes on.
    image.fill(0x48, logical, logical + 9);
    await writeFile(path, image);
    const torn = await RecordLog.open(path, undefined, undefined, chunk);
    expect(torn.truncatedBytes).toBe(image.length - logical);
    expect(torn.records.map((r) => r[0])).toEqual([1, 2, 3, 4]);
    await torn.log.append([new Uint8Array(10).fill(5)]);
    await torn.log.sync();
    await torn.log.close();
    const again = await RecordLog.open(path, undefined, undefined, chunk);
    expect(again.records.map((r) => r[0])).toEqual([1, 2, 3, 4, 5]);
    await again.log.close();
  });

  it("cuts a torn last record and keeps appending after it", async () => {
    const path = join(await tempDir("hsmpool-wal-torn-"), "wal.log");
    const { log } = await RecordLog.open(path);
    await log.append([new Uint8Array(10).fill(1), new Uint8Array(30).fill(2)]);
    await log.sync();
    await log.close();
    await truncate(path, (await readFile(path)).length - 7);
    const reopened = await RecordLog.open(path);
    expect(reopened.records).toHaveLength(1);
    expect(reopened.truncatedBytes).toBe(RECORD_HEADER_BYTES + 30 - 7);
    await reopened.log.append([new Uint8Array(5).fill(3)]);
    await reopened.log.sync();
    await reopened.log.close();
    const again = await RecordLog.open(path);
    expect(again.records.map((r) => r[0])).toEqual([1, 3]);
    await again.log.close();
  });
});

const MARKER = "PLAINTEXT-MARKER-7f3a9c";

function entry(index: number, term: number, text: string): Entry {
  return { index, term, type: "normal", data: new TextEncoder().encode(text) };
}

function ready(entries: Entry[], commit: number, term = 2): Ready {
  return {
    entries,
    hardState: { term, vote: "n1", commit },
    committedEntries: [],
    messages: [],
    readStates: [],
    mustSync: true,
  };
}

async function filesContain(dir: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  for (const name of await readdir(dir)) {
    const bytes = await readFile(join(dir, name));
    if (bytes.includes(Buffer.from(needle))) hits.push(name);
  }
  return hits;
}

describe("raft store (sealed WAL + snapshots)", () => {
  const conf = { voters: ["n1", "n2", "n3"], learners: [] };

  it("recovers hard state and entries after a restart, with records sealed by CPU and pool key", async () => {
    const dir = await tempDir("hsmpool-raftstore-");
    const sealers = new Sealers(cpuSealer(enclave));
    const { store, recovered } = await RaftStore.open({
      dir,
      sealers,
      bootstrap: { conf, data: new Uint8Array() },
    });
    expect(recovered.fresh).toBe(true);
    expect(recovered.snapshot.meta).toEqual({ index: 1, term: 1, conf });
    await store.persist(ready([entry(2, 2, `${MARKER}-a`), entry(3, 2, `${MARKER}-b`)], 2));
    sealers.usePoolKey(poolKeySealer(session, poolKeyId));
    await store.persist(ready([entry(4, 2, `${MARKER}-c`)], 4));
    await store.close();
    expect(await filesContain(dir, MARKER)).toEqual([]);

    const reopenSealers = new Sealers(cpuSealer(enclave));
    reopenSealers.usePoolKey(poolKeySealer(session, poolKeyId));
    const again = await RaftStore.open({
      dir,
      sealers: reopenSealers,
      bootstrap: { conf, data: new Uint8Array() },
    });
    expect(again.recovered.fresh).toBe(false);
    expect(again.recovered.hardState).toEqual({ term: 2, vote: "n1", commit: 4 });
    const texts = again.store.storage.entries(2, 5).map((e) => new TextDecoder().decode(e.data));
    expect(texts).toEqual([`${MARKER}-a`, `${MARKER}-b`, `${MARKER}-c`]);
    await again.store.close();

    // Without the pool key the pool-sealed records cannot be read: refuse, do not skip them.
    await expectIntegrityError(
      RaftStore.open({
        dir,
        sealers: new Sealers(cpuSealer(enclave)),
        bootstrap: { conf, data: new Uint8Array() },
      }),
    );
  });

  it("a conflicting suffix from a new leader overwrites the old one across restarts", async () => {
    const dir = await tempDir("hsmpool-raftstore-conflict-");
    const sealers = new Sealers(cpuSealer(enclave));
    const { store } = await RaftStore.open({ dir, sealers, bootstrap: { conf, data: new Uint8Array() } });
    await store.persist(ready([entry(2, 2, "x2"), entry(3, 2, "x3"), entry(4, 2, "x4")], 2));
    await store.persist(ready([entry(3, 3, "y3")], 2, 3));
    await store.close();
    const again = await RaftStore.open({ dir, sealers, bootstrap: { conf, data: new Uint8Array() } });
    expect(again.store.storage.lastIndex()).toBe(3);
    expect(again.store.storage.entries(2, 4).map((e) => [e.term, new TextDecoder().decode(e.data)])).toEqual([
      [2, "x2"],
      [3, "y3"],
    ]);
    await again.store.close();
  });

  it("compaction writes a sealed snapshot, shrinks the WAL and recovers from both", async () => {
    const dir = await tempDir("hsmpool-raftstore-compact-");
    const sealers = new Sealers(cpuSealer(enclave));
    sealers.usePoolKey(poolKeySealer(session, poolKeyId));
    const { store } = await RaftStore.open({ dir, sealers, bootstrap: { conf, data: new Uint8Array() } });
    for (let i = 2; i <= 40; i++) await store.persist(ready([entry(i, 2, `${MARKER}-${i}`)], i));
    const before = store.walSizeBytes;
    await store.compact(35, conf, new TextEncoder().encode(`${MARKER}-state`));
    expect(store.walSizeBytes).toBeLessThan(before);
    await store.persist(ready([entry(41, 2, "after")], 41));
    await store.close();
    expect(await filesContain(dir, MARKER)).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual([SNAPSHOT_FILE, WAL_FILE].sort());

    const again = await RaftStore.open({ dir, sealers });
    expect(again.recovered.snapshot.meta.index).toBe(35);
    expect(new TextDecoder().decode(again.recovered.snapshot.data)).toBe(`${MARKER}-state`);
    expect(again.store.storage.firstIndex()).toBe(36);
    expect(again.store.storage.lastIndex()).toBe(41);
    expect(again.recovered.hardState.commit).toBe(41);
    await again.store.close();
  });

  it("a Ready that only moves the commit index costs no write; the next synced record carries it", async () => {
    const dir = await tempDir("hsmpool-raftstore-mustsync-");
    const sealers = new Sealers(cpuSealer(enclave));
    const { store } = await RaftStore.open({ dir, sealers, bootstrap: { conf, data: new Uint8Array() } });
    await store.persist(ready([entry(2, 2, "a"), entry(3, 2, "b")], 1));
    const size = store.walSizeBytes;
    await store.persist({ ...ready([], 3), mustSync: false });
    expect(store.walSizeBytes).toBe(size);
    expect(store.storage.initialState().hardState.commit).toBe(3);
    expect(store.durableHardState.commit).toBe(1);
    // A restart now recovers the older commit index: a hint the leader raises again.
    await store.close();
    const middle = await RaftStore.open({ dir, sealers });
    expect(middle.recovered.hardState).toEqual({ term: 2, vote: "n1", commit: 1 });
    await middle.store.persist({ ...ready([], 3), mustSync: false });
    await middle.store.persist({
      entries: [entry(4, 2, "c")],
      committedEntries: [],
      messages: [],
      readStates: [],
      mustSync: true,
    });
    expect(middle.store.durableHardState.commit).toBe(3);
    await middle.store.close();
    const again = await RaftStore.open({ dir, sealers });
    expect(again.recovered.hardState).toEqual({ term: 2, vote: "n1", commit: 3 });
    expect(again.recovered.lastIndex).toBe(4);
    await again.store.close();
  });

  it("a tampered snapshot file is an IntegrityError", async () => {
    const dir = await tempDir("hsmpool-raftstore-snap-");
    const sealers = new Sealers(cpuSealer(enclave));
    const { store } = await RaftStore.open({
      dir,
      sealers,
      bootstrap: { conf, data: new Uint8Array([1, 2, 3]) },
    });
    await store.close();
    const path = join(dir, SNAPSHOT_FILE);
    const image = await readFile(path);
    image[image.length - 20] = image[image.length - 20]! ^ 1;
    await writeFile(path, image);
    await expectIntegrityError(RaftStore.open({ dir, sealers }));
  });
});
