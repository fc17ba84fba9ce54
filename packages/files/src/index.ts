/**
 * Durable small-file writes shared by every package that keeps state on disk
 * (fabric, HSM device, node state, HFC run dir). A write either lands whole or not
 * at all, and is on disk before the promise resolves: temp file in the same
 * directory, fsync, rename over the target, fsync the directory.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Part of every temp file's name, so a directory scan can remove leftovers of a crash mid-write. */
export const TEMP_MARKER = ".tmp-";

/** Makes a rename, create or unlink in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Zero bytes written after a file's data by `zeroFillTo` (one shared buffer, never written to). */
const ZEROS = new Uint8Array(64 * 1024);

/**
 * Replaces `path` with `data` crash-safely (parent directories are created). Default mode 0600.
 * `zeroFillTo`: the file continues with zero bytes up to that length (preallocated space, written
 * like the data, so no caller allocates a buffer of zeros for it).
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  mode = 0o600,
  zeroFillTo = 0,
): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `${basename(path)}${TEMP_MARKER}${randomBytes(6).toString("hex")}`);
  try {
    const handle = await open(temp, "wx", mode);
    try {
      await handle.writeFile(data);
      let length = typeof data === "string" ? Buffer.byteLength(data) : data.length;
      while (length < zeroFillTo) {
        const { bytesWritten } = await handle.write(
          ZEROS,
          0,
          Math.min(ZEROS.length, zeroFillTo - length),
          length,
        );
        length += bytesWritten;
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
  await fsyncDir(dir);
}

/** `writeFileAtomic` of pretty-printed JSON with a trailing newline. */
export async function writeJsonAtomic(path: string, value: unknown, mode = 0o600): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, mode);
}

/** The file's bytes, or null when it does not exist (other errors propagate). */
export async function readFileIfExists(path: string): Promise<Uint8Array | null> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/**
 * Appends `data` to `path` and makes it durable (fdatasync; the directory too when the
 * file is new). A crash mid-append can leave a torn tail: readers of an append-only
 * file must accept and cut one.
 */
export async function appendFileDurable(path: string, data: Uint8Array): Promise<void> {
  const handle = await open(path, "a", 0o600);
  let created = false;
  try {
    created = (await handle.stat()).size === 0;
    await handle.writeFile(data);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  if (created) await fsyncDir(dirname(path));
}

/** Cuts `path` to `length` bytes durably (a torn tail of an append-only file). */
export async function truncateDurable(path: string, length: number): Promise<void> {
  const handle = await open(path, "r+");
  try {
    await handle.truncate(length);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
