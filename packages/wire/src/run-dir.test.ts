import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  fromStatePath,
  poolSpecForFile,
  readPoolSpec,
  rebaseBundles,
  runDirMismatch,
  toStatePath,
} from "./run-dir.js";
import type { PoolSpec } from "./types.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hsmpool-run-dir-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const legacy = (id: string, i: number) => ({
  id,
  serverId: `r${i}-s1`,
  rackId: `rack-${i}`,
  partition: 0,
  peerAddress: `127.0.0.1:${7100 + i}`,
  dataAddress: `127.0.0.1:${7200 + i}`,
  bundleDir: "/b",
});

async function poolJson(name: string, members: unknown[]): Promise<string> {
  const runDir = join(dir, name);
  await mkdir(runDir, { recursive: true });
  await writeFile(
    join(runDir, "pool.json"),
    JSON.stringify({ poolId: "pool-r", placementSeed: 3, members, createdMs: 1 }),
  );
  return runDir;
}

describe("pool.json members", () => {
  it("a pool.json from before healing reads as active bootstrap voters", async () => {
    const pool = await readPoolSpec(
      await poolJson("legacy", [legacy("n1", 1), legacy("n2", 2), legacy("n3", 3)]),
    );
    expect(pool?.members[0]).toEqual({
      ...legacy("n1", 1),
      lifecycle: "active",
      mode: "bootstrap",
      replaces: null,
      joinPeers: [],
      minPeerSvn: null,
      svn: 0,
      mrsigner: "",
      replacedBy: null,
      wasVoter: true,
    });
  });

  it("a joiner may have no addresses yet; a bootstrap member may not", async () => {
    const joiner = {
      ...legacy("n4", 4),
      peerAddress: "",
      dataAddress: "",
      mode: "join",
      lifecycle: "joining",
      replaces: "n1",
    };
    const pool = await readPoolSpec(await poolJson("joiner", [legacy("n1", 1), joiner]));
    expect(pool?.members[1]).toMatchObject({
      id: "n4",
      peerAddress: "",
      mode: "join",
      replaces: "n1",
      wasVoter: false,
    });
    await expect(
      readPoolSpec(await poolJson("bad-boot", [{ ...legacy("n1", 1), peerAddress: "" }])),
    ).rejects.toThrow(/members\[0\] is malformed/);
  });

  it("a healing field of the wrong type is an IntegrityError naming the member", async () => {
    const runDir = await poolJson("bad-lifecycle", [
      legacy("n1", 1),
      { ...legacy("n2", 2), lifecycle: "zombie" },
    ]);
    await expect(readPoolSpec(runDir)).rejects.toMatchObject({ code: "IntegrityError" });
    await expect(readPoolSpec(runDir)).rejects.toThrow(
      /members\[1\] is malformed \(a healing field has the wrong type\)/,
    );
  });
});

describe("a run dir made elsewhere", () => {
  it("is relocatable: a bundle inside the state dir is stored relative to it, so a moved state dir resumes", async () => {
    const state = join(dir, "state-a");
    const runDir = join(state, "run");
    const bundle = join(state, "debug-bundle");
    await mkdir(bundle, { recursive: true });
    await mkdir(runDir, { recursive: true });
    const spec = {
      poolId: "pool-r",
      placementSeed: 3,
      createdMs: 1,
      members: [{ ...legacy("n1", 1), bundleDir: bundle }],
    };
    const stored = poolSpecForFile(runDir, (await readPoolSpecFrom(runDir, spec)) as PoolSpec);
    expect(stored.members[0]?.bundleDir).toBe("debug-bundle");
    expect(toStatePath(runDir, "/usr/lib/x")).toBe("/usr/lib/x"); // outside the state dir: absolute
    await writeFile(join(runDir, "pool.json"), JSON.stringify(stored));
    const moved = join(dir, "state-b");
    await rename(state, moved);
    const pool = await readPoolSpec(join(moved, "run"));
    expect(pool?.members[0]?.bundleDir).toBe(join(moved, "debug-bundle"));
    expect(fromStatePath(join(moved, "run"), "debug-bundle")).toBe(join(moved, "debug-bundle"));
    expect(await runDirMismatch(join(moved, "run"), undefined)).toBeNull();
  });

  it("runs this deployment's bundle for a member whose bundle is not here when it is the same release; else one line with the fix", async () => {
    const local = await mkdtemp(join(tmpdir(), "hsmpool-bundle-"));
    try {
      const member = { ...legacy("n1", 1), bundleDir: "/app/packages/node/dist", svn: 2, mrsigner: "ab" };
      const runDir = await poolJson("from-compose", [member]);
      const pool = (await readPoolSpec(runDir)) as PoolSpec;
      const same = await rebaseBundles(runDir, pool, { bundleDir: local, svn: 2, mrsigner: "ab" });
      expect(same.problem).toBeNull();
      expect(same.pool.members[0]?.bundleDir).toBe(local);
      for (const other of [
        { bundleDir: local, svn: 1, mrsigner: "ab" },
        { bundleDir: local, svn: 2, mrsigner: "cd" },
        undefined,
      ]) {
        const why = await runDirMismatch(runDir, other);
        expect(why).toMatch(
          /member n1 runs the bundle \/app\/packages\/node\/dist \(svn 2\), which is not here/,
        );
        expect(why).toMatch(
          /resume it with that release \(--bundle-dir\), or start a new pool in another run dir/,
        );
        expect(why).not.toContain("\n");
      }
      expect(await runDirMismatch(join(dir, "no-pool-here"), undefined)).toBeNull();
    } finally {
      await rm(local, { recursive: true, force: true });
    }
  });
});

/** The spec as readPoolSpec would return it (defaults filled in), via a scratch pool.json. */
async function readPoolSpecFrom(runDir: string, spec: object): Promise<PoolSpec | undefined> {
  await writeFile(join(runDir, "pool.json"), JSON.stringify(spec));
  return readPoolSpec(runDir);
}
