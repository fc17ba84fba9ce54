/**
 * A server's simulated disk, behind the node's DurableStorage seam. It outlives the
 * node process and honours the seam's crash contract: an atomic write lands whole
 * when its fsync completes (never half); appended bytes are durable only once a
 * sync() completes, and a crash keeps the synced bytes plus any prefix of the unsynced
 * ones, possibly with the last kept byte garbled (a torn WAL tail). Completions are
 * events in the world's queue after a random fsync delay.
 */

import type { Prng } from "@hsmpool/faults";
import type { AppendableFile, DurableStorage } from "@hsmpool/node";
import type { ShellWorld, SimProcess } from "./process.js";

interface SimFile {
  chunks: Uint8Array[];
  length: number;
  /** Bytes [0, durableLength) survive a crash ... */
  durableLength: number;
  /** ... unless a truncate since the last sync left the durable image elsewhere. */
  durableImage: Uint8Array | null;
}

/**
 * A private copy. `new Uint8Array(buffer)` walks a Buffer element by element (10 ms for the
 * WAL's preallocated megabyte); set() is one memcpy.
 */
function copyOf(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length);
  out.set(data);
  return out;
}

function image(f: SimFile): Uint8Array {
  if (f.chunks.length === 1 && f.chunks[0]!.length === f.length) return f.chunks[0]!;
  const out = new Uint8Array(f.length);
  let at = 0;
  for (const c of f.chunks) {
    out.set(c, at);
    at += c.length;
  }
  f.chunks = [out];
  return out;
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
    if (!f) return null;
    return f.durableImage ?? image(f).subarray(0, f.durableLength);
  }

  /** Every file's durable bytes (a confidentiality test scans them). */
  durableFiles(): Uint8Array[] {
    return [...this.files.keys()].map((path) => this.durable(path) as Uint8Array);
  }

  /** The process died: unsynced bytes survive only as a random prefix, perhaps garbled at its end. */
  crash(prng: Prng, corruptProbability: number): void {
    for (const f of this.files.values()) {
      const all = image(f);
      const base = f.durableImage ?? all.subarray(0, f.durableLength);
      const extra = f.durableImage ? new Uint8Array(0) : all.subarray(f.durableLength);
      const keep = prng.int(extra.length + 1);
      const out = new Uint8Array(base.length + keep);
      out.set(base, 0);
      out.set(extra.subarray(0, keep), base.length);
      if (keep > 0 && prng.chance(corruptProbability)) out[out.length - 1]! ^= 0x5a;
      this.tornBytes += extra.length - keep;
      f.chunks = [out];
      f.length = out.length;
      f.durableLength = out.length;
      f.durableImage = null;
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
        // Inside the file (the WAL writes into its preallocated zeroed tail): overwrite in place; copying
        // the whole image on each write made appends quadratic, the simulator's hottest line.
        if (position + data.length <= f.length && position !== f.length) {
          image(f).set(data, position);
          return;
        }
        const copy = copyOf(data); // the caller may reuse its buffer
        if (position === f.length) f.chunks.push(copy);
        else {
          const all = image(f);
          const out = new Uint8Array(Math.max(f.length, position + copy.length));
          out.set(all, 0);
          out.set(copy, position);
          f.chunks = [out];
        }
        f.length = Math.max(f.length, position + copy.length);
      },
      truncate: async (length) => {
        const f = files.get(path);
        if (!f || length >= f.length) return;
        const all = image(f);
        f.durableImage ??= all.slice(0, f.durableLength);
        f.chunks = [all.slice(0, length)];
        f.length = length;
        f.durableLength = Math.min(f.durableLength, length);
      },
      sync: () =>
        new Promise<void>((resolve) =>
          afterFsync(() => {
            const f = files.get(path);
            if (!f) return;
            f.durableLength = f.length;
            f.durableImage = null;
          }, resolve),
        ),
      close: async () => {},
    });
    return {
      mkdir: async () => {},
      read: async (path) => {
        const f = files.get(path);
        return f ? copyOf(image(f)) : null;
      },
      writeAtomic: (path, data) => {
        const copy = copyOf(data);
        return new Promise<void>((resolve) =>
          afterFsync(
            () =>
              files.set(path, {
                chunks: [copy],
                length: copy.length,
                durableLength: copy.length,
                durableImage: null,
              }),
            resolve,
          ),
        );
      },
      openForWrite: async (path) => {
        if (!files.has(path)) throw new Error(`sim disk: no file ${path}`);
        return open(path);
      },
    };
  }
}
