import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  appendFileDurable,
  readFileIfExists,
  TEMP_MARKER,
  truncateDurable,
  writeFileAtomic,
  writeJsonAtomic,
} from "./index.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hsmpool-files-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("writeFileAtomic", () => {
  it("replaces the whole file, creates parents, leaves no temp file, and applies the mode", async () => {
    const path = join(dir, "a", "b", "f.bin");
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    await writeFileAtomic(path, "second");
    expect(await readFile(path, "utf8")).toBe("second");
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await writeFileAtomic(path, "public", 0o644);
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    expect((await readdir(join(dir, "a", "b"))).filter((n) => n.includes(TEMP_MARKER))).toEqual([]);
  });

  it("zero-fills up to zeroFillTo (in more than one write), and never cuts data longer than it", async () => {
    const path = join(dir, "prealloc.bin");
    await writeFileAtomic(path, new Uint8Array([7, 8, 9]), 0o600, 150_000);
    const image = await readFile(path);
    expect(image.length).toBe(150_000);
    expect([...image.subarray(0, 3)]).toEqual([7, 8, 9]);
    expect(image.subarray(3).every((b) => b === 0)).toBe(true);
    await writeFileAtomic(path, "longer than two", 0o600, 4);
    expect(await readFile(path, "utf8")).toBe("longer than two");
  });

  it("keeps the old content and removes its temp file when the write fails", async () => {
    const path = join(dir, "keep.txt");
    await writeFile(path, "old");
    await expect(writeFileAtomic(path, 42 as unknown as string)).rejects.toThrow();
    expect(await readFile(path, "utf8")).toBe("old");
    expect((await readdir(dir)).filter((n) => n.includes(TEMP_MARKER))).toEqual([]);
  });

  it("writeJsonAtomic writes pretty JSON with a newline; readFileIfExists returns null only for a missing file", async () => {
    const path = join(dir, "j.json");
    await writeJsonAtomic(path, { a: 1 });
    expect(await readFile(path, "utf8")).toBe('{\n  "a": 1\n}\n');
    expect(await readFileIfExists(join(dir, "missing"))).toBeNull();
    expect(Buffer.from((await readFileIfExists(path)) ?? []).toString()).toContain('"a": 1');
    await expect(readFileIfExists(dir)).rejects.toThrow();
  });
});

describe("appendFileDurable / truncateDurable", () => {
  it("appends in order, creating the file once; a cut keeps exactly the prefix", async () => {
    const path = join(dir, "log.bin");
    await appendFileDurable(path, new Uint8Array([1, 2]));
    await appendFileDurable(path, new Uint8Array([3]));
    expect([...(await readFile(path))]).toEqual([1, 2, 3]);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await truncateDurable(path, 2);
    await appendFileDurable(path, new Uint8Array([9]));
    expect([...(await readFile(path))]).toEqual([1, 2, 9]);
  });
});
