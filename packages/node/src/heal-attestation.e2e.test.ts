/**
 * The pool decides who joins, by attestation, whatever the (untrusted) HFC launches:
 * a joiner whose bundle another key signed launches fine but every member refuses it
 * in the TLS handshake; a newer bundle of the same signer (higher SVN, launched with
 * the pool's minimum as minPeerSvn) joins an older pool and talks both ways; and an
 * older bundle is refused by a pool whose members run (and require) the newer SVN.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAndSignNode, call, TestCluster, waitFor } from "./testing/cluster.js";
import { removeTempDirs, tempDir } from "./testing/fixtures.js";
import { AckedCreates, healthyPoolOf, type LogLine, logLines, resignedBundle } from "./testing/heal.js";

const FOUNDERS = ["n1", "n2", "n3"];
const clusters: TestCluster[] = [];
let svn2Bundle: string;

beforeAll(async () => {
  buildAndSignNode();
  svn2Bundle = await resignedBundle({ svn: 2 });
}, 120_000);

/** Stops a pool (its processes would only compete for the CPU with the next one). */
async function finish(c: TestCluster): Promise<void> {
  const i = clusters.indexOf(c);
  if (i < 0) return;
  clusters.splice(i, 1);
  if (process.env.HSMPOOL_TEST_LOGS) {
    for (const id of c.members.keys())
      process.stderr.write(`--- ${id}\n${(await c.log(id)).split("\n").slice(-40).join("\n")}\n`);
  }
  await c.close();
}

afterAll(async () => {
  for (const c of [...clusters]) await finish(c);
  await removeTempDirs();
});

async function startPool(opts: { bundleDir?: string; minPeerSvn?: number } = {}): Promise<TestCluster> {
  const cluster = await TestCluster.create(await tempDir("hsmpool-node-heal-att-"), FOUNDERS, {
    spareServers: 2,
    ...opts,
  });
  clusters.push(cluster);
  for (const id of FOUNDERS) await cluster.start(id);
  return cluster;
}

async function rejectionsLoggedBy(cluster: TestCluster, id: string): Promise<LogLine[]> {
  return waitFor(`${id} to log the refused joiner`, async () => {
    const lines = await logLines(cluster, id, "peer rejected");
    return lines.length > 0 ? lines : null;
  });
}

/** The joiner exits 4 after logging one "join refused" line; returns that line. */
async function refusedJoin(cluster: TestCluster, id: string): Promise<LogLine> {
  const code = await cluster.member(id).exit;
  expect(code).toBe(4);
  const lines = await logLines(cluster, id, "join refused");
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe("attested joins (SVN 1 pool)", () => {
  let cluster: TestCluster;
  let primary: string;
  const acked = new AckedCreates();

  beforeAll(async () => {
    cluster = await startPool();
  }, 180_000);
  afterAll(() => finish(cluster));

  it("a joiner signed by another key is refused in the handshake by every member and never becomes one", async () => {
    const before = await healthyPoolOf(cluster, FOUNDERS);
    primary = before.find((s) => s.role === "primary")!.nodeId;
    await cluster.activate(primary);
    await acked.create(cluster, primary, "att-0");
    const foreign = await resignedBundle({ svn: 1, foreignSigner: true });
    await cluster.addJoiner("x1", { peers: FOUNDERS, replaces: "n3", bundleDir: foreign });
    await cluster.start("x1");

    const refused = await refusedJoin(cluster, "x1");
    expect(refused).toMatchObject({ reason: "attestation", check: "signer" });
    expect(Object.keys(refused.peers as object).sort()).toEqual(FOUNDERS);
    // It launched fine (the platform runs any correctly signed bundle)...
    expect(await cluster.log("x1")).toContain('"msg":"enclave launched"');
    // ...and every member turned its connections away in the handshake. The joiner, whose
    // own policy refuses the members' signer, usually hangs up first, so a member logs
    // "handshake" (socket hang up) or, when it got to judge the certificate, "signer".
    for (const id of FOUNDERS) {
      const rejected = await rejectionsLoggedBy(cluster, id);
      expect(rejected.every((l) => l.check === "signer" || l.check === "handshake")).toBe(true);
      expect(await logLines(cluster, id, "join requested")).toEqual([]);
    }
    // The pool is untouched: same members, nobody registered, still serving.
    const after = await healthyPoolOf(cluster, FOUNDERS);
    expect(after.find((s) => s.role === "primary")?.nodeId).toBe(primary);
    for (const id of FOUNDERS) expect(await logLines(cluster, id, "member registered")).toEqual([]);
    await acked.create(cluster, primary, "att-1");
  });

  it("a newer bundle (same signer, SVN 2, minPeerSvn 1) joins the SVN-1 pool and talks both ways", async () => {
    const victim = FOUNDERS.find((id) => id !== primary)!;
    expect(await cluster.signal(victim, "SIGKILL")).toBe(null);
    const live = FOUNDERS.filter((id) => id !== victim);
    await cluster.addJoiner("n4", { peers: live, replaces: victim, bundleDir: svn2Bundle, minPeerSvn: 1 });
    await cluster.start("n4");
    const healed = await healthyPoolOf(cluster, [...live, "n4"]);
    const n4 = healed.find((s) => s.nodeId === "n4")!;
    expect(n4).toMatchObject({ svn: 2, minPeerSvn: 1, ownership: "synced", membership: "voter" });
    expect(healed.filter((s) => s.nodeId !== "n4").every((s) => s.svn === 1)).toBe(true);
    // Both directions: old members dial n4 (Raft to it) and n4 dials them (ownership, acks).
    for (const id of live) {
      const registered = (await logLines(cluster, id, "member registered")).at(-1);
      expect(registered).toMatchObject({ memberId: "n4", svn: 2 });
    }
    expect(await acked.missingOn(cluster, "n4")).toEqual([]);
    await acked.create(cluster, healed.find((s) => s.role === "primary")!.nodeId, "att-2");
    const got = await call<{ name: string }>(cluster.keyVault("n4"), "GetKey", { name: "att-2" });
    expect(got.name).toBe("att-2");
  });
});

describe("downgrade refused (SVN 2 pools)", () => {
  it("an SVN-1 joiner is refused in the handshake by members that run SVN 2 with their own SVN as the floor", async () => {
    const cluster = await startPool({ bundleDir: svn2Bundle });
    const pool = await healthyPoolOf(cluster, FOUNDERS);
    expect(pool.every((s) => s.svn === 2 && s.minPeerSvn === 2)).toBe(true);
    // The HFC tries to slip the older bundle in, telling it to accept anything from SVN 1.
    await cluster.addJoiner("old1", { peers: FOUNDERS, replaces: "n3", minPeerSvn: 1 });
    await cluster.start("old1");

    const refused = await refusedJoin(cluster, "old1");
    expect(refused).toMatchObject({ reason: "attestation", check: "peer-closed" });
    for (const id of FOUNDERS) {
      // The joiner accepts the newer members, so each member judges its certificate: "svn".
      // (Connections the exiting joiner dropped mid-handshake show up as "handshake".)
      const rejected = await rejectionsLoggedBy(cluster, id);
      expect(rejected.some((l) => l.check === "svn")).toBe(true);
      expect(rejected.every((l) => l.check === "svn" || l.check === "handshake")).toBe(true);
      expect(await logLines(cluster, id, "join requested")).toEqual([]);
      expect(await logLines(cluster, id, "member registered")).toEqual([]);
    }
    await healthyPoolOf(cluster, FOUNDERS);
    await finish(cluster);
  });

  it("an SVN-1 joiner that the members' TLS policy admits (minPeerSvn 1, left from a rolling update) is refused by the primary", async () => {
    const cluster = await startPool({ bundleDir: svn2Bundle, minPeerSvn: 1 });
    const pool = await healthyPoolOf(cluster, FOUNDERS);
    expect(pool.every((s) => s.svn === 2 && s.minPeerSvn === 1)).toBe(true);
    await cluster.addJoiner("old2", { peers: FOUNDERS, replaces: "n3", minPeerSvn: 1 });
    await cluster.start("old2");

    const refused = await refusedJoin(cluster, "old2");
    expect(refused).toMatchObject({ reason: "pool", code: "Forbidden" });
    expect(String(refused.error)).toMatch(/downgrade refused: old2 runs SVN 1, below SVN 2/);
    for (const id of FOUNDERS) expect(await logLines(cluster, id, "member registered")).toEqual([]);
    await healthyPoolOf(cluster, FOUNDERS);
    await finish(cluster);
  });
});
