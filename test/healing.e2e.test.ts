/**
 * Process e2e for confidential service healing by restart in place: real `hsmpool
 * up`, real HFC and node processes on loopback, real SIGKILLs. Each test starts its
 * own pool and tears it down. Waits are conditions with generous deadlines.
 */
import { createPublicKey, type JsonWebKey, verify as verifyLocally } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { issueClientIdentity, PoolClient } from "@hsmpool/client";
import { isHsmPoolError } from "@hsmpool/errors";
import { poolResourceUri } from "@hsmpool/pool";
import { type PoolStatus, readHfcInfo } from "@hsmpool/wire";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  healedAndHealthy,
  logsTail,
  startTestPool,
  type TestPool,
  Writer,
  waitForHealed,
} from "./support/healing-harness.js";
import { ensureSignedNodeBundle, waitFor } from "./support/pool-harness.js";

let pool: TestPool | undefined;
beforeAll(() => ensureSignedNodeBundle());
afterEach(async () => {
  await pool?.close();
  pool = undefined;
}, 120_000);

const message = Buffer.from("signed after healing");

/** A client that talks to one member only (no redirects), to prove that member serves. */
async function clientFor(p: TestPool, dataAddress: string): Promise<PoolClient> {
  return new PoolClient({
    tls: await issueClientIdentity(p.hfc),
    resource: poolResourceUri((await p.hfc.status()).poolId),
    endpoints: [dataAddress],
    primaryAddress: dataAddress,
    retry: { maxAttempts: 20, totalTimeoutMs: 30_000 },
  });
}

function pidOf(s: PoolStatus, id: string): number {
  return s.members.find((m) => m.id === id)?.pid ?? 0;
}

describe("healing by restart in place (real processes)", () => {
  it("kill the primary, a secondary and a random member ten times in a row: three healthy synced members every time, nothing acknowledged lost, an old key signs on the newest member", async () => {
    pool = await startTestPool("hsmpool-e2e-heal-kills-");
    const p = pool;
    const old = await p.client.createKey({ name: "before-kills", kty: "EC", crv: "P-256" });
    const writer = new Writer(p.client, "kills");
    await waitFor("writes before the first kill", () => (writer.acked.length >= 3 ? true : undefined));
    let newest = "";
    for (let round = 0; round < 10; round++) {
      const before = await p.hfc.status();
      expect(healedAndHealthy(before)).toBe(true);
      const kind = (["primary", "secondary", "random"] as const)[round % 3] ?? "random";
      const random = before.members[Math.floor(Math.random() * before.members.length)]?.id ?? "n1";
      const target = kind === "random" ? random : kind;
      const killed = await p.run("kill", target);
      expect(killed.code, killed.stderr).toBe(0);
      const [, victim, pid] = /^sent SIGKILL to (n\d+) \(pid (\d+)\)/.exec(killed.stdout) ?? [];
      expect(victim, killed.stdout).toBeDefined();
      if (kind === "primary") expect(victim).toBe(before.primary);
      const healed = await waitFor(
        `${victim} (round ${round + 1}, ${kind}) to be restarted in place and the pool healthy`,
        async () => {
          const s = await p.hfc.status(2000);
          const restarted = pidOf(s, victim as string) !== Number(pid);
          return restarted && healedAndHealthy(s) ? s : undefined;
        },
        90_000,
      ).catch(async (e: Error) => {
        throw new Error(`${e.message}\n${await logsTail(p.dirs)}`);
      });
      const record = healed.healing.findLast((h) => h.memberId === victim && h.kind === "restart");
      expect(record?.phases.map((x) => x.phase)).toEqual(["detected", "launching", "catching_up", "ready"]);
      expect(healed.members.map((m) => m.id).sort()).toEqual(before.members.map((m) => m.id).sort());
      newest = victim as string;
    }
    // The CLI agrees, in the shape scripts read.
    const json = JSON.parse((await p.run("status", "--json")).stdout) as {
      state: string;
      primary: string | null;
    };
    expect(json).toMatchObject({ state: "healthy" });
    expect(json.primary).toMatch(/^n[123]$/);

    await waitFor("writes after the last kill", () => (writer.acked.length >= 20 ? true : undefined), 60_000);
    await writer.stop();
    const present = new Set((await p.client.listKeys()).map((k) => k.name));
    expect(writer.acked.filter((n) => !present.has(n))).toEqual([]);
    expect(present.has("before-kills")).toBe(true);

    const status = await p.hfc.status();
    const member = status.members.find((m) => m.id === newest);
    const direct = await clientFor(p, member?.dataAddress ?? "");
    try {
      const sig = await direct.sign({ name: "before-kills", alg: "ES256", data: message });
      expect(sig.servedBy).toBe(newest);
      const key = createPublicKey({ key: old.publicJwk as JsonWebKey, format: "jwk" });
      expect(verifyLocally("sha256", message, { key, dsaEncoding: "ieee-p1363" }, sig.signature)).toBe(true);
    } finally {
      direct.close();
    }
  }, 240_000);

  it("two members killed at once: writes fail with a clear no-quorum error, then the HFC restarts them in place and service resumes with nothing lost", async () => {
    pool = await startTestPool("hsmpool-e2e-heal-quorum-");
    const p = pool;
    for (let i = 0; i < 5; i++) await p.client.createKey({ name: `kept-${i}`, kty: "EC" });
    // Paused healing keeps the pool without quorum long enough to look at it.
    expect((await p.run("healing", "pause")).stdout).toBe("healing paused\n");
    const before = await p.hfc.status();
    const secondaries = before.members.filter((m) => m.id !== before.primary);
    for (const m of secondaries) process.kill(m.pid, "SIGKILL");

    const primary = before.members.find((m) => m.id === before.primary);
    const noRetry = new PoolClient({
      tls: await issueClientIdentity(p.hfc),
      resource: poolResourceUri((await p.hfc.status()).poolId),
      endpoints: [primary?.dataAddress ?? ""],
      retry: { maxAttempts: 1 },
    });
    try {
      let attempt = 0;
      const refusal = await waitFor("a write refused for lack of quorum", async () => {
        // A refused write may still commit once quorum is back; only acknowledged ones are promised.
        const e = await noRetry.createKey({ name: `refused-${attempt++}`, kty: "EC" }).then(
          () => {
            throw new Error("a write was acknowledged without quorum");
          },
          (err: unknown) => err,
        );
        return isHsmPoolError(e, "NoQuorum") ? e : undefined;
      });
      expect(refusal.message).toMatch(/no quorum: 1 of 3 voters reachable/);
    } finally {
      noRetry.close();
    }
    const paused = await p.hfc.status();
    expect(paused.healingPaused).toBe(true);
    expect(paused.state).not.toBe("healthy");
    const open = paused.healing.filter((h) => h.phase === "detected");
    expect(open.map((h) => h.memberId).sort()).toEqual(secondaries.map((m) => m.id).sort());
    expect(open.every((h) => h.reason === "healing paused")).toBe(true);

    expect((await p.run("healing", "resume")).stdout).toBe("healing resumed\n");
    const healed = await waitForHealed(p, "both members restarted in place");
    for (const m of secondaries) expect(pidOf(healed, m.id)).not.toBe(m.pid);
    const names = new Set((await p.client.listKeys()).map((k) => k.name));
    for (let i = 0; i < 5; i++) expect(names.has(`kept-${i}`)).toBe(true);
    await p.client.createKey({ name: "after-quorum-is-back", kty: "EC" });
  }, 180_000);

  it("an HFC killed with SIGKILL in the middle of a replacement: the pool keeps serving, a restarted HFC adopts the running nodes and finishes the healing", async () => {
    pool = await startTestPool("hsmpool-e2e-heal-hfc-crash-", { racks: 4 });
    const p = pool;
    await p.client.createKey({ name: "before-crash", kty: "EC" });
    const before = await p.hfc.status();
    const lost = before.members.find((m) => m.id !== before.primary);
    if (!lost) throw new Error("no secondary");
    await p.hfc.loseServer(lost.server);
    const midway = await waitFor("the replacement to be launched", async () => {
      const s = await p.hfc.status(2000);
      const h = s.healing.find((x) => x.kind === "replace" && x.memberId === lost.id);
      // Attesting or later: the joiner's process runs and is recorded in pids.json.
      return h && ["attesting", "catching_up", "syncing_ownership"].includes(h.phase) ? s : undefined;
    });
    const hfcPid = (await readHfcInfo(p.dirs.runDir))?.pid ?? 0;
    process.kill(hfcPid, "SIGKILL");
    const record = midway.healing.find((x) => x.kind === "replace" && x.memberId === lost.id);
    const joinerId = record?.replacementId ?? "";
    expect(joinerId).toMatch(/^n\d+$/);
    expect(record?.phase).not.toBe("ready");

    // No HFC: the members still serve.
    await waitFor("the HFC to be gone", () => {
      try {
        process.kill(hfcPid, 0);
        return undefined;
      } catch {
        return true;
      }
    });
    await p.client.createKey({ name: "while-hfc-down", kty: "EC" });
    await p.client.sign({ name: "before-crash", alg: "ES256", data: message });
    const pidsBefore = JSON.parse(await readFile(join(p.dirs.runDir, "pids.json"), "utf8")) as Record<
      string,
      number
    >;

    const up = await p.run("up", "--timeout-ms", "120000");
    expect(up.code, `${up.stderr}\n${await logsTail(p.dirs)}`).toBe(0);
    await p.reconnectHfc();
    const healed = await waitForHealed(p, "the resumed replacement to finish");
    const done = healed.healing.find((h) => h.id === record?.id);
    expect(done).toMatchObject({
      kind: "replace",
      memberId: lost.id,
      replacementId: joinerId,
      phase: "ready",
    });
    expect(done?.phases[0]).toEqual(record?.phases[0]);
    // Adopted, not restarted: the survivors and the joiner keep the processes they had.
    for (const m of healed.members) expect(m.pid).toBe(pidsBefore[m.id]);
    expect(healed.members.map((m) => m.id)).toContain(joinerId);
    expect(healed.members.map((m) => m.id)).not.toContain(lost.id);
    const hfcLog = await readFile(join(p.dirs.runDir, "hfc.log"), "utf8");
    expect(hfcLog).toMatch(/adopting a node the previous HFC launched/);
    const names = new Set((await p.client.listKeys()).map((k) => k.name));
    expect(names.has("before-crash") && names.has("while-hfc-down")).toBe(true);
  }, 240_000);
});
