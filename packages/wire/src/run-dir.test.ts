import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readPoolSpec, runDirMismatch } from "./run-dir.js";

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

describe("runDirMismatch", () => {
  it("names a run dir whose files were made by another deployment, in one line with the fix; null when it resumes here", async () => {
    const bundle = await mkdtemp(join(tmpdir(), "hsmpool-bundle-"));
    try {
      const member = { ...legacy("n1", 1), bundleDir: bundle };
      const here = await poolJson("resumes-here", [member]);
      await mkdir(join(here, "nodes", "n1"), { recursive: true });
      await writeFile(
        join(here, "nodes", "n1", "config.json"),
        JSON.stringify({ stateDir: join(here, "nodes", "n1", "state") }),
      );
      expect(await runDirMismatch(here)).toBeNull();

      // Made by the compose HFC: its configs name the containers' paths.
      const compose = await poolJson("from-compose", [member]);
      await mkdir(join(compose, "nodes", "n1"), { recursive: true });
      await writeFile(
        join(compose, "nodes", "n1", "config.json"),
        JSON.stringify({ stateDir: "/app/.hsmpool/run/nodes/n1/state" }),
      );
      const why = await runDirMismatch(compose);
      expect(why).toMatch(/holds pool pool-r made by another deployment \(at \/app\/\.hsmpool\/run\)/);
      expect(why).toMatch(/use another run dir .* or remove .*from-compose/);
      expect(why).not.toContain("\n");

      // A bundle that is not on this side.
      const foreign = await poolJson("foreign-bundle", [{ ...member, bundleDir: "/app/packages/node/dist" }]);
      expect(await runDirMismatch(foreign)).toMatch(
        /runs the bundle \/app\/packages\/node\/dist, which is not here/,
      );
      expect(await runDirMismatch(join(dir, "no-pool-here"))).toBeNull();
    } finally {
      await rm(bundle, { recursive: true, force: true });
    }
  });
});
