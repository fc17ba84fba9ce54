/**
 * Healing with real node processes on loopback (docs/healing-contract.md): a blank node in
 * join mode replaces a member lost for good (kill -9, never restarted) — it attests,
 * is registered by the primary, joins as a learner, catches up from a snapshot, is
 * promoted, the lost member is removed, and it syncs ownership and serves old keys.
 * Then the same for a lost primary, and a pool that lost two of three voters.
 */
import { createPublicKey, verify as cryptoVerify } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAndSignNode, type CallError, call, TestCluster, waitFor } from "./testing/cluster.js";
import { removeTempDirs, tempDir } from "./testing/fixtures.js";
import { AckedCreates, healthyPoolOf, logLines, statusesOf } from "./testing/heal.js";

let cluster: TestCluster;
const FOUNDERS = ["n1", "n2", "n3"];
const MESSAGE = Buffer.from("signed by the pool before a member was lost");
const acked = new AckedCreates();
let members = [...FOUNDERS];
let primary = "";
let ecKey: { name: string; publicJwkJson: string };

beforeAll(async () => {
  buildAndSignNode();
  // Compaction every few entries: a joiner must catch up from a snapshot, not only the log.
  cluster = await TestCluster.create(await tempDir("hsmpool-node-heal-"), FOUNDERS, {
    snapshotEveryEntries: 4,
    spareServers: 3,
  });
  for (const id of FOUNDERS) await cluster.start(id);
}, 120_000);

afterAll(async () => {
  if (process.env.HSMPOOL_TEST_LOGS) {
    for (const id of cluster.members.keys())
      process.stderr.write(`--- ${id}\n${(await cluster.log(id)).split("\n").slice(-60).join("\n")}\n`);
  }
  await cluster?.close();
  await removeTempDirs();
});

async function signOn(id: string): Promise<{ servedBy: string; valid: boolean }> {
  const signed = await call<{ signature: Buffer; servedBy: string }>(cluster.keyVault(id), "Sign", {
    name: ecKey.name,
    alg: "ES256",
    data: MESSAGE,
  });
  const key = createPublicKey({ key: JSON.parse(ecKey.publicJwkJson), format: "jwk" });
  const valid = cryptoVerify("sha256", MESSAGE, { key, dsaEncoding: "ieee-p1363" }, signed.signature);
  return { servedBy: signed.servedBy, valid };
}

/** The membership changes the primaries proposed, in order, across every live member's log. */
async function proposedChanges(ids: readonly string[]): Promise<string[]> {
  const lines = (
    await Promise.all(ids.map((id) => logLines(cluster, id, "membership change proposed")))
  ).flat();
  return lines
    .sort((a, b) => Number(a.time) - Number(b.time))
    .map((l) => {
      const change = l.change as { type: string; node: string };
      return `${change.type} ${change.node}`;
    });
}

const rejection = (p: Promise<unknown>): Promise<CallError> =>
  p.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (e: CallError) => e,
  );

describe("healing by replacement", () => {
  it("a blank node replacing a killed secondary becomes learner, then voter; the lost member is removed; it signs with a key made before the kill", async () => {
    const all = await healthyPoolOf(cluster, FOUNDERS);
    primary = all.find((s) => s.role === "primary")!.nodeId;
    await cluster.activate(primary);
    const victim = FOUNDERS.find((id) => id !== primary)!;
    ecKey = await call(cluster.keyVault(primary), "CreateKey", {
      name: "before-kill",
      kty: "EC",
      crv: "P-256",
      ops: ["sign", "verify"],
    });
    await acked.create(cluster, primary, "heal-a-0");

    expect(await cluster.signal(victim, "SIGKILL")).toBe(null);
    for (let i = 1; i <= 5; i++) await acked.create(cluster, primary, `heal-a-${i}`);

    const live = FOUNDERS.filter((id) => id !== victim);
    await cluster.addJoiner("n4", { peers: live, replaces: victim });
    await cluster.start("n4");
    members = [...live, "n4"];
    const healed = await healthyPoolOf(cluster, members);

    const n4 = healed.find((s) => s.nodeId === "n4")!;
    expect(n4).toMatchObject({ membership: "voter", replacing: victim, ownership: "synced" });
    expect(new Set(healed.map((s) => s.dekFingerprint)).size).toBe(1);
    expect(n4.dekFingerprint).toBe(all[0]!.dekFingerprint);
    // Only the primary knows how far behind each member is.
    const primaryView = healed.find((s) => s.role === "primary")!;
    expect(primaryView.members.map((m) => typeof m.matchLag)).toEqual(["number", "number", "number"]);
    const secondaryView = healed.find((s) => s.role !== "primary")!;
    expect(secondaryView.members.every((m) => m.matchLag === undefined || m.matchLag === null)).toBe(true);
    const steps = (await logLines(cluster, "n4", "membership")).map((l) => l.to);
    expect(steps).toEqual(["learner", "voter"]);
    expect(await cluster.log("n4")).toContain('"msg":"snapshot installed"');
    expect(await proposedChanges(live)).toEqual(["addLearner n4", "addVoter n4", `removeNode ${victim}`]);
    const registered = (await logLines(cluster, primary, "member registered")).at(-1);
    expect(registered).toMatchObject({ memberId: "n4", replaces: [victim], svn: 1 });

    expect(await signOn("n4")).toEqual({ servedBy: "n4", valid: true });
    expect(await acked.missingOn(cluster, "n4")).toEqual([]);
    // The lost member stays lost: its process was never started again.
    expect(cluster.member(victim).process).toBeNull();
  });

  it("a joiner the primary refuses for good (it names a non-member to replace) exits 4 with reason pool", async () => {
    await cluster.addJoiner("n9", { peers: members, replaces: "n7" });
    await cluster.start("n9");
    expect(await cluster.member("n9").exit).toBe(4);
    const refused = await logLines(cluster, "n9", "join refused");
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ reason: "pool", code: "Conflict" });
    expect(String(refused[0]?.error)).toMatch(/cannot replace n7: it is not a member/);
    await healthyPoolOf(cluster, members);
  });

  it("after the primary is killed the survivors elect a new one and a replacement joins through it", async () => {
    const old = primary;
    expect(await cluster.signal(old, "SIGKILL")).toBe(null);
    const survivors = members.filter((id) => id !== old);
    primary = await waitFor("a new primary among the survivors", async () => {
      const st = await statusesOf(cluster, survivors);
      return st?.find((s) => s.role === "primary" && s.ownership === "synced")?.nodeId;
    });
    await acked.create(cluster, primary, "heal-b-0");

    // Ask the secondary first: the joiner must follow its hint to the primary.
    const secondary = survivors.find((id) => id !== primary)!;
    await cluster.addJoiner("n5", { peers: [secondary, primary], replaces: old });
    await cluster.start("n5");
    members = [...survivors, "n5"];
    const healed = await healthyPoolOf(cluster, members);

    expect(healed.find((s) => s.nodeId === "n5")).toMatchObject({ membership: "voter", replacing: old });
    const accepted = await logLines(cluster, "n5", "join accepted");
    expect(accepted[0]?.by).toBe(primary);
    expect(await signOn("n5")).toEqual({ servedBy: "n5", valid: true });
    expect(await acked.missingOn(cluster, "n5")).toEqual([]);
    expect((await proposedChanges(survivors)).slice(-3)).toEqual([
      "addLearner n5",
      "addVoter n5",
      `removeNode ${old}`,
    ]);
  });

  it("with two of three voters killed, writes fail with NoQuorum naming the cause; restarted in place, the pool serves with nothing lost", async () => {
    const all = await healthyPoolOf(cluster, members);
    primary = all.find((s) => s.role === "primary")!.nodeId;
    const others = members.filter((id) => id !== primary);
    for (const id of others) expect(await cluster.signal(id, "SIGKILL")).toBe(null);

    const request = { name: "heal-no-quorum", kty: "oct", size: 256, requestId: "req-heal-no-quorum" };
    const e = await rejection(call(cluster.keyVault(primary), "CreateKey", request, 20_000));
    expect(e.metadata.get("hsmpool-error-code")[0]?.toString()).toBe("NoQuorum");
    expect(e.details).toMatch(/no quorum: 1 of 3 voters reachable/);
    for (const id of others) expect(e.details).toContain(id);

    for (const id of others) await cluster.start(id);
    const back = await healthyPoolOf(cluster, members);
    primary = back.find((s) => s.role === "primary")!.nodeId;
    const created = await call<{ version: number }>(cluster.keyVault(primary), "CreateKey", request);
    expect(created.version).toBe(1);
    acked.names.push(request.name);
    for (const id of members) expect(await acked.missingOn(cluster, id)).toEqual([]);
    // The restarted joiners came back from their own state, not through another Join.
    for (const id of others.filter((o) => !FOUNDERS.includes(o))) {
      expect((await logLines(cluster, id, "joining the pool")).length).toBe(1);
    }
  });
});
