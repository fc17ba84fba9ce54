import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HsmDevice } from "@hsmpool/hsm";
import { openFabric } from "@hsmpool/platform";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "./testing/run-cli.js";

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "hsmpool-cli-fabric-"));
  dirs.push(d);
  return d;
}

const run = runCli;

describe("hsmpool fabric", () => {
  it("init gives every server its own HSM device with the requested partitions", async () => {
    const dir = join(await tempDir(), "fabric");
    expect((await run("fabric", "init", "--dir", dir, "--partitions", "3")).code).toBe(0);
    const servers = (await openFabric(dir)).servers();
    expect(servers).toHaveLength(6);
    for (const server of servers) {
      const device = await HsmDevice.open(server.hsmDir);
      expect(device.partitionCount).toBe(3);
      await device.close();
    }
    expect(
      (await run("fabric", "init", "--dir", join(await tempDir(), "f"), "--partitions", "0")).code,
    ).not.toBe(0);
  });

  it("init then show --json round-trips the inventory (3 racks x 2 servers by default)", async () => {
    const dir = join(await tempDir(), "fabric");
    const init = await run("fabric", "init", "--dir", dir);
    expect(init.code).toBe(0);
    expect(init.stdout).toMatch(/3 racks, 6 servers/);
    const show = await run("fabric", "show", "--dir", dir, "--json");
    expect(show.code).toBe(0);
    const j = JSON.parse(show.stdout);
    expect(Object.keys(j).sort()).toEqual(["createdAt", "fabricId", "racks", "vendorRoot"]);
    expect(j.racks.map((r: { servers: unknown[] }) => r.servers.length)).toEqual([2, 2, 2]);
    expect(j.racks[2].servers[1]).toMatchObject({ id: "r3-s2", rack: "rack-3" });
    expect(init.stdout).toContain(j.fabricId);
    const text = await run("fabric", "show", "--dir", dir);
    expect(text.stdout).toMatch(/rack-2:\n {2}r2-s1 {2}platform cert sha256 [0-9a-f]{64}/);
    expect(init.stdout + show.stdout + text.stdout).not.toMatch(/PRIVATE KEY/);
  });

  it("honours --racks and --servers-per-rack", async () => {
    const dir = join(await tempDir(), "fabric");
    expect((await run("fabric", "init", "--dir", dir, "--racks", "4", "--servers-per-rack", "1")).code).toBe(
      0,
    );
    const j = JSON.parse((await run("fabric", "show", "--dir", dir, "--json")).stdout);
    expect(j.racks.map((r: { id: string }) => r.id)).toEqual(["rack-1", "rack-2", "rack-3", "rack-4"]);
  });

  it("user mistakes exit non-zero with one line and change nothing", async () => {
    const base = await tempDir();
    const bad = await run("fabric", "init", "--dir", join(base, "f"), "--racks", "three");
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toBe(
      'hsmpool: --racks must be a whole number from 1 to 64, got "three" [BadParameter]\n',
    );
    expect(await readdir(base)).toEqual([]);

    const missing = await run("fabric", "show", "--dir", join(base, "nope"));
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split("\n")).toHaveLength(1);
    expect(missing.stderr).toMatch(/^hsmpool: fabric directory .* does not exist .*\[NotFound\]\n$/);

    expect(
      (await run("fabric", "init", "--dir", join(base, "f"), "--racks", "1", "--servers-per-rack", "1")).code,
    ).toBe(0);
    const again = await run("fabric", "init", "--dir", join(base, "f"));
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      /^hsmpool: cannot create a fabric in .*: a fabric is already initialised there \[Conflict\]\n$/,
    );

    const notFabric = await run("fabric", "show", "--dir", base);
    expect(notFabric.stderr).toMatch(/is not a fabric .*\[NotInitialized\]\n$/);
  });
});
