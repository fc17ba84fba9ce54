import { Prng } from "@hsmpool/faults";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RECORD_HEADER_BYTES, SimDisk } from "./disk.js";

const bytes = (...xs: number[]) => new Uint8Array(xs);

type Op =
  | { kind: "append"; payload: Uint8Array }
  | { kind: "fsync" }
  | { kind: "crash"; seed: number; corrupt: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.uint8Array({ maxLength: 40 }).map((payload) => ({ kind: "append" as const, payload })),
  },
  { weight: 2, arbitrary: fc.constant({ kind: "fsync" as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("crash" as const), seed: fc.nat(), corrupt: fc.boolean() }),
  },
);

describe("SimDisk", () => {
  it("recovers exactly a prefix of the appended records that holds every fsynced one — property", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const disk = new SimDisk();
        let records: Uint8Array[] = []; // what the file logically holds, in order
        let durable = 0; // how many of them are fsynced
        for (const op of ops) {
          if (op.kind === "append") {
            disk.append(op.payload);
            records.push(op.payload);
          } else if (op.kind === "fsync") {
            disk.fsync();
            durable = records.length;
          } else {
            disk.crash(Prng.fromSeed(op.seed), { corruptProbability: op.corrupt ? 1 : 0 });
            const rec = disk.recover();
            const k = rec.records.length;
            expect(k).toBeGreaterThanOrEqual(durable);
            expect(k).toBeLessThanOrEqual(records.length);
            expect(rec.records).toEqual(records.slice(0, k));
            records = rec.records;
            durable = k;
          }
        }
        // Without a crash, everything appended is readable.
        expect(disk.recover().records).toEqual(records);
      }),
      { numRuns: 300 },
    );
  });

  it("detects a torn last record and truncates it", () => {
    const disk = new SimDisk();
    disk.append(bytes(1, 2, 3));
    disk.fsync();
    disk.append(bytes(4, 5, 6, 7, 8, 9, 10, 11));
    // Find a crash that keeps part, but not all, of the unsynced record.
    let seed = 0;
    for (; ; seed++) {
      const probe = new SimDisk();
      probe.append(bytes(1, 2, 3));
      probe.fsync();
      probe.append(bytes(4, 5, 6, 7, 8, 9, 10, 11));
      const r = probe.crash(Prng.fromSeed(seed));
      if (r.keptUnsyncedBytes > 0 && r.lostBytes > 0) break;
    }
    disk.crash(Prng.fromSeed(seed));
    const rec = disk.recover();
    expect(rec.problem).toBe("torn");
    expect(rec.records).toEqual([bytes(1, 2, 3)]);
    expect(rec.discardedBytes).toBeGreaterThan(0);
    // The file now ends after the good record: new appends are readable.
    disk.append(bytes(42));
    expect(disk.recover().records).toEqual([bytes(1, 2, 3), bytes(42)]);
  });

  it("detects a corrupted record by its checksum and keeps only what precedes it", () => {
    const disk = new SimDisk();
    disk.append(bytes(1, 1));
    disk.append(bytes(2, 2, 2));
    disk.append(bytes(3));
    const secondPayloadAt = RECORD_HEADER_BYTES + 2 + RECORD_HEADER_BYTES;
    disk.flipBit(secondPayloadAt + 1, 3);
    const rec = disk.recover();
    expect(rec.problem).toBe("checksum");
    expect(rec.records).toEqual([bytes(1, 1)]);
  });

  it("a crash keeps every fsynced byte and loses or tears only the unsynced tail", () => {
    const disk = new SimDisk();
    disk.append(bytes(9, 9, 9));
    disk.fsync();
    disk.append(bytes(8, 8));
    const report = disk.crash(Prng.fromSeed(5));
    expect(report.durableBytes).toBe(RECORD_HEADER_BYTES + 3);
    expect(report.keptUnsyncedBytes + report.lostBytes).toBe(RECORD_HEADER_BYTES + 2);
    expect(disk.recover().records[0]).toEqual(bytes(9, 9, 9));
  });

  it("rewrite replaces the file durably (a crash right after sees the new content)", () => {
    const disk = new SimDisk();
    disk.append(bytes(1));
    disk.append(bytes(2));
    disk.rewrite([bytes(7), bytes(8)]);
    disk.crash(Prng.fromSeed(1), { corruptProbability: 1 });
    expect(disk.recover().records).toEqual([bytes(7), bytes(8)]);
  });
});
