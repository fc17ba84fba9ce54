import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = new URL(".", import.meta.url).pathname;

/** The package's core sources (tests, test helpers and benchmarks excluded). */
async function sources(): Promise<[string, string][]> {
  const files = (await readdir(SRC, { recursive: true }))
    .map(String)
    .filter(
      (f) =>
        f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.startsWith("testing") && !f.startsWith("bench"),
    );
  return Promise.all(files.map(async (f) => [f, await readFile(join(SRC, f), "utf8")] as [string, string]));
}

describe("the pool core is pure", () => {
  it("imports no node: module and no I/O package, and reads no clock or randomness", async () => {
    const files = await sources();
    expect(files.length).toBeGreaterThan(10);
    for (const [file, text] of files) {
      const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
      expect(code, file).not.toMatch(/from "node:/);
      expect(code, file).not.toMatch(
        /Date\.now|new Date\(\)|performance\.now|Math\.random|setTimeout|setInterval/,
      );
      expect(code, file).not.toMatch(/getRandomValues|randomBytes|process\./);
      // Only type imports from the HSM package (its runtime uses node:crypto and the file system).
      expect(code, file).not.toMatch(/import \{[^}]*\} from "@hsmpool\/hsm"/);
    }
  });
});
