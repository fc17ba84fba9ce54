/**
 * Durable storage for the node shell: the state directory's files with their crash
 * semantics spelled out, so a simulated disk can honour the same contract:
 *
 *  - writeAtomic: after a crash the file holds the old or the new bytes, never a mix;
 *    the new bytes are durable when the promise resolves.
 *  - AppendableFile.write: not durable until sync() resolves; a crash may keep any
 *    prefix of unsynced writes (a torn tail), never touches synced bytes.
 *
 * Production uses the file system (fileStorage); the simulator its own disk.
 */
import { type FileHandle, mkdir, open } from "node:fs/promises";
import { readFileIfExists, writeFileAtomic } from "@hsmpool/files";

export interface AppendableFile {
  /** Writes `data` at byte `position` (durable only after sync). */
  write(data: Uint8Array, position: number): Promise<void>;
  truncate(length: number): Promise<void>;
  /** fdatasync: every byte written so far survives a crash. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface DurableStorage {
  /** Creates a directory (and its parents) readable only by this user. */
  mkdir(dir: string): Promise<void>;
  /** The file's bytes, or null when it does not exist. */
  read(path: string): Promise<Uint8Array | null>;
  writeAtomic(path: string, data: Uint8Array): Promise<void>;
  /** Opens an existing file for in-place writes. */
  openForWrite(path: string): Promise<AppendableFile>;
}

function appendable(fh: FileHandle): AppendableFile {
  return {
    async write(data, position) {
      let written = 0;
      while (written < data.length) {
        const { bytesWritten } = await fh.write(data, written, data.length - written, position + written);
        written += bytesWritten;
      }
    },
    truncate: (length) => fh.truncate(length),
    sync: () => fh.datasync(),
    close: () => fh.close(),
  };
}

export const fileStorage: DurableStorage = {
  mkdir: async (dir) => {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  },
  read: (path) => readFileIfExists(path),
  writeAtomic: (path, data) => writeFileAtomic(path, data),
  openForWrite: async (path) => appendable(await open(path, "r+")),
};
