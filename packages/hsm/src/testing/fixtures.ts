/** Shared helpers for this package's tests (excluded from the build). */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { type ErrorCode, isHsmPoolError } from "@hsmpool/errors";
import { expect } from "vitest";
import { HsmDevice, type Session } from "../index.js";

const made: string[] = [];

export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "hsmpool-hsm-test-"));
  made.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

export interface Fixture {
  dir: string;
  device: HsmDevice;
  credential: Uint8Array;
  session: Session;
}

/** A new device with partition `index` initialized and logged in. */
export async function deviceWithSession(partitionCount = 2, index = 0): Promise<Fixture> {
  const dir = join(await tempDir(), "hsm");
  const device = await HsmDevice.create(dir, { partitionCount });
  const credential = await device.partition(index).initialize();
  const session = await device.partition(index).login(credential);
  return { dir, device, credential, session };
}

/** Every file under `dir` (relative path -> bytes). */
export async function readTree(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.set(relative(dir, path), await readFile(path));
  }
  return new Map([...out].sort(([a], [b]) => a.localeCompare(b)));
}

/** Asserts the promise rejects with an HsmPoolError of `code` whose message matches `message`. */
export async function expectHsmError(
  promise: Promise<unknown>,
  code: ErrorCode,
  message?: RegExp,
): Promise<void> {
  let error: unknown;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  expect(error, "expected a rejection").toBeDefined();
  if (!isHsmPoolError(error)) throw new Error(`expected HsmPoolError ${code}, got ${String(error)}`);
  expect(error.code, error.message).toBe(code);
  if (message) expect(error.message).toMatch(message);
}

export const text = (s: string) => new TextEncoder().encode(s);
