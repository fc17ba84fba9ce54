import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPolicyFile, MAX_POLICY_FILE_BYTES } from "./policy-file.js";
import { caught, removeTempDirs, tempDir } from "./test-support.js";

const SIGNER = "AB".repeat(32);
const MEASUREMENT = "cd".repeat(32);
let dir: string;

async function file(name: string, content: string | Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

beforeAll(async () => {
  dir = await tempDir("hsmpool-atls-policy-");
});
afterAll(removeTempDirs);

describe("loadPolicyFile", () => {
  it("loads a valid policy and normalises hex to lower case", async () => {
    const path = await file(
      "ok.json",
      JSON.stringify({
        allowedSigners: [{ mrsigner: SIGNER, productId: 7, minSvn: 3 }],
        allowedMeasurements: [MEASUREMENT],
        allowDebug: false,
      }),
    );
    expect(await loadPolicyFile(path)).toEqual({
      allowedSigners: [{ mrsigner: SIGNER.toLowerCase(), productId: 7, minSvn: 3 }],
      allowedMeasurements: [MEASUREMENT],
      allowDebug: false,
    });
  });

  it("names the file when it does not exist", async () => {
    const path = join(dir, "missing.json");
    const err = await caught(() => loadPolicyFile(path));
    expect(err.code).toBe("BadParameter");
    expect(err.message).toContain(path);
    expect(err.message).toContain("does not exist");
    expect(err.details?.file).toBe(path);
  });

  it("names the file when it is a directory", async () => {
    const path = join(dir, "a-dir");
    await mkdir(path);
    const err = await caught(() => loadPolicyFile(path));
    expect(err.code).toBe("BadParameter");
    expect(err.message).toContain("is a directory");
  });

  it("names the file when it is not JSON", async () => {
    const path = await file("broken.json", "{ allowedSigners: [");
    const err = await caught(() => loadPolicyFile(path));
    expect(err.code).toBe("BadParameter");
    expect(err.message).toMatch(/broken\.json is not valid JSON/);
  });

  it.each([
    [
      "a negative minSvn",
      { allowedSigners: [{ mrsigner: SIGNER, minSvn: -1 }] },
      "policy.allowedSigners[0].minSvn",
    ],
    ["a short mrsigner", { allowedSigners: [{ mrsigner: "abcd" }] }, "policy.allowedSigners[0].mrsigner"],
    [
      "a misspelt allowDebug",
      { allowedSigners: [{ mrsigner: SIGNER }], allowDebg: true },
      "policy.allowDebg",
    ],
    ["no signers", { allowedSigners: [] }, "policy.allowedSigners"],
    [
      "a non-boolean allowDebug",
      { allowedSigners: [{ mrsigner: SIGNER }], allowDebug: "no" },
      "policy.allowDebug",
    ],
  ])("names file and field for %s", async (_what, content, field) => {
    const path = await file(`bad-${field.replace(/\W/g, "_")}.json`, JSON.stringify(content));
    const err = await caught(() => loadPolicyFile(path));
    expect(err.code).toBe("BadParameter");
    expect(err.details).toMatchObject({ file: path, field });
    expect(err.message).toContain(path);
    expect(err.message).toContain(field);
  });

  it("refuses a file far larger than any policy", async () => {
    const path = await file("huge.json", Buffer.alloc(MAX_POLICY_FILE_BYTES + 1, 0x20));
    const err = await caught(() => loadPolicyFile(path));
    expect(err.code).toBe("BadParameter");
    expect(err.message).toContain("larger than");
  });
});
