import { isHsmPoolError } from "@hsmpool/errors";
import type { Snapshot } from "@hsmpool/raft";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { clusterProto, messageToWire, type RaftMessageWire } from "./cluster-proto.js";
import { SnapshotAssembler, type SnapshotChunkWire, snapshotChunks } from "./snapshot-chunks.js";

const snapshotArb: fc.Arbitrary<Snapshot> = fc.record({
  meta: fc.record({
    index: fc.nat({ max: 2 ** 40 }),
    term: fc.nat({ max: 2 ** 40 }),
    conf: fc.record({
      voters: fc.array(fc.constantFrom("n1", "n2", "n3"), { maxLength: 3 }),
      learners: fc.array(fc.constantFrom("n4", "n5"), { maxLength: 2 }),
    }),
  }),
  data: fc.uint8Array({ maxLength: 3000 }),
});

/** A chunk as the receiver sees it: through the protobuf encoding of a MsgSnap. */
function overTheWire(chunk: SnapshotChunkWire): SnapshotChunkWire {
  const method = clusterProto().raftService.Send!;
  const header = messageToWire({ type: "MsgSnap", from: "n1", to: "n2", term: 7 });
  const wire = method.requestDeserialize(
    method.requestSerialize({ ...header, snapshotChunk: chunk }),
  ) as RaftMessageWire;
  expect(wire.snapshot).toBeNull();
  return wire.snapshotChunk!;
}

function feed(assembler: SnapshotAssembler, chunks: Iterable<SnapshotChunkWire>) {
  return [...chunks].map((c) => assembler.add(overTheWire(c)));
}

describe("snapshot streaming in chunks", () => {
  it("reassembles any snapshot from its chunks, whole only at the last one", () => {
    fc.assert(
      fc.property(snapshotArb, fc.integer({ min: 1, max: 700 }), (snap, chunkBytes) => {
        const chunks = [...snapshotChunks(snap, chunkBytes)];
        expect(chunks.length).toBe(Math.max(1, Math.ceil(snap.data.length / chunkBytes)));
        expect(chunks.every((c) => c.data.length <= chunkBytes)).toBe(true);
        const outcomes = feed(new SnapshotAssembler(), chunks);
        expect(outcomes.slice(0, -1).every((o) => o.kind === "partial")).toBe(true);
        const last = outcomes.at(-1)!;
        expect(last.kind).toBe("complete");
        if (last.kind === "complete") {
          expect(last.snapshot.meta).toEqual(snap.meta);
          expect(Buffer.from(last.snapshot.data).equals(Buffer.from(snap.data))).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("drops a transfer with a gap, a foreign chunk or a flipped byte, and takes the next one from its start", () => {
    const data = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7) % 251);
    const snap: Snapshot = { meta: { index: 40, term: 3, conf: { voters: ["n1"], learners: [] } }, data };
    const chunks = [...snapshotChunks(snap, 1000)];
    const other = [...snapshotChunks({ ...snap, meta: { ...snap.meta, index: 41 } }, 1000)];

    const gap = new SnapshotAssembler();
    expect(feed(gap, [chunks[0]!, chunks[2]!]).map((o) => o.kind)).toEqual(["partial", "discarded"]);
    // The rest of that transfer cannot complete it any more.
    expect(feed(gap, chunks.slice(3)).every((o) => o.kind === "discarded")).toBe(true);

    const mixed = new SnapshotAssembler();
    expect(feed(mixed, [chunks[0]!, other[1]!]).map((o) => o.kind)).toEqual(["partial", "discarded"]);

    const flipped = new SnapshotAssembler();
    const bad = chunks.map((c, i) =>
      i === 3 ? { ...c, data: c.data.map((b, j) => (j === 5 ? b ^ 1 : b)) } : c,
    );
    const outcome = feed(flipped, bad).at(-1)!;
    expect(outcome.kind).toBe("discarded");

    // Restartable: the same assembler takes a whole resend after any of those.
    for (const a of [gap, mixed, flipped]) {
      const again = feed(a, chunks).at(-1)!;
      expect(again.kind).toBe("complete");
    }
    // A stream that broke mid-transfer leaves nothing behind.
    const broken = new SnapshotAssembler();
    feed(broken, chunks.slice(0, 2));
    broken.reset();
    expect(feed(broken, chunks.slice(2)).every((o) => o.kind === "discarded")).toBe(true);
  });

  it("refuses an implausible announced size before allocating it", () => {
    const [first] = snapshotChunks({
      meta: { index: 1, term: 1, conf: { voters: [], learners: [] } },
      data: new Uint8Array(10),
    });
    let error: unknown;
    try {
      new SnapshotAssembler().add({ ...first!, totalSize: 2 ** 40 });
    } catch (e) {
      error = e;
    }
    expect(isHsmPoolError(error, "BadParameter")).toBe(true);
  });
});
