/** Crash-safe file replacement: temp file + fsync + rename + fsync of the directory. */
import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export const TEMP_MARKER = ".tmp-";

export async function writeFileAtomic(path: string, data: Uint8Array, mode = 0o600): Promise<void> {
  const temp = join(dirname(path), `${basename(path)}${TEMP_MARKER}${randomBytes(6).toString("hex")}`);
  try {
    const file = await open(temp, "wx", mode);
    try {
      await file.writeFile(data);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
  await syncDirectory(dirname(path));
}

/** Makes a rename or unlink in `dir` durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
