/**
 * Known-answer vectors for the node's Raft files, pinned from the encoders as they were
 * before the shared codec (@hsmpool/codec) replaced node/storage/bytes.ts: a WAL
 * record's plaintext, its AEAD associated data and the snapshot file's plaintext must
 * keep these exact bytes, or a node upgraded in place cannot open its own WAL.
 */
import { describe, expect, it } from "vitest";
import { decodeBatch, decodeSnapshot, encodeBatch, encodeSnapshot } from "./raft-records.js";
import { walAad } from "./raft-store.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"));

const BATCH = {
  hardState: { term: 3, vote: "n2", commit: 2 ** 40 + 7 },
  entries: [
    { term: 3, index: 2 ** 33 + 1, type: "normal" as const, data: Uint8Array.of(0xde, 0xad) },
    { term: 3, index: 2 ** 33 + 2, type: "confChange" as const, data: new Uint8Array(0) },
  ],
};
const SNAPSHOT = {
  meta: { index: 41, term: 5, conf: { voters: ["n1", "n2", "ü"], learners: ["n4"] } },
  data: Uint8Array.of(1, 2, 3, 4),
};

describe("node Raft files (known answers)", () => {
  it("a WAL record's plaintext batch, with and without a hard state", () => {
    expect(hex(encodeBatch(BATCH))).toBe(PIN.batch);
    expect(decodeBatch(unhex(PIN.batch))).toEqual(BATCH);
    expect(hex(encodeBatch({ entries: [] }))).toBe("010000000000");
  });

  it("a WAL record's associated data", () => {
    expect(hex(walAad(Uint8Array.of(9, 8, 7, 6), 2 ** 32 + 5))).toBe(PIN.walAad);
  });

  it("the snapshot file's plaintext", () => {
    expect(hex(encodeSnapshot(SNAPSHOT))).toBe(PIN.snapshot);
    expect(decodeSnapshot(unhex(PIN.snapshot))).toEqual(SNAPSHOT);
  });
});

const PIN = {
  batch:
    "01010000000000000003000000026e32000001000000000700000002000000000000000300000002000000010100000002dead000000000000000300000002000000020200000000",
  walAad: "68736d706f6f6c2d77616c2d7631090807060000000100000005",
  snapshot:
    "010000000000000029000000000000000500000003000000026e31000000026e3200000002c3bc00000001000000026e340000000401020304",
};
