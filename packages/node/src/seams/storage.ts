/**
 * Durable storage for the node shell: the state directory's files with their crash
 * semantics spelled out, so a simulated disk can honour the same contract:
 *
 *  - writeAtomic: after a crash the file holds the old or the new bytes, never a mix;
 *    the new bytes are durable when the promise resolves. `zeroFillTo`: the new file
 *    continues with zero bytes up to that length (a log's preallocated space).
 *  - AppendableFile.write: not durable until sync() resolves; a crash may keep any
 *    prefix of unsynced writes (a torn tail), never touches synced bytes.
 *
 * Production uses the file system (fileStorage); the simulator its own disk.
 */
import { fdatasyncSync, writeSync } from "node:fs";
import { type FileHandle, mkdir, open } from "node:fs/promises";
import { readFileIfExists, writeFileAtomic } from "@hsmpool/files";

export interface AppendableFile {
  /** Writes `data` at byte `position` (durable only after sync). */
  write(data: Uint8Array, position: number): Promise<void>;
  truncate(length: number): Promise<void>;
  /**
   * fdatasync: every byte written so far survives a crash. `background`: on the thread
   * pool, the event loop free meanwhile; else on the loop (see fileStorage).
   */
  sync(options?: SyncOptions): Promise<void>;
  close(): Promise<void>;
}

export interface SyncOptions {
  background?: boolean;
}

export interface WriteAtomicOptions {
  /** The file continues with zero bytes up to this length (when it is longer than the data). */
  zeroFillTo?: number;
}

export interface DurableStorage {
  /** Creates a directory (and its parents) readable only by this user. */
  mkdir(dir: string): Promise<void>;
  /** The file's bytes, or null when it does not exist. */
  read(path: string): Promise<Uint8Array | null>;
  writeAtomic(path: string, data: Uint8Array, options?: WriteAtomicOptions): Promise<void>;
  /** Opens an existing file for in-place writes. */
  openForWrite(path: string): Promise<AppendableFile>;
}

/**
 * Writes and fdatasyncs run on the event-loop thread, not in libuv's pool. A write of a
 * WAL record into the page cache takes microseconds, and each pool round trip costs two
 * thread wake-ups and an event-loop turn: on a loaded machine that added 1-4 ms to every
 * Raft persist (measured per persist, alternating the two ways in one run: a follower's
 * persist took 5.6-7.2 ms this way against 7.1-11.8 ms through the pool). Before
 * blocking in fdatasync the loop turns once (an immediate), so what was handed to the
 * network just before leaves first: HTTP/2 flushes its frames from an immediate, and a
 * leader sends its appends before it persists (raft-driver.ts), so the followers' writes
 * overlap its own. The price: other requests to this member wait out the flush (they
 * queue and are served right after it, and the next Ready batches their proposals).
 *
 * The exception is a leader's write of entries it has already sent (raft-driver.ts): it
 * syncs on the thread pool, so its loop takes the followers' acknowledgements (and the
 * next requests) while its disk works, and a commit waits for the later of the two
 * rather than for the write and then the decoding of the acknowledgements. Measured
 * (create-key p50, alternating in one run on a loaded machine, three pairs): 50, 40, 51 ms
 * this way against 61, 64, 67 ms with the leader blocked in fdatasync.
 */
function appendable(fh: FileHandle): AppendableFile {
  return {
    async write(data, position) {
      let written = 0;
      while (written < data.length) {
        written += writeSync(fh.fd, data, written, data.length - written, position + written);
      }
    },
    truncate: (length) => fh.truncate(length),
    sync: async (options) => {
      if (options?.background) return fh.datasync();
      await new Promise<void>((resolve) => setImmediate(resolve));
      fdatasyncSync(fh.fd);
    },
    close: () => fh.close(),
  };
}

export const fileStorage: DurableStorage = {
  mkdir: async (dir) => {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  },
  read: (path) => readFileIfExists(path),
  writeAtomic: (path, data, options) => writeFileAtomic(path, data, 0o600, options?.zeroFillTo),
  openForWrite: async (path) => appendable(await open(path, "r+")),
};
