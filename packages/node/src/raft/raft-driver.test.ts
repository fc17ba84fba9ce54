/**
 * The driver's persist/send order on real stores: followers answer an append only
 * after their own write finished; a leader sends its appends while its write is in
 * flight (synced in the background), and applies (acknowledges) nothing until that
 * write finished.
 */
import type { Enclave } from "@hsmpool/platform";
import { type Entry, type Message, RawNode, type Snapshot } from "@hsmpool/raft";
import fc from "fast-check";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Clock, systemClock, systemRandomness } from "../seams/index.js";
import { RaftStore } from "../storage/raft-store.js";
import { cpuSealer, Sealers } from "../storage/sealer.js";
import { launchTestEnclave, makeFabric, removeTempDirs, tempDir } from "../testing/fixtures.js";
import { RaftDriver } from "./raft-driver.js";

const IDS = ["n1", "n2", "n3"];
const conf = { voters: IDS, learners: [] };
let enclave: Enclave;

beforeAll(async () => {
  const root = await tempDir("hsmpool-driver-");
  enclave = await launchTestEnclave(root, await makeFabric(root, 1));
});
afterAll(removeTempDirs);

/** A gate on a store's disk writes: while closed, every write waits. */
class DiskGate {
  private waiting: (() => void)[] = [];
  closed = false;
  pass = (): Promise<void> => (this.closed ? new Promise((r) => this.waiting.push(r)) : Promise.resolve());
  get blocked(): number {
    return this.waiting.length;
  }
  open(): void {
    this.closed = false;
    for (const r of this.waiting.splice(0)) r();
  }
}

interface Member {
  driver: RaftDriver;
  gate: DiskGate;
  /** Per Ready written: whether it was synced in the background. */
  writes: boolean[];
  sent: Message[];
  applied: Entry[];
  /** The index of every snapshot taken (compaction). */
  snapshots: number[];
}

interface Snapshotting {
  everyEntries: number;
  data: () => Iterator<void, Uint8Array, void>;
}

/** Snapshot data encoded in one step. */
// biome-ignore lint/correctness/useYield: one step, no pause
function* oneStep(bytes: Uint8Array): Generator<void, Uint8Array, void> {
  return bytes;
}

/** Delivers (or holds back) one message between members; the default delivers it in a microtask. */
type Network = (m: Message, deliver: () => void) => void;

/** Installing a snapshot in one step, doing nothing with it. */
function* installNothing(): Generator<void, void, void> {}

async function cluster(
  clock: Clock = systemClock,
  snapshotting: Snapshotting = { everyEntries: 1000, data: () => oneStep(new Uint8Array()) },
  network: Network = (_m, deliver) => queueMicrotask(deliver),
  /** A member's onSnapshot hook (default: installNothing). */
  install?: (id: string, snapshot: Snapshot) => Iterator<void, void, void>,
): Promise<Map<string, Member>> {
  const members = new Map<string, Member>();
  for (const id of IDS) {
    const { store } = await RaftStore.open({
      dir: await tempDir(`hsmpool-driver-${id}-`),
      sealers: new Sealers(cpuSealer(enclave)),
      bootstrap: { conf, data: new Uint8Array() },
    });
    const gate = new DiskGate();
    store.beforeWrite = gate.pass;
    const writes: boolean[] = [];
    const persist = store.persist.bind(store);
    store.persist = (rd, options) => {
      if (store.needsWrite(rd)) writes.push(options?.background ?? false);
      return persist(rd, options);
    };
    const snapshots: number[] = [];
    const compact = store.compact.bind(store);
    store.compact = (index, c, data) => {
      snapshots.push(index);
      return compact(index, c, data);
    };
    const node = new RawNode({
      id,
      storage: store.storage,
      electionTicks: 10,
      heartbeatTicks: 1,
      random: () => 0.5,
      preVote: true,
      checkQuorum: false,
      applied: 1,
    });
    const member: Member = {
      gate,
      writes,
      sent: [],
      applied: [],
      snapshots,
      driver: undefined as unknown as RaftDriver,
    };
    member.driver = new RaftDriver({
      node,
      store,
      tickMs: 5,
      electionTicks: 10,
      snapshotEveryEntries: snapshotting.everyEntries,
      conf,
      appliedIndex: 1,
      clock,
      random: systemRandomness,
      logger: pino({ level: "silent" }),
      hooks: {
        send: (messages) => {
          member.sent.push(...messages);
          for (const m of messages) network(m, () => members.get(m.to)?.driver.step(m));
        },
        onSnapshot: (snapshot) => install?.(id, snapshot) ?? installNothing(),
        onCommitted: (e) => member.applied.push(e),
        onConfChange: () => {},
        onSoftState: () => {},
        snapshotData: snapshotting.data,
        onFatal: (e) => {
          throw e;
        },
      },
    });
    members.set(id, member);
  }
  return members;
}

async function until(what: string, probe: () => boolean, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const tick = () => new Promise((r) => setTimeout(r, 30));
const isData = (e: Entry) => e.type === "normal" && e.data.length > 0;

describe("raft driver: persist and send order", () => {
  it("a leader sends appends during its own write; followers answer and the leader applies only after writing", async () => {
    const members = await cluster();
    const n1 = members.get("n1")!;
    const n2 = members.get("n2")!;
    const n3 = members.get("n3")!;
    n1.driver.start(); // only n1 ticks, so only n1 campaigns
    try {
      await until("leader", () => n1.driver.status().role === "leader");
      await until("leader's first entry applied", () => n1.applied.length > 0 && n2.applied.length > 0);
      n3.gate.closed = true; // n3 never answers: the commit needs n1's and n2's disks
      n1.gate.closed = true;
      n2.gate.closed = true;
      const sentBefore = n1.sent.length;
      const writesBefore = { n1: n1.writes.length, n2: n2.writes.length };
      n1.driver.propose(new TextEncoder().encode("x"));
      await until("n1 writing", () => n1.gate.blocked > 0);
      await until("append to n2", () =>
        n1.sent
          .slice(sentBefore)
          .some((m) => m.type === "MsgApp" && m.to === "n2" && (m.entries?.length ?? 0) > 0),
      );
      // n2 holds the entry in memory but has not written it: it must not acknowledge it.
      await until("n2 writing", () => n2.gate.blocked > 0);
      await tick();
      expect(n2.sent.filter((m) => m.type === "MsgAppResp" && !m.reject && (m.index ?? 0) >= 3)).toEqual([]);
      n2.gate.open();
      await until("n2's acknowledgement", () =>
        n2.sent.some((m) => m.type === "MsgAppResp" && !m.reject && (m.index ?? 0) >= 3),
      );
      // A majority (n1 in memory, n2 on disk) has it, but n1's own write is still pending: nothing is applied.
      await tick();
      expect(n1.applied.filter(isData)).toEqual([]);
      n1.gate.open();
      await until("apply on the leader", () => n1.applied.some(isData));
      // The leader, having sent, synced in the background; the follower, whose answer promises its disk, on the loop.
      expect([...new Set(n1.writes.slice(writesBefore.n1))]).toEqual([true]);
      expect([...new Set(n2.writes.slice(writesBefore.n2))]).toEqual([false]);
    } finally {
      for (const m of members.values()) {
        m.gate.open();
        await m.driver.stop();
      }
    }
  });
});

describe("raft driver: linearizable reads during an election", () => {
  it("a read round waiting for a leader asks the new one as soon as it is known, not at the next retry", async () => {
    // Retry timers never fire: only learning of a leader can move the round on.
    const members = await cluster({ ...systemClock, setTimeout: () => ({ timer: undefined }) });
    const n1 = members.get("n1")!;
    const n2 = members.get("n2")!;
    try {
      let served = false;
      // n2 knows no leader yet: its round cannot be asked of anyone.
      const read = n2.driver.readBarrier().then(() => {
        served = true;
      });
      n1.driver.start(); // only n1 ticks, so only n1 campaigns
      await until("leader", () => n1.driver.status().role === "leader");
      await until("n2's read served by the new leader", () => served);
      await read;
      expect(n2.driver.status().lead).toBe("n1");
    } finally {
      for (const m of members.values()) await m.driver.stop();
    }
  });
});

/** Retry timers never fire (ticks do: they are intervals), so every ReadIndex request a test sees is a round's first. */
const noRetries: Clock = { ...systemClock, setTimeout: () => ({ timer: undefined }) };
const readIndexRequests = (m: Member) => m.sent.filter((x) => x.type === "MsgReadIndex").length;
const hasEntry = (m: Member, data: Uint8Array) =>
  m.applied.some((e) => Buffer.from(e.data).equals(Buffer.from(data)));

/** A leader n1 and followers that know it and applied its first entry. */
async function ledCluster(clock: Clock, network?: Network): Promise<Map<string, Member>> {
  const members = await cluster(clock, undefined, network);
  members.get("n1")!.driver.start(); // only n1 ticks, so only n1 campaigns
  await until("leader known everywhere", () =>
    [...members.values()].every((m) => m.driver.status().lead === "n1" && m.applied.length > 0),
  );
  return members;
}

describe("raft driver: batched linearizable reads", () => {
  it("reads that arrive in one turn share one ReadIndex round", async () => {
    const members = await ledCluster(noRetries);
    const n2 = members.get("n2")!;
    try {
      const before = readIndexRequests(n2);
      await Promise.all(Array.from({ length: 10 }, () => n2.driver.readBarrier()));
      expect(readIndexRequests(n2) - before).toBe(1);
    } finally {
      for (const m of members.values()) await m.driver.stop();
    }
  });

  it("a read that arrives while a round is in flight, after a write was acknowledged, sees that write", async () => {
    // Property over how many reads come in each burst and whether the leader reads too.
    // The scenario: n2's round is registered by the leader (its read index fixed) but its
    // confirmation is held back; a write then commits without n2 and is applied on the
    // leader (a client would have its answer); reads registered on n2 after that must not
    // ride on the held round: when one is served, n2 has applied the write.
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.boolean(),
        async (firstBurst, laterBurst, leaderReadsToo) => {
          let holdAcks = false;
          let cutN2 = false;
          const held: (() => void)[] = [];
          const toN2: (() => void)[] = [];
          const network: Network = (m, deliver) => {
            if (holdAcks && m.type === "MsgHeartbeatResp") held.push(deliver);
            else if (cutN2 && m.to === "n2" && m.type === "MsgApp") toN2.push(deliver);
            else queueMicrotask(deliver);
          };
          const members = await ledCluster(noRetries, network);
          const [n1, n2] = [members.get("n1")!, members.get("n2")!];
          try {
            holdAcks = true;
            cutN2 = true;
            const asked = readIndexRequests(n2);
            const first = Array.from({ length: firstBurst }, () => n2.driver.readBarrier());
            if (leaderReadsToo) first.push(n1.driver.readBarrier());
            await until("n2's round asked", () => readIndexRequests(n2) > asked);
            await tick(); // the leader has registered it and sent its heartbeats; their acks are held
            const write = new TextEncoder().encode(`w-${firstBurst}-${laterBurst}`);
            n1.driver.propose(write);
            await until("the write applied on the leader", () => hasEntry(n1, write));
            expect(hasEntry(n2, write)).toBe(false);
            const sawWrite: boolean[] = [];
            const later = Array.from({ length: laterBurst }, () =>
              n2.driver.readBarrier().then(() => sawWrite.push(hasEntry(n2, write))),
            );
            await tick();
            holdAcks = false;
            for (const d of held.splice(0)) d();
            await Promise.all(first);
            await tick();
            expect(sawWrite.filter((saw) => !saw)).toEqual([]); // none served stale meanwhile
            cutN2 = false;
            for (const d of toN2.splice(0)) d();
            await Promise.all(later);
            expect(sawWrite).toEqual(Array.from({ length: laterBurst }, () => true));
          } finally {
            holdAcks = false;
            cutN2 = false;
            for (const m of members.values()) await m.driver.stop();
          }
        },
      ),
      { numRuns: 6 },
    );
  });
});

describe("raft driver: snapshot cadence", () => {
  it("snapshots after the entry count, then only once the log since holds 1/8 of the last snapshot's bytes", async () => {
    const members = await cluster(systemClock, { everyEntries: 2, data: () => oneStep(new Uint8Array(800)) });
    const n1 = members.get("n1")!;
    const propose10Bytes = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const before = n1.applied.length;
        n1.driver.propose(new Uint8Array(10).fill(1));
        await until("entry applied", () => n1.applied.length > before);
      }
    };
    n1.driver.start();
    try {
      await until("leader", () => n1.driver.status().role === "leader");
      // No snapshot taken yet (0 bytes): the entry count alone decides the first one (the
      // leader's empty entry and one proposal).
      await propose10Bytes(1);
      await until("first snapshot", () => n1.snapshots.length === 1);
      // 800 snapshot bytes: the next needs 100 entry bytes, i.e. ten 10-byte entries, not two.
      await propose10Bytes(9);
      await tick();
      expect(n1.snapshots).toHaveLength(1);
      await propose10Bytes(1);
      await until("second snapshot", () => n1.snapshots.length === 2);
      expect(n1.snapshots[1]! - n1.snapshots[0]!).toBeGreaterThanOrEqual(10);
    } finally {
      for (const m of members.values()) await m.driver.stop();
    }
  });
});

describe("raft driver: a snapshot encoded in steps", () => {
  it("lets the event loop run between steps and applies nothing until the snapshot is taken", async () => {
    let timerFiredDuringEncode = false;
    let appliedWhileEncoding = -1;
    let encoding = false;
    let n1: Member | undefined;
    const propose = () => n1?.driver.propose(new Uint8Array(10).fill(2));
    function* slowSteps(): Generator<void, Uint8Array, void> {
      encoding = true;
      const applied = n1?.applied.length ?? 0;
      // A timer and a proposal arrive while the snapshot is being encoded.
      setTimeout(() => {
        timerFiredDuringEncode = encoding;
      }, 0);
      propose();
      for (let i = 0; i < 20; i++) yield;
      appliedWhileEncoding = (n1?.applied.length ?? 0) - applied;
      encoding = false;
      return new Uint8Array(8);
    }
    let first = true;
    const members = await cluster(systemClock, {
      everyEntries: 2,
      data: () => {
        if (!first) return oneStep(new Uint8Array(8));
        first = false;
        return slowSteps();
      },
    });
    n1 = members.get("n1")!;
    n1.driver.start();
    try {
      await until("leader", () => n1?.driver.status().role === "leader");
      const before = n1.applied.length;
      n1.driver.propose(new Uint8Array(10).fill(1));
      await until("the snapshot", () => (n1?.snapshots.length ?? 0) >= 1);
      expect(timerFiredDuringEncode).toBe(true);
      expect(appliedWhileEncoding).toBe(0);
      // The proposal made during the encode is applied once the snapshot is taken.
      await until("the proposal made meanwhile", () => (n1?.applied.length ?? 0) >= before + 2);
    } finally {
      for (const m of members.values()) await m.driver.stop();
    }
  });
});

describe("raft driver: a snapshot installed in steps", () => {
  it("lets the event loop run between steps, applies nothing meanwhile, then applies what came after", async () => {
    const cut = new Set<string>();
    let n3: Member | undefined;
    const installs: { index: number; timerFired: boolean; appliedMeanwhile: number }[] = [];
    let proposeDuringInstall = () => {};
    function* slowInstall(snapshot: Snapshot): Generator<void, void, void> {
      const applied = n3?.applied.length ?? 0;
      let installing = true;
      const record = { index: snapshot.meta.index, timerFired: false, appliedMeanwhile: -1 };
      // A timer and a new entry on the leader arrive while the snapshot is being installed.
      setTimeout(() => {
        record.timerFired = installing;
      }, 0);
      proposeDuringInstall();
      for (let i = 0; i < 20; i++) yield;
      installing = false;
      record.appliedMeanwhile = (n3?.applied.length ?? 0) - applied;
      installs.push(record);
    }
    const members = await cluster(
      systemClock,
      { everyEntries: 2, data: () => oneStep(new Uint8Array(64)) },
      (m, deliver) => {
        if (!cut.has(m.to)) queueMicrotask(deliver);
      },
      (id, snapshot) => (id === "n3" ? slowInstall(snapshot) : installNothing()),
    );
    const n1 = members.get("n1")!;
    n3 = members.get("n3")!;
    n1.driver.start();
    try {
      await until("leader", () => n1.driver.status().role === "leader");
      await until("the leader's first entry on n3", () => (n3?.applied.length ?? 0) > 0);
      cut.add("n3");
      const appliedBeforeCut = n3.applied.length;
      // n1 and n2 commit without n3, and n1 compacts its log past what n3 has.
      for (let i = 0; i < 6; i++) {
        const before = n1.applied.length;
        n1.driver.propose(new Uint8Array(10).fill(i + 1));
        await until("entry applied", () => n1.applied.length > before);
      }
      await until("a compaction", () => n1.snapshots.length > 0);
      proposeDuringInstall = () => n1.driver.propose(new Uint8Array(10).fill(99));
      cut.delete("n3");
      await until("n3's install", () => installs.length > 0);
      const [install] = installs;
      expect(install?.timerFired).toBe(true);
      expect(install?.appliedMeanwhile).toBe(0);
      // Past the snapshot, n3 applies the entry proposed during its install (after it, not before).
      await until("the entry proposed meanwhile, on n3", () =>
        (n3?.applied ?? []).some((e) => e.data.length === 10 && e.data[0] === 99),
      );
      expect(n3.applied.slice(appliedBeforeCut).every((e) => e.index > (install?.index ?? 0))).toBe(true);
    } finally {
      for (const m of members.values()) await m.driver.stop();
    }
  });
});
