/**
 * Completeness of the measured runtime closure (docs/enclave-measurement.md): a three-member
 * pool runs with a preload that records every module file each member loads (ESM through a
 * module.register load hook, CommonJS from require.cache), serves a key's life, and stops; every
 * file any member loaded must be in the closure its MRENCLAVE covers. A file outside it would be
 * code the operator could change without changing MRENCLAVE.
 */

import { realpathSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { runtimeClosureFiles } from "@hsmpool/platform";
import { nodeRuntimeClosure } from "@hsmpool/wire";
import { afterAll, describe, expect, it } from "vitest";
import { BUNDLE_DIR, buildAndSignNode, call, PACKAGE_DIR, TestCluster } from "./testing/cluster.js";
import { removeTempDirs, tempDir } from "./testing/fixtures.js";
import { healthyPoolOf } from "./testing/heal.js";

const IDS = ["n1", "n2", "n3"];
let cluster: TestCluster | undefined;

afterAll(async () => {
  await cluster?.close();
  await removeTempDirs();
});

/** The preload and its hooks module; each member writes `<out>/<pid>.esm` and `<pid>.cjs`. */
async function writeRecorder(dir: string, out: string): Promise<string> {
  const hooks = join(dir, "record-hooks.mjs");
  await writeFile(
    hooks,
    `import { appendFileSync } from "node:fs";
let out;
export function initialize(data) { out = data.out; }
export async function load(url, context, next) {
  if (url.startsWith("file:")) appendFileSync(out, url + "\\n");
  return next(url, context);
}
`,
  );
  const preload = join(dir, "record-loads.mjs");
  await writeFile(
    preload,
    `import { writeFileSync } from "node:fs";
import { createRequire, register } from "node:module";
const out = ${JSON.stringify(out)} + "/" + process.pid;
register(${JSON.stringify(pathToFileURL(hooks).href)}, { data: { out: out + ".esm" } });
const require = createRequire(import.meta.url);
const dump = () => writeFileSync(out + ".cjs", Object.keys(require.cache).join("\\n"));
process.on("exit", dump);
setInterval(dump, 1000).unref();
`,
  );
  return preload;
}

describe("the measured closure holds every file a running member loads", () => {
  it("a pool serves a key's life under a load recorder; each loaded file is in the manifest", async () => {
    buildAndSignNode();
    const root = await tempDir("hsmpool-node-closure-loads-");
    const out = join(root, "loads");
    await mkdir(out);
    const preload = await writeRecorder(root, out);
    cluster = await TestCluster.create(join(root, "run"), IDS, { execArgv: ["--import", preload] });
    for (const id of IDS) await cluster.start(id);
    const statuses = await healthyPoolOf(cluster, IDS, 120_000);
    const primary = statuses.find((s) => s.role === "primary")!.nodeId;
    await cluster.activate(primary);
    const kv = cluster.keyVault(primary);
    await call(kv, "CreateKey", { name: "closure", kty: "EC", crv: "P-256", ops: ["sign", "verify"] });
    await call(kv, "Sign", { name: "closure", alg: "ES256", data: Buffer.alloc(32, 1) });
    await call(cluster.keyVault(IDS.find((id) => id !== primary)!), "Sign", {
      name: "closure",
      alg: "ES256",
      data: Buffer.alloc(32, 2),
    });
    await cluster.stopAll("SIGTERM");

    const measured = new Set(
      [
        ...runtimeClosureFiles(nodeRuntimeClosure(PACKAGE_DIR)).map((f) => f.absPath),
        ...(await readdir(BUNDLE_DIR, { recursive: true })).map((f) => join(BUNDLE_DIR, f)),
      ].map((p) => realpathSync(p)),
    );
    const recorded = await readdir(out);
    expect(recorded.filter((f) => f.endsWith(".cjs")).length).toBe(IDS.length);
    const loaded = new Set<string>();
    for (const f of recorded) {
      for (const line of (await readFile(join(out, f), "utf8")).split("\n")) {
        if (line === "") continue;
        const path = line.startsWith("file:") ? fileURLToPath(line) : line;
        if (path.startsWith(root)) continue; // the recorder itself
        loaded.add(realpathSync(path));
      }
    }
    // The recorder saw both kinds of module: our ESM dist and CommonJS dependencies.
    expect([...loaded].some((p) => p.endsWith("/packages/hsm/dist/index.js"))).toBe(true);
    expect([...loaded].some((p) => p.includes("/@grpc/grpc-js/build/src/"))).toBe(true);
    expect([...loaded].filter((p) => !measured.has(p))).toEqual([]);
  }, 300_000);
});
