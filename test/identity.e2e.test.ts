/**
 * Key sovereignty on a real pool (one pool, bound to a tenant with alice as its only
 * Administrator): the operator's certificate alone is refused on every member; tokens
 * that are expired, foreign or for another pool are refused; local RBAC (built-in and
 * custom roles, scopes) decides; the last Administrator cannot be removed; roles survive
 * a primary kill and reach the replacement the HFC heals in; tampering with one audit
 * record makes `audit verify` fail naming it.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  issueClientIdentity,
  mintToken,
  PoolClient,
  TenantDirectory,
  TenantDirectoryCredential,
  type TokenCredential,
} from "@hsmpool/client";
import { isHsmPoolError } from "@hsmpool/errors";
import { BuiltInRoleIds, DataActions, poolResourceUri } from "@hsmpool/pool";
import { FabricControllerClient, type PoolStatus, readHfcInfo } from "@hsmpool/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { healedAndHealthy, logsTail } from "./support/healing-harness.js";
import {
  cli,
  type PoolDirs,
  removeDirs,
  stopEverything,
  tempPoolDirs,
  waitFor,
} from "./support/pool-harness.js";

let dirs: PoolDirs;
let tenantDir: string;
let hfc: FabricControllerClient;
let status: PoolStatus;
const clients: PoolClient[] = [];

const as = async (name: string, tenant = tenantDir): Promise<PoolClient> => {
  const c = await PoolClient.connect({
    runDir: dirs.runDir,
    credential: new TenantDirectoryCredential(tenant, name),
    retry: { totalTimeoutMs: 60_000 },
  });
  clients.push(c);
  return c;
};

/** A client that talks to one member only, as `credential`. */
async function direct(address: string, credential: TokenCredential): Promise<PoolClient> {
  const c = new PoolClient({
    tls: await issueClientIdentity(hfc),
    credential,
    resource: poolResourceUri(status.poolId),
    endpoints: [address],
    primaryAddress: address,
    retry: { maxAttempts: 1 },
  });
  clients.push(c);
  return c;
}

const run = (args: string[], principal = "alice") =>
  cli([...args, "--run-dir", dirs.runDir], {
    env: { HSMPOOL_TENANT: tenantDir, HSMPOOL_PRINCIPAL: principal },
    timeoutMs: 120_000,
  });

async function refusal(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(isHsmPoolError(e), `accepted: ${String(e)}`).toBe(true);
  return (e as { code: string }).code;
}

const data = Buffer.from("sovereign");

beforeAll(async () => {
  dirs = await tempPoolDirs("hsmpool-identity-");
  tenantDir = join(dirs.root, "tenant");
  const t = await TenantDirectory.init(tenantDir, ["alice", "bob", "carol", "dave"]);
  expect(t.listPrincipals()).toHaveLength(4);
  // A fourth rack, so a lost server's member can be replaced.
  const init = await cli(["fabric", "init", "--dir", dirs.fabricDir, "--racks", "4"]);
  if (init.code !== 0) throw new Error(`fabric init failed:\n${init.stderr}`);
  const up = await cli(
    [
      "up",
      "--run-dir",
      dirs.runDir,
      "--fabric-dir",
      dirs.fabricDir,
      "--tenant",
      tenantDir,
      "--admin",
      "alice",
    ],
    { timeoutMs: 180_000 },
  );
  if (up.code !== 0) throw new Error(`hsmpool up failed:\n${up.stderr}\n${await logsTail(dirs)}`);
  expect(up.stderr).toMatch(/alice holds Managed HSM Administrator at \/ and nothing else/);
  hfc = new FabricControllerClient((await readHfcInfo(dirs.runDir))?.controlAddress ?? "");
  status = await hfc.status();
  const alice = await as("alice");
  const bob = (await TenantDirectory.open(tenantDir)).principal("bob");
  await alice.putRoleAssignment({
    id: crypto.randomUUID(),
    scope: "/",
    roleDefinitionId: BuiltInRoleIds.CryptoUser,
    principalId: bob.oid,
  });
  await (await as("bob")).createKey({ name: "sov-k1", kty: "EC", crv: "P-256" });
}, 300_000);

afterAll(async () => {
  for (const c of clients) c.close();
  hfc?.close();
  await stopEverything(dirs);
  await removeDirs(dirs);
}, 120_000);

describe("identity and local RBAC on a real pool", () => {
  it("exactly alice is Administrator at / after creation; she may not use keys", async () => {
    const alice = await as("alice");
    const assignments = await alice.listRoleAssignments();
    const admins = assignments.filter((a) => a.roleDefinitionId === BuiltInRoleIds.Administrator);
    const aliceOid = (await TenantDirectory.open(tenantDir)).principal("alice").oid;
    expect(admins.map((a) => [a.principalId, a.scope])).toEqual([[aliceOid, "/"]]);
    expect(await refusal(alice.createKey({ name: "alice-key", kty: "EC" }))).toBe("Forbidden");
    expect(await refusal(alice.sign({ name: "sov-k1", alg: "ES256", data }))).toBe("Forbidden");
  });

  it("operator drill: the HFC-issued certificate with no token is refused on every member", async () => {
    const noToken: TokenCredential = {
      getToken: async () => ({ token: "", expiresOnTimestamp: Date.now() + 60_000 }),
    };
    const blank = { getToken: async () => null };
    for (const m of status.members) {
      for (const credential of [noToken, blank as unknown as TokenCredential]) {
        const c = await direct(m.dataAddress, credential);
        // All four at once, each refusal taken as it comes (one may settle while another is awaited).
        const refusals = [
          c.sign({ name: "sov-k1", alg: "ES256", data }),
          c.listKeys(),
          c.createKey({ name: "operator-key", kty: "EC" }),
          c.listRoleAssignments(),
        ].map(refusal);
        for (const code of await Promise.all(refusals)) expect(code).toBe("Unauthenticated");
      }
    }
  }, 120_000);

  it("expired, foreign-tenant and other-pool tokens are refused on every member", async () => {
    const foreignDir = join(dirs.root, "foreign");
    const foreign = await TenantDirectory.init(foreignDir, ["bob"]);
    const tenant = await TenantDirectory.open(tenantDir);
    const resource = poolResourceUri(status.poolId);
    const tokens = {
      expired: await mintToken(tenant, "bob", resource, { nowMs: Date.now() - 3_600_000 }),
      foreign: await mintToken(foreign, "bob", resource),
      otherPool: await mintToken(tenant, "bob", poolResourceUri("pool-elsewhere")),
    };
    for (const m of status.members) {
      for (const [why, token] of Object.entries(tokens)) {
        const c = await direct(m.dataAddress, { getToken: async () => token });
        expect(await refusal(c.sign({ name: "sov-k1", alg: "ES256", data })), `${why} at ${m.id}`).toBe(
          "Unauthenticated",
        );
      }
    }
  }, 120_000);

  it("RBAC decides: no role is Forbidden, a Crypto User may not grant roles, scopes and custom roles apply", async () => {
    const carol = await as("carol");
    expect(await refusal(carol.sign({ name: "sov-k1", alg: "ES256", data }))).toBe("Forbidden");
    const tenant = await TenantDirectory.open(tenantDir);
    const bob = await as("bob");
    expect(
      await refusal(
        bob.putRoleAssignment({
          id: crypto.randomUUID(),
          scope: "/",
          roleDefinitionId: BuiltInRoleIds.CryptoUser,
          principalId: tenant.principal("carol").oid,
        }),
      ),
    ).toBe("Forbidden");
    await bob.createKey({ name: "sov-k2", kty: "EC" });

    // dave: a custom "verifier" role (sign subtracted) on one key only.
    const alice = await as("alice");
    const roleId = crypto.randomUUID();
    await alice.putRoleDefinition({
      id: roleId,
      roleName: "Sovereign Verifier",
      description: "verify but never sign",
      roleType: "CustomRole",
      assignableScopes: ["/"],
      permissions: [
        {
          actions: [],
          notActions: [],
          dataActions: [DataActions.KeysSign, DataActions.KeysVerify, DataActions.KeysRead],
          notDataActions: [DataActions.KeysSign],
        },
      ],
    });
    await alice.putRoleAssignment({
      id: crypto.randomUUID(),
      scope: "/keys/sov-k1",
      roleDefinitionId: roleId,
      principalId: tenant.principal("dave").oid,
    });
    const dave = await as("dave");
    const signature = (await bob.sign({ name: "sov-k1", alg: "ES256", data })).signature;
    expect(await dave.verify({ name: "sov-k1", alg: "ES256", data, signature })).toBe(true);
    expect(await refusal(dave.sign({ name: "sov-k1", alg: "ES256", data }))).toBe("Forbidden");
    expect(await refusal(dave.verify({ name: "sov-k2", alg: "ES256", data, signature }))).toBe("Forbidden");
    expect(await refusal(alice.deleteRoleDefinition(roleId))).toBe("Conflict");
  }, 120_000);

  it("the last Administrator assignment at / cannot be deleted", async () => {
    const alice = await as("alice");
    const admin = (await alice.listRoleAssignments("/")).find(
      (a) => a.roleDefinitionId === BuiltInRoleIds.Administrator,
    );
    expect(admin).toBeDefined();
    expect(await refusal(alice.deleteRoleAssignment(admin?.id ?? ""))).toBe("Forbidden");
    const r = await run([
      "role",
      "assignment",
      "delete",
      "--role",
      "Managed HSM Administrator",
      "--assignee",
      "alice",
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/last Managed HSM Administrator/);
    expect((await alice.listRoleAssignments("/")).some((a) => a.id === admin?.id)).toBe(true);
  });

  it("audit: records name who did what, hold no token, verify, and a tampered record is named", async () => {
    const listed = await run(["audit", "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    const records = JSON.parse(listed.stdout) as {
      principal: string;
      operation: string;
      result: string;
      key: string;
    }[];
    expect(records.some((r) => r.principal === "bob" && r.operation === "Sign" && r.result === "OK")).toBe(
      true,
    );
    expect(records.some((r) => r.principal === "carol" && r.result === "Forbidden")).toBe(true);
    expect(records.some((r) => r.principal === "" && r.result === "Unauthenticated")).toBe(true);
    expect(listed.stdout).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
    expect((await run(["audit", "--json"], "carol")).stderr).toMatch(/Forbidden/);

    const ok = await run(["audit", "verify"]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    // The host edits one record of one member's log (the file is the host's; the MAC key is not).
    let victim = "";
    let seq = 0;
    for (const m of status.members) {
      const path = join(dirs.runDir, "nodes", m.id, "state", "audit.log");
      const lines = (await readFile(path, "utf8")).split("\n");
      const target = lines.findIndex((l) => l.includes('"result":"Forbidden"'));
      if (target < 0) continue;
      victim = m.id;
      seq = (JSON.parse(lines[target] ?? "{}") as { seq: number }).seq;
      lines[target] = (lines[target] ?? "").replace('"result":"Forbidden"', '"result":"OK"');
      await writeFile(path, lines.join("\n"));
      break;
    }
    expect(victim, "no member logged a Forbidden request").not.toBe("");
    const bad = await run(["audit", "verify"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toContain(`${victim}: FAILED at record ${seq}`);
  }, 120_000);

  it("roles survive a primary kill and reach the member the HFC heals in", async () => {
    const tenant = await TenantDirectory.open(tenantDir);
    const resource = poolResourceUri(status.poolId);
    const token = (name: string): TokenCredential => ({ getToken: () => mintToken(tenant, name, resource) });
    const healthy = (what: string, check: (s: PoolStatus) => boolean) =>
      waitFor(
        what,
        async () => {
          const s = await hfc.status(2000).catch(() => undefined);
          return s && healedAndHealthy(s) && check(s) ? s : undefined;
        },
        240_000,
      );

    // Failover: the primary is killed; the survivors elect a new one; roles are in the log.
    const killed = await run(["kill", "primary"]);
    expect(killed.code, killed.stderr).toBe(0);
    await healthy("the pool healthy after the primary kill", () => true);
    const bob = await as("bob");
    expect((await bob.sign({ name: "sov-k1", alg: "ES256", data })).signature.length).toBeGreaterThan(0);
    expect(await refusal((await as("carol")).sign({ name: "sov-k1", alg: "ES256", data }))).toBe("Forbidden");

    // Healing by replacement: a blank member joins and learns roles from the log or a snapshot.
    const before = await hfc.status();
    const victim = before.members.find((m) => m.id === before.primary);
    const lost = await run(["kill", "--server", victim?.server ?? ""]);
    expect(lost.code, lost.stderr).toBe(0);
    const healed = await healthy("a replacement member ready", (s) =>
      s.members.some((m) => !before.members.some((b) => b.id === m.id)),
    );
    const replacement = healed.members.find((m) => !before.members.some((b) => b.id === m.id));
    const address = replacement?.dataAddress ?? "";
    const bobThere = await direct(address, token("bob"));
    const signed = await waitFor(
      "the replacement serves bob",
      () => bobThere.sign({ name: "sov-k1", alg: "ES256", data }).catch(() => undefined),
      60_000,
    );
    expect(signed.servedBy).toBe(replacement?.id);
    for (const who of ["carol", "dave", "alice"]) {
      const c = await direct(address, token(who));
      expect(await refusal(c.sign({ name: "sov-k1", alg: "ES256", data })), who).toBe("Forbidden");
    }
  }, 600_000);
});
