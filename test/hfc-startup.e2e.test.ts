/**
 * `hsmpool up` refusals that happen before any node runs: real CLI and HFC
 * processes, one-line errors, nothing left running.
 */
import { appendFile, cp, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cli,
  ensureSignedNodeBundle,
  type PoolDirs,
  REPO,
  removeDirs,
  stopEverything,
  tempPoolDirs,
} from "./support/pool-harness.js";

let dirs: PoolDirs;
beforeAll(async () => {
  dirs = await tempPoolDirs("hsmpool-e2e-startup-");
});
afterAll(async () => {
  await stopEverything(dirs);
  await removeDirs(dirs);
}, 180_000);

describe("hsmpool up refusals", () => {
  it("a fabric with only two racks cannot hold a pool: the HFC's placement error comes back as one line", async () => {
    const fabricDir = join(dirs.root, "two-racks");
    expect(
      (await cli(["fabric", "init", "--dir", fabricDir, "--racks", "2", "--servers-per-rack", "3"])).code,
    ).toBe(0);
    const runDir = join(dirs.root, "run-two-racks");
    const r = await cli(["up", "--run-dir", runDir, "--fabric-dir", fabricDir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    const errorLines = r.stderr.split("\n").filter((l) => l.startsWith("hsmpool: "));
    expect(errorLines).toEqual([
      expect.stringMatching(
        /the HFC exited during start-up: cannot place 3 members in distinct racks: only 2 \(rack-1, rack-2\) have a free server.*\[LaunchRefused\]$/,
      ),
    ]);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const status = await cli(["status", "--run-dir", runDir]);
    expect(status.stderr).toMatch(/no pool is running/);
  }, 180_000);

  it("a run dir whose HFC is alive is not started twice", async () => {
    const runDir = join(dirs.root, "run-busy");
    await mkdir(runDir, { recursive: true });
    // This test process stands in for a live HFC.
    await writeFile(
      join(runDir, "hfc.json"),
      JSON.stringify({
        pid: process.pid,
        controlAddress: "127.0.0.1:9",
        poolId: "pool-busy",
        fabricDir: "/f",
        startedMs: 1,
      }),
    );
    const r = await cli(["up", "--run-dir", runDir, "--fabric-dir", join(dirs.root, "unused-fabric")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^hsmpool: pool pool-busy is already running in .*run-busy \(HFC pid \d+\).*\[Conflict\]\n$/,
    );
  }, 180_000);

  it("a tampered node bundle is refused at launch, and up fails fast with the node's reason", async () => {
    ensureSignedNodeBundle();
    const bundle = join(dirs.root, "tampered-bundle");
    await cp(join(REPO, "packages/node/dist"), bundle, { recursive: true });
    await appendFile(join(bundle, "config.js"), "\n// one changed byte is enough\n");
    const runDir = join(dirs.root, "run-tampered");
    const r = await cli([
      "up",
      "--run-dir",
      runDir,
      "--fabric-dir",
      join(dirs.root, "fabric"),
      "--bundle-dir",
      bundle,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^hsmpool: node n\d exited during start-up \(last log line: .*does not match the signed MRENCLAVE.*\[LaunchRefused\]$/m,
    );
    const status = JSON.parse((await cli(["status", "--run-dir", runDir, "--json"])).stdout) as {
      state: string;
    };
    expect(status.state).toBe("unavailable");
    expect((await cli(["down", "--run-dir", runDir])).code).toBe(0);
  }, 120_000);
});
