import { Prng } from "@hsmpool/faults";
import { describe, expect, it } from "vitest";
import { type ShellWorld, SimProcess } from "./process.js";
import { SimDiskFiles } from "./storage.js";

/** A world whose events run when flush() is called (fsync completions). */
function world(): ShellWorld & { flush(): void } {
  let pending: (() => void)[] = [];
  return {
    nowUs: () => 0,
    wallMs: () => 0,
    at: (_atUs, _kind, _member, fn) => {
      pending.push(fn);
    },
    flush() {
      const run = pending;
      pending = [];
      for (const fn of run) fn();
    },
  };
}

const text = (s: string) => new TextEncoder().encode(s);

/** A 64-byte file "HEADER" + zeros (a preallocated log), synced; then `write` without a sync, then a crash. */
async function crashAfterUnsyncedWrite(seed: number, write: (f: Uint8Array) => [Uint8Array, number]) {
  const w = world();
  const disk = new SimDiskFiles(w, "n1", Prng.fromSeed(seed).split("disk"));
  const storage = disk.forProcess(new SimProcess("n1", 1));
  const image = new Uint8Array(64);
  image.set(text("HEADER"));
  const written = storage.writeAtomic("/wal", image);
  w.flush();
  await written;
  const fh = await storage.openForWrite("/wal");
  const [data, at] = write(image);
  await fh.write(data, at);
  disk.crash(Prng.fromSeed(seed).split("crash"), 0);
  return (await disk.forProcess(new SimProcess("n1", 2)).read("/wal"))!;
}

describe("sim disk: unsynced writes into a preallocated zero tail", () => {
  it("a crash keeps a prefix of them: across seeds some are lost, some kept, and the rest reads zero", async () => {
    const kept = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const after = await crashAfterUnsyncedWrite(seed, () => [text("RECORD"), 10]);
      expect(after.length).toBe(64);
      expect(new TextDecoder().decode(after.subarray(0, 6))).toBe("HEADER");
      let n = 0;
      while (n < 6 && after[10 + n] === text("RECORD")[n]) n++;
      expect([...after.subarray(10 + n)].every((b) => b === 0)).toBe(true);
      kept.add(n);
    }
    expect(kept.has(0)).toBe(true);
    expect(kept.has(6)).toBe(true);
  });

  it("an unsynced overwrite of synced bytes reverts to them, not to zeros", async () => {
    const seen = new Set<string>();
    for (let seed = 1; seed <= 40; seed++) {
      const after = await crashAfterUnsyncedWrite(seed, () => [text("header"), 0]);
      const head = new TextDecoder().decode(after.subarray(0, 6));
      expect(head).toMatch(/^[a-z]*[A-Z]*$/);
      expect(head.toUpperCase()).toBe("HEADER");
      seen.add(head);
    }
    expect(seen.has("HEADER")).toBe(true);
  });

  it("an atomic write's zero fill reads back as zeros, before and after a crash", async () => {
    const w = world();
    const disk = new SimDiskFiles(w, "n1", Prng.fromSeed(1));
    const storage = disk.forProcess(new SimProcess("n1", 1));
    const created = storage.writeAtomic("/wal", text("HEAD"), { zeroFillTo: 5000 });
    w.flush();
    await created;
    const expected = new Uint8Array(5000);
    expected.set(text("HEAD"));
    expect(await storage.read("/wal")).toEqual(expected);
    const fh = await storage.openForWrite("/wal");
    await fh.write(text("TAIL"), 4996);
    disk.crash(Prng.fromSeed(2), 0);
    const after = disk.durable("/wal")!;
    expect(after.length).toBe(5000);
    expect(after.subarray(0, 4996)).toEqual(expected.subarray(0, 4996));
  });

  it("synced writes survive every crash", async () => {
    for (let seed = 1; seed <= 10; seed++) {
      const w = world();
      const disk = new SimDiskFiles(w, "n1", Prng.fromSeed(seed));
      const storage = disk.forProcess(new SimProcess("n1", 1));
      const created = storage.writeAtomic("/wal", new Uint8Array(32));
      w.flush();
      await created;
      const fh = await storage.openForWrite("/wal");
      await fh.write(text("DURABLE"), 4);
      const synced = fh.sync();
      w.flush();
      await synced;
      disk.crash(Prng.fromSeed(seed).split("crash"), 1);
      expect(new TextDecoder().decode(disk.durable("/wal")!.subarray(4, 11))).toBe("DURABLE");
    }
  });
});
