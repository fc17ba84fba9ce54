/**
 * Process e2e for healing by replacement: a lost server's member is fenced and a
 * blank joiner takes its place in another rack; bundles the pool must refuse
 * (tampered, signed by someone else) are reported and change nothing; a rolling
 * upgrade to a newer security version replaces every member and a downgrade is
 * refused. Real processes on loopback; each test starts and tears down its pool.
 */
import { generateKeyPairSync } from "node:crypto";
import { appendFile, cp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { issueClientIdentity, PoolClient } from "@hsmpool/client";
import { poolResourceUri } from "@hsmpool/pool";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { logsTail, startTestPool, type TestPool, Writer, waitForHealed } from "./support/healing-harness.js";
import { cli, ensureSignedNodeBundle, REPO, waitFor } from "./support/pool-harness.js";

let pool: TestPool | undefined;
beforeAll(() => ensureSignedNodeBundle());
afterEach(async () => {
  await pool?.close();
  pool = undefined;
}, 120_000);

const NODE_BUNDLE = join(REPO, "packages/node/dist");

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A copy of the node bundle signed with the project key at `svn`. */
async function bundleWithSvn(p: TestPool, name: string, svn: number): Promise<string> {
  const dir = join(p.dirs.root, name);
  await cp(NODE_BUNDLE, dir, { recursive: true });
  const signed = await cli(["bundle", "sign", dir, "--svn", String(svn)]);
  if (signed.code !== 0) throw new Error(signed.stderr);
  return dir;
}

describe("healing by replacement (real processes)", () => {
  it("a lost server's member is fenced and replaced by a blank joiner in a new rack that signs the old keys", async () => {
    pool = await startTestPool("hsmpool-e2e-heal-replace-", { racks: 4 });
    const p = pool;
    await p.client.createKey({ name: "before-loss", kty: "EC" });
    const writer = new Writer(p.client, "loss");
    await waitFor("writes before the loss", () => (writer.acked.length >= 3 ? true : undefined));
    const before = await p.hfc.status();
    const victim = before.members.find((m) => m.id === before.primary);
    if (!victim) throw new Error("no primary");
    const lost = await p.run("kill", "--server", victim.server);
    expect(lost.stdout).toMatch(new RegExp(`^server ${victim.server} marked lost; fenced ${victim.id} `));

    const healed = await waitForHealed(p, "the replacement to be ready");
    const record = healed.healing.find((h) => h.kind === "replace" && h.memberId === victim.id);
    expect(record?.phases.map((x) => x.phase)).toEqual([
      "detected",
      "fenced",
      "launching",
      "attesting",
      "catching_up",
      "syncing_ownership",
      "ready",
    ]);
    const joiner = healed.members.find((m) => m.id === record?.replacementId);
    if (!joiner) throw new Error(`no joiner in ${JSON.stringify(healed)}`);
    expect(joiner.id).toBe("n4");
    // A rack none of the original members used (the fabric has four).
    expect(before.members.map((m) => m.rack)).not.toContain(joiner.rack);
    expect(healed.members.map((m) => m.id)).not.toContain(victim.id);
    expect(healed.lostServers).toEqual([victim.server]);
    expect(isAlive(victim.pid)).toBe(false);

    // The fenced member stays fenced on disk and is never relaunched.
    const poolJson = JSON.parse(await readFile(join(p.dirs.runDir, "pool.json"), "utf8")) as {
      members: { id: string; lifecycle: string; replaces: string | null }[];
    };
    expect(poolJson.members.find((m) => m.id === victim.id)?.lifecycle).toBe("fenced");
    expect(poolJson.members.find((m) => m.id === joiner.id)).toMatchObject({
      lifecycle: "active",
      replaces: victim.id,
    });
    const fabricState = JSON.parse(await readFile(join(p.dirs.runDir, "fabric-state.json"), "utf8")) as {
      lostServers: { serverId: string }[];
    };
    expect(fabricState.lostServers.map((s) => s.serverId)).toEqual([victim.server]);
    expect((await p.run("restart", victim.id)).stderr).toMatch(/no longer a member .*fenced.*\[NotFound\]/);

    await writer.stop();
    const present = new Set((await p.client.listKeys()).map((k) => k.name));
    expect(writer.acked.filter((n) => !present.has(n))).toEqual([]);
    const direct = new PoolClient({
      tls: await issueClientIdentity(p.hfc),
      resource: poolResourceUri((await p.hfc.status()).poolId),
      endpoints: [joiner.dataAddress],
      retry: { maxAttempts: 20, totalTimeoutMs: 30_000 },
    });
    try {
      const sig = await direct.sign({ name: "before-loss", alg: "ES256", data: Buffer.from("x") });
      expect(sig.servedBy).toBe(joiner.id);
    } finally {
      direct.close();
    }
  }, 240_000);

  it("bundles the pool must refuse: the HFC's own checks say why, and launched anyway (unchecked) they are refused, reported and change nothing", async () => {
    pool = await startTestPool("hsmpool-e2e-heal-refused-");
    const p = pool;
    await p.client.createKey({ name: "kept", kty: "EC" });
    const tampered = join(p.dirs.root, "tampered");
    await cp(NODE_BUNDLE, tampered, { recursive: true });
    await appendFile(join(tampered, "config.js"), "\n// one changed byte is enough\n");
    const foreign = join(p.dirs.root, "foreign");
    await cp(NODE_BUNDLE, foreign, { recursive: true });
    const foreignKey = join(p.dirs.root, "foreign-key.pem");
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    await writeFile(foreignKey, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    expect((await cli(["bundle", "sign", foreign, "--key", foreignKey])).code).toBe(0);

    // The HFC refuses before launching anything.
    const checked = await p.run("upgrade", "--bundle", tampered);
    expect(checked.stderr).toMatch(
      /^hsmpool: .*tampered would not launch: its files changed after signing.*\[LaunchRefused\]\n$/,
    );
    const otherSigner = await p.run("upgrade", "--bundle", foreign);
    expect(otherSigner.stderr).toMatch(/^hsmpool: .*foreign is signed by another key .*\[Forbidden\]\n$/);
    expect((await p.hfc.status()).healing).toEqual([]);

    // An HFC that launches them anyway: the platform refuses the tampered one...
    const launched = await p.run("upgrade", "--bundle", tampered, "--unchecked");
    expect(launched.code).toBe(1);
    expect(launched.stderr).toMatch(
      /hsmpool: upgrade to .*tampered stopped: n4: enclave launch refused: .*does not match the signed MRENCLAVE.*\[LaunchRefused\]\n$/,
    );
    // ...and the pool refuses the foreign signer at the attested handshake.
    const joined = await p.run("upgrade", "--bundle", foreign, "--unchecked");
    expect(joined.code).toBe(1);
    expect(joined.stderr).toMatch(
      /hsmpool: upgrade to .*foreign stopped: n5: join refused: .*signer.*\[AttestationFailed\]\n$/,
    );

    const s = await p.hfc.status();
    expect(s.healing.map((h) => [h.kind, h.replacementId, h.phase])).toEqual([
      ["upgrade", "n4", "failed"],
      ["upgrade", "n5", "failed"],
    ]);
    expect(s.upgrade).toMatchObject({ state: "failed" });
    // The pool never changed: the same three members, healthy, serving.
    expect(s.state).toBe("healthy");
    expect(s.members.map((m) => m.id)).toEqual(["n1", "n2", "n3"]);
    const sig = await p.client.sign({ name: "kept", alg: "ES256", data: Buffer.from("still here") });
    expect(["n1", "n2", "n3"]).toContain(sig.servedBy);
    const n5log = await readFile(join(p.dirs.runDir, "nodes", "n5", "node.log"), "utf8");
    expect(n5log).toMatch(/"msg":"join refused"/);
  }, 240_000);

  it("a rolling upgrade to a newer security version replaces every member one at a time; a downgrade is then refused", async () => {
    pool = await startTestPool("hsmpool-e2e-heal-upgrade-");
    const p = pool;
    const v2 = await bundleWithSvn(p, "bundle-svn2", 2);
    await p.client.createKey({ name: "before-upgrade", kty: "EC" });
    const writer = new Writer(p.client, "upgrade");
    const upgraded = await p.run("upgrade", "--bundle", v2);
    expect(upgraded.code, `${upgraded.stderr}\n${await logsTail(p.dirs)}`).toBe(0);
    expect(upgraded.stdout).toMatch(/^upgrade done: the pool runs .*bundle-svn2 \(svn 2\)/);
    expect(upgraded.stderr).toMatch(/upgrading n1, n2, n3 one at a time to security version 2/);
    const s = await waitForHealed(p, "the upgraded pool");
    expect(s.members.map((m) => m.id).sort()).toEqual(["n4", "n5", "n6"]);
    expect(s.upgrade).toMatchObject({ state: "done", svn: 2, launched: ["n4", "n5", "n6"] });
    const steps = s.healing.filter((h) => h.kind === "upgrade");
    expect(steps.map((h) => h.phase)).toEqual(["ready", "ready", "ready"]);
    // One at a time: each joiner started only after the previous one was ready.
    for (let i = 1; i < steps.length; i++) {
      const previousReady =
        steps[i - 1]?.phases.find((x) => x.phase === "ready")?.atMs ?? Number.POSITIVE_INFINITY;
      expect(steps[i]?.phases[0]?.atMs).toBeGreaterThanOrEqual(previousReady);
    }
    await writer.stop();
    const present = new Set((await p.client.listKeys()).map((k) => k.name));
    expect(writer.acked.filter((n) => !present.has(n))).toEqual([]);
    expect(present.has("before-upgrade")).toBe(true);

    const down = await p.run("upgrade", "--bundle", NODE_BUNDLE);
    expect(down.stderr).toMatch(
      /^hsmpool: downgrade refused: .* has security version 1, below the pool's minimum 2 \[Forbidden\]\n$/,
    );
    expect((await p.hfc.status()).members.map((m) => m.id).sort()).toEqual(["n4", "n5", "n6"]);
  }, 240_000);
});
