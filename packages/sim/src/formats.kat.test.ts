/**
 * Known answers for the simulator's own encodings, pinned before the shared codec
 * (@hsmpool/codec) replaced sim/bytes.ts: the raft simulation's WAL records (LEB128
 * varints) and the trace hashes of fixed seeds of the raft and pool simulations. A
 * changed hash means a recorded replay no longer reproduces, so an encoding change
 * must show up here.
 */
import { describe, expect, it, vi } from "vitest";
import { runPoolSim } from "./pool/run.js";
import { KvStateMachine } from "./raft/kv.js";
import { runRaftSim } from "./raft/run.js";
import { decodeWalRecord, encodeCheckpoint, encodeEntries, encodeHardState } from "./raft/wal.js";
import { US_PER_S } from "./scheduler.js";

// The pool run boots shipped nodes in virtual time: generous on a loaded machine.
vi.setConfig({ testTimeout: 600_000 });

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

describe("simulator encodings (known answers)", () => {
  it("raft simulation WAL records", () => {
    const hardState = encodeHardState({ term: 300, vote: "n2", commit: 2 ** 35 + 1 });
    const entries = encodeEntries([
      { term: 1, index: 127, type: "normal", data: Uint8Array.of(0x57, 1, 2, 3, 4, 5) },
      { term: 1, index: 128, type: "confChange", data: new Uint8Array(200) },
    ]);
    const checkpoint = encodeCheckpoint(
      {
        meta: { index: 2 ** 53 - 1, term: 2, conf: { voters: ["n1", "n2"], learners: ["n3"] } },
        data: Uint8Array.of(9),
      },
      16_384,
    );
    expect(hex(hardState)).toBe(PIN.hardState);
    expect(hex(entries)).toBe(PIN.entries);
    expect(hex(checkpoint)).toBe(PIN.checkpoint);
    expect(decodeWalRecord(checkpoint)).toMatchObject({ kind: "checkpoint", compactTo: 16_384 });
    const kv = new KvStateMachine();
    kv.apply({ term: 1, index: 1, type: "normal", data: Uint8Array.of(0x57, 3, 1, 0, 0, 0) });
    expect(hex(kv.snapshotData())).toBe(PIN.kvSnapshot);
  });

  it("raft simulation trace hashes of fixed seeds", () => {
    const hashes = [1, 2, 3].map((seed) => runRaftSim({ seed, durationUs: 20 * US_PER_S }).traceHash);
    expect(hashes).toEqual(PIN.raftTraces);
  });

  it("pool simulation trace hash of a fixed seed", async () => {
    const run = await runPoolSim({ seed: 13 });
    expect(run.ok, run.violation?.message).toBe(true);
    expect(run.traceHash).toBe(PIN.poolTrace);
  });
});

const PIN = {
  hardState: "02ac02026e32818080808001",
  entries: `0302017f000657010203040501800101c801${"00".repeat(200)}`,
  checkpoint: "05808001ffffffffffffff0f0202026e31026e3201026e330109",
  kvSnapshot: "01fdc09f9a0b8190be9c0d010301",
  raftTraces: ["2c519d5744d6433d", "fd651817cb73f46d", "bda6d94fcbdbe7c7"],
  // A trajectory pin: a deliberate change of node/raft behaviour changes it (say so in the commit; last:
  // 7ff4f64 ReadIndex rounds, bafe650 one timer per member, commit18 key reserve refills when quiet,
  // simspeed the shipped Raft timing: 100 ms ticks, heartbeat 1, election 10, pausestall a read round asks
  // a new leader at once, pre-candidates ask again each heartbeat, ticks election timeouts drawn from
  // [10, 15) ticks, readbatch a read round starts at the end of its turn and its heartbeats go to a
  // majority only); an encoding change must not.
  poolTrace: "2321373847024548",
};
