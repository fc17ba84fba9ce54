/**
 * A server's simulated disk, behind the node's DurableStorage seam. It outlives the
 * node process and honours the seam's crash contract: an atomic write lands whole
 * when its fsync completes (never half); written bytes are durable only once a sync()
 * completes — appended ones and those written over the file's preallocated zero tail
 * alike — and a crash keeps the synced bytes plus any prefix of the unsynced writes'
 * range, possibly with the last kept byte garbled (a torn WAL tail); the rest reads as it
 * did at the last sync. Completions are events in the world's queue after a random fsync delay.
 */

import type { Prng } from "@hsmpool/faults";
import type { AppendableFile, DurableStorage } from "@hsmpool/node";
import type { ShellWorld, SimProcess } from "./process.js";

/** What was written since the last sync: the byte range, and what it overwrote. */
interface Unsynced {
  from: number;
  to: number;
  /** The file's length at the last sync. */
  syncedLength: number;
  /** Each write's range and the bytes it overwrote inside the stored prefix (beyond it: zeros), in write order. */
  writes: { at: number; end: number; overwritten: Uint8Array }[];
}

/**
 * A file's bytes: `bytes[0, filled)`, then zeros up to `length`. The zeros are not stored:
 * the WAL preallocates a zeroed megabyte, and allocating and copying it on every write,
 * read and crash was the simulator's hottest work.
 */
interface SimFile {
  bytes: Uint8Array;
  filled: number;
  length: number;
  unsynced: Unsynced | null;
  /** A truncate since the last sync: the whole durable image (a crash restores it). */
  durableImage: Uint8Array | null;
}

/** Zero chunks, largest first: the tail is skipped a 64 KiB chunk at a time, then 4 KiB, then byte by byte. */
const ZERO_CHUNKS = [Buffer.alloc(64 * 1024), Buffer.alloc(4096)];

/** Length of `data` without its trailing zero bytes (whole zero chunks compared natively, then byte by byte). */
function trimmedLength(data: Uint8Array): number {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let end = bytes.length;
  for (const zero of ZERO_CHUNKS)
    while (end >= zero.length && bytes.compare(zero, 0, zero.length, end - zero.length, end) === 0)
      end -= zero.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return end;
}

/** A file of `data`, then zeros up to `zeroFillTo` (the seam's preallocated space: not stored, never scanned). */
function fileOf(data: Uint8Array, zeroFillTo = 0): SimFile {
  const filled = trimmedLength(data);
  const bytes = new Uint8Array(filled);
  bytes.set(data.subarray(0, filled));
  return { bytes, filled, length: Math.max(data.length, zeroFillTo), unsynced: null, durableImage: null };
}

/** The file's first `n` bytes (default: all), as a new array. */
function contents(f: SimFile, n = f.length): Uint8Array {
  const out = new Uint8Array(n);
  out.set(f.bytes.subarray(0, Math.min(f.filled, n)));
  return out;
}

/** Stores `data` at `position` (growing the stored prefix; a gap below it stays zero). */
function store(f: SimFile, data: Uint8Array, position: number): void {
  const end = position + data.length;
  if (end > f.bytes.length) {
    const grown = new Uint8Array(Math.max(end, 2 * f.bytes.length));
    grown.set(f.bytes.subarray(0, f.filled));
    f.bytes = grown;
  }
  f.bytes.set(data, position);
  f.filled = Math.max(f.filled, end);
  f.length = Math.max(f.length, end);
}

/** A write through the seam: stored now, durable at the next completed sync. */
function write(f: SimFile, data: Uint8Array, position: number): void {
  const end = position + data.length;
  f.unsynced ??= { from: position, to: end, syncedLength: f.length, writes: [] };
  const u = f.unsynced;
  u.from = Math.min(u.from, position);
  u.to = Math.max(u.to, end);
  const overwritten =
    position < f.filled ? f.bytes.slice(position, Math.min(end, f.filled)) : new Uint8Array();
  u.writes.push({ at: position, end, overwritten });
  store(f, data, position);
}

/** Undoes the unsynced writes at and past `from`, latest first, so each byte ends as it was at the last sync. */
function revert(f: SimFile, u: Unsynced, from: number): void {
  for (let i = u.writes.length - 1; i >= 0; i--) {
    const w = u.writes[i]!;
    const start = Math.max(from, w.at);
    if (start >= w.end) continue;
    if (start < f.filled) f.bytes.fill(0, start, Math.min(w.end, f.filled));
    const skip = start - w.at;
    if (skip < w.overwritten.length) f.bytes.set(w.overwritten.subarray(skip), start);
  }
  const length = Math.max(u.syncedLength, from);
  if (length < f.length) cut(f, length);
}

/** Cuts the file to `length` bytes (the stored bytes past it are zeroed, so a later gap reads as zeros). */
function cut(f: SimFile, length: number): void {
  if (f.filled > length) {
    f.bytes.fill(0, length, f.filled);
    f.filled = length;
  }
  f.length = length;
}

/** What a crash now would leave, at the least (the file as of its last sync). */
function syncedImage(f: SimFile): Uint8Array {
  if (f.durableImage) return f.durableImage;
  const u = f.unsynced;
  if (!u) return contents(f);
  const copy: SimFile = { ...f, bytes: f.bytes.slice(0, f.filled), unsynced: null };
  revert(copy, u, u.from);
  return contents(copy);
}

export class SimDiskFiles {
  private readonly files = new Map<string, SimFile>();
  /** Unsynced bytes a crash dropped or garbled (for stats and transcripts). */
  tornBytes = 0;

  constructor(
    private readonly world: ShellWorld,
    readonly memberId: string,
    private readonly prng: Prng,
  ) {}

  private fsyncDelayUs(): number {
    return 100 + Math.round(this.prng.exponential(900));
  }

  /** The bytes a restart would read (after a crash), or null. */
  durable(path: string): Uint8Array | null {
    const f = this.files.get(path);
    return f ? syncedImage(f) : null;
  }

  /** Every file's durable bytes (a confidentiality test scans them). */
  durableFiles(): Uint8Array[] {
    return [...this.files.keys()].map((path) => this.durable(path) as Uint8Array);
  }

  /** The process died: unsynced writes survive only as a random prefix of their range, perhaps garbled at its end. */
  crash(prng: Prng, corruptProbability: number): void {
    for (const [path, f] of this.files) {
      if (f.durableImage) {
        // A truncate since the last sync: the durable image survives whole, nothing unsynced does.
        prng.int(1); // (the draw for "how much of the unsynced part", which is empty)
        this.files.set(path, fileOf(f.durableImage));
        continue;
      }
      const u = f.unsynced;
      const extra = u ? u.to - u.from : 0;
      const keep = prng.int(extra + 1);
      if (!u) continue;
      const kept = u.from + keep;
      revert(f, u, kept);
      if (keep > 0 && prng.chance(corruptProbability)) {
        const at = kept - 1;
        store(f, Uint8Array.of((at < f.filled ? (f.bytes[at] as number) : 0) ^ 0x5a), at);
      }
      this.tornBytes += extra - keep;
      f.unsynced = null;
    }
  }

  /** The server is lost with its disk. */
  wipe(): void {
    this.files.clear();
  }

  /** The DurableStorage seam of one process on this server. */
  forProcess(proc: SimProcess): DurableStorage {
    const files = this.files;
    const afterFsync = (fn: () => void, resolve: () => void) =>
      this.world.at(this.world.nowUs() + this.fsyncDelayUs(), "io", this.memberId, () => {
        if (!proc.alive) return;
        fn();
        proc.deliver(resolve);
      });
    const open = (path: string): AppendableFile => ({
      write: async (data, position) => {
        const f = files.get(path);
        if (!f) throw new Error(`sim disk: ${path} is not open`);
        write(f, data, position); // a copy: the caller may reuse its buffer
      },
      truncate: async (length) => {
        const f = files.get(path);
        if (!f || length >= f.length) return;
        f.durableImage ??= syncedImage(f);
        f.unsynced = null;
        cut(f, length);
      },
      sync: () =>
        new Promise<void>((resolve) =>
          afterFsync(() => {
            const f = files.get(path);
            if (!f) return;
            f.unsynced = null;
            f.durableImage = null;
          }, resolve),
        ),
      close: async () => {},
    });
    return {
      mkdir: async () => {},
      read: async (path) => {
        const f = files.get(path);
        return f ? contents(f) : null;
      },
      writeAtomic: (path, data, options) => {
        const file = fileOf(data, options?.zeroFillTo);
        return new Promise<void>((resolve) => afterFsync(() => files.set(path, file), resolve));
      },
      openForWrite: async (path) => {
        if (!files.has(path)) throw new Error(`sim disk: no file ${path}`);
        return open(path);
      },
    };
  }
}
