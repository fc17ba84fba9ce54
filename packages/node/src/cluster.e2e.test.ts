/**
 * Three real node processes on loopback (spawned from the signed dist bundle, with
 * configs written here and a test CA standing in for the HFC's IssueNodeCert).
 */
import { createPublicKey, verify as cryptoVerify, randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import type { HsmPoolError } from "@hsmpool/errors";
import { BuiltInRoleIds, DataActions, poolResourceUri } from "@hsmpool/pool";
import { createCustomerKeyPair } from "@hsmpool/security-domain";
import type { NodeStatus } from "@hsmpool/wire";
import { CryptoSessionClient, poolProto } from "@hsmpool/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildAndSignNode,
  type CallError,
  call,
  type GrpcClient,
  TestCluster,
  waitFor,
} from "./testing/cluster.js";
import { removeTempDirs, tempDir } from "./testing/fixtures.js";
import { OWNERSHIP_KEY_NAMES, revealPoolSecrets } from "./testing/pool-secrets.js";
import { TestCa } from "./testing/test-ca.js";

let cluster: TestCluster;
const IDS = ["n1", "n2", "n3"];

beforeAll(async () => {
  buildAndSignNode();
  // Snapshots every few entries, so a member that was down must catch up from a snapshot.
  cluster = await TestCluster.create(await tempDir("hsmpool-node-e2e-"), IDS, { snapshotEveryEntries: 4 });
  for (const id of IDS) await cluster.start(id);
}, 120_000);

afterAll(async () => {
  if (process.env.HSMPOOL_TEST_LOGS) {
    for (const id of IDS)
      process.stderr.write(`--- ${id}\n${(await cluster.log(id)).split("\n").slice(-40).join("\n")}\n`);
  }
  await cluster?.close();
  await removeTempDirs();
});

async function statuses(): Promise<NodeStatus[] | null> {
  const all = await Promise.all(IDS.map((id) => cluster.status(id)));
  if (all.every((s) => s !== null)) return all as NodeStatus[];
  throw new Error(`no status from a member: ${String(cluster.lastStatusError)}`);
}

async function healthyPool(): Promise<NodeStatus[]> {
  return waitFor(
    "one primary and three synced members that have applied the same log",
    async () => {
      const all = await statuses();
      if (!all) return null;
      const primaries = all.filter((s) => s.role === "primary");
      const ok =
        primaries.length === 1 &&
        all.every(
          (s) =>
            s.ownership === "synced" &&
            s.primaryId === primaries[0]!.nodeId &&
            s.term === all[0]!.term &&
            s.appliedIndex === primaries[0]!.appliedIndex,
        );
      return ok ? all : null;
    },
    30_000,
  );
}

interface KeyBundle {
  name: string;
  version: number;
  kty: string;
  publicJwkJson: string;
}

const MESSAGE = Buffer.from("a message signed by the pool");

function verifiesWith(bundle: KeyBundle, alg: "ES256" | "RS256", signature: Uint8Array): boolean {
  const key = createPublicKey({ key: JSON.parse(bundle.publicJwkJson), format: "jwk" });
  return alg === "ES256"
    ? cryptoVerify("sha256", MESSAGE, { key, dsaEncoding: "ieee-p1363" }, signature)
    : cryptoVerify("sha256", MESSAGE, key, signature);
}

async function rejection(p: Promise<unknown>): Promise<CallError> {
  return p.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (e: CallError) => e,
  );
}

const trailer = (e: CallError, key: string): string | undefined => e.metadata?.get(key)[0]?.toString();

describe("three node processes", () => {
  let primary: string;
  let secondary: string;
  let ecKey: KeyBundle;

  it("elect one primary and all sync ownership with the same DEK fingerprint", async () => {
    const all = await healthyPool();
    const fingerprints = new Set(all.map((s) => s.dekFingerprint));
    expect(fingerprints.size).toBe(1);
    expect([...fingerprints][0]).toMatch(/^[0-9a-f]{64}$/);
    expect(new Set(all.map((s) => s.rackId)).size).toBe(3);
    expect(new Set(all.map((s) => s.mrenclave)).size).toBe(1);
    primary = all.find((s) => s.role === "primary")!.nodeId;
    secondary = IDS.find((id) => id !== primary)!;
  });

  it("security domain, backup and restore need their data actions: not the HFC's certificate, not a Crypto User", async () => {
    // The tenant binding commits right after Genesis: wait until the admin may read the SD status.
    const status = await waitFor(
      "the tenant binding",
      () => call<{ state: string }>(cluster.securityDomain(primary), "Status", {}).catch(() => null),
      120_000,
    );
    expect(status.state).toBe("provisioned");
    const workload = { oid: randomUUID(), name: "workload" };
    const stranger = { oid: randomUUID(), name: "stranger" };
    await call(cluster.accessControl(primary), "PutRoleAssignment", {
      assignment: {
        id: randomUUID(),
        scope: "/",
        roleDefinitionId: BuiltInRoleIds.CryptoUser,
        principalId: workload.oid,
      },
      requestId: randomUUID(),
    });
    // Valid requests: without the gate, the first would activate the pool with the intruder's shares.
    const certificatesPem = (
      await Promise.all([1, 2, 3].map((i) => createCustomerKeyPair(`intruder-${i}`)))
    ).map((p) => p.certificatePem);
    const storageUrl = "http://127.0.0.1:9/devstoreaccount1/backups?sv=2021-08-06&sig=x";
    const attempts = [
      ["Download", { certificatesPem, quorum: 2 }, DataActions.SecurityDomainDownload],
      ["Status", {}, DataActions.SecurityDomainDownloadStatus],
      ["StartBackup", { storageUrl }, DataActions.BackupStart],
      ["StartRestore", { storageUrl, folder: "mhsm-pool-test-1", keyName: "" }, DataActions.RestoreStart],
      ["StartRestore", { storageUrl, folder: "mhsm-pool-test-1", keyName: "k1" }, DataActions.RestoreStart],
    ] as const;
    for (const [method, request, action] of attempts) {
      const anonymous = await rejection(
        call(cluster.securityDomain(primary, { withToken: false }), method, request),
      );
      expect(anonymous.code, method).toBe(grpc.status.UNAUTHENTICATED);
      expect(trailer(anonymous, "hsmpool-error-code")).toBe("Unauthenticated");
      for (const principal of [workload, stranger]) {
        const e = await rejection(call(cluster.securityDomain(primary, { principal }), method, request));
        expect(e.code, `${method} by ${principal.name}`).toBe(grpc.status.PERMISSION_DENIED);
        expect(trailer(e, "hsmpool-error-code")).toBe("Forbidden");
        expect(e.details).toContain(action);
      }
    }
    // The recovery exchange is refused too (and would be, as a Conflict, to the admin: not a recovering pool).
    for (const [method, request] of [
      ["InitRecovery", {}],
      ["Upload", { uploadBlobJson: "{}" }],
    ] as const) {
      const e = await rejection(
        call(cluster.securityDomain(primary, { principal: workload }), method, request),
      );
      expect(trailer(e, "hsmpool-error-code"), method).toBe("Forbidden");
    }
    const after = await call<{ state: string }>(cluster.securityDomain(primary), "Status", {});
    expect(after.state).toBe("provisioned");
  });

  it("refuses key operations until the security domain is downloaded, then activates once", async () => {
    const refused = await rejection(
      call(cluster.keyVault(primary), "CreateKey", { name: "too-early", kty: "EC", crv: "P-256" }),
    );
    expect(trailer(refused, "hsmpool-error-code")).toBe("NotActivated");
    expect(refused.details).toMatch(/download the security domain first/);
    const sd = await cluster.activate(primary);
    expect(JSON.parse(sd.securityDomainJson)).toMatchObject({ format: "hsmpool-security-domain", quorum: 2 });
    const again = await rejection(cluster.activate(primary));
    expect(trailer(again, "hsmpool-error-code")).toBe("Conflict");
    expect(again.details).toMatch(/already downloaded/);
  });

  it("creates a key on the primary and signs with it on a secondary", async () => {
    ecKey = await call<KeyBundle>(cluster.keyVault(primary), "CreateKey", {
      name: "e2e-ec",
      kty: "EC",
      crv: "P-256",
      ops: ["sign", "verify"],
    });
    expect(ecKey).toMatchObject({ name: "e2e-ec", version: 1, kty: "EC" });
    expect(Object.keys(JSON.parse(ecKey.publicJwkJson)).sort()).toEqual(["crv", "kty", "x", "y"]);
    const signed = await call<{ signature: Buffer; servedBy: string }>(cluster.keyVault(secondary), "Sign", {
      name: "e2e-ec",
      alg: "ES256",
      data: MESSAGE,
    });
    expect(signed.servedBy).toBe(secondary);
    expect(verifiesWith(ecKey, "ES256", signed.signature)).toBe(true);
  });

  it("a crypto session authorises and audits every message on its own: a new role assignment and the token's expiry apply mid-stream", async () => {
    const audience = poolResourceUri(cluster.member(secondary).config.poolId);
    const sessionOf = (token: string) => {
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${token}`);
      return new CryptoSessionClient(cluster.keyVault(secondary, { withToken: false }), metadata, secondary);
    };
    const signOn = (
      session: CryptoSessionClient,
    ): Promise<{ ok?: { signature: Buffer; servedBy: string }; refused?: HsmPoolError }> =>
      session
        .call<{ signature: Buffer; servedBy: string }>(
          "Sign",
          { name: "e2e-ec", alg: "ES256", data: MESSAGE },
          30_000,
        )
        .then(
          (r) => ({ ok: r }),
          (e: HsmPoolError) => ({ refused: e }),
        );
    // RBAC: refused until an assignment grants Crypto User, then served on the same stream.
    const stranger = { oid: randomUUID(), name: "session-stranger" };
    const strangers = sessionOf(await cluster.tenant.token(audience, stranger));
    const first = await signOn(strangers);
    expect(first.refused?.code).toBe("Forbidden");
    await call(cluster.accessControl(primary), "PutRoleAssignment", {
      assignment: {
        id: randomUUID(),
        scope: "/",
        roleDefinitionId: BuiltInRoleIds.CryptoUser,
        principalId: stranger.oid,
      },
      requestId: randomUUID(),
    });
    const served = await waitFor(
      "the assignment applied on the secondary",
      async () => (await signOn(strangers)).ok ?? null,
      60_000,
    );
    expect(served.servedBy).toBe(secondary);
    expect(verifiesWith(ecKey, "ES256", served.signature)).toBe(true);
    // Expiry: the admin's token expired 40 s ago, within the nodes' 60 s skew: served now, refused ~20 s later.
    const admins = sessionOf(await cluster.tenant.token(audience, undefined, -40));
    expect((await signOn(admins)).ok?.servedBy).toBe(secondary);
    const expired = await waitFor(
      "the token's expiry",
      async () => (await signOn(admins)).refused ?? null,
      60_000,
    );
    expect([expired.code, expired.message]).toEqual([
      "Unauthenticated",
      "bearer token refused: it has expired",
    ]);
    expect(admins.usable && strangers.usable).toBe(true); // refusals are answers: the streams go on
    // Each message left its own audit record on the member that served it.
    const audit = await call<{ records: string[] }>(cluster.accessControl(secondary), "ReadAudit", {
      afterSeq: 0,
      max: 1000,
    });
    const signs = audit.records
      .map(
        (line) => JSON.parse(line) as { operation: string; key: string; principalId: string; result: string },
      )
      .filter((r) => r.operation === "Sign" && r.key === "e2e-ec");
    const strangerResults = signs.filter((r) => r.principalId === stranger.oid).map((r) => r.result);
    expect(strangerResults[0]).toBe("Forbidden");
    expect(strangerResults.at(-1)).toBe("OK");
    expect(signs.at(-1)).toMatchObject({ principalId: "", result: "Unauthenticated" });
    admins.end();
    strangers.end();
  });

  it("refuses a write on a secondary with NotLeader naming the primary and its address", async () => {
    const e = await rejection(
      call(cluster.keyVault(secondary), "CreateKey", { name: "e2e-wrong-node", kty: "EC", crv: "P-256" }),
    );
    expect(trailer(e, "hsmpool-error-code")).toBe("NotLeader");
    expect(trailer(e, "hsmpool-leader")).toBe(primary);
    expect(trailer(e, "hsmpool-leader-addr")).toBe(cluster.member(primary).config.dataListen);
    const bad = await rejection(
      call(cluster.keyVault(primary), "CreateKey", { name: "e2e bad name", kty: "EC", crv: "P-256" }),
    );
    expect(trailer(bad, "hsmpool-error-code")).toBe("BadParameter");
    const missing = await rejection(
      call(cluster.keyVault(secondary), "Sign", { name: "nope", alg: "ES256", data: MESSAGE }),
    );
    expect(trailer(missing, "hsmpool-error-code")).toBe("KeyNotFound");
  });

  it("the data plane refuses clients without a certificate from the fabric CA", async () => {
    const address = cluster.member(primary).config.dataListen;
    const NodeControlClient = poolProto().NodeControl.ctor;
    const foreign = await (await TestCa.create()).clientCredentials("intruder");
    const attempts = [
      grpc.credentials.createSsl(Buffer.from(cluster.ca.certPem)),
      grpc.credentials.createSsl(
        Buffer.from(cluster.ca.certPem),
        Buffer.from(foreign.keyPem),
        Buffer.from(foreign.certPem),
      ),
    ];
    for (const creds of attempts) {
      const client = new NodeControlClient(address, creds, {
        "grpc.ssl_target_name_override": "localhost",
      }) as unknown as GrpcClient;
      const e = await rejection(call(client, "Status", {}, 3_000));
      // TLS 1.3 refuses a client certificate after the client has finished its side of the handshake:
      // grpc-js reports the closed connection as UNAVAILABLE, or as INTERNAL when the HTTP/2 session
      // had already started (seen on a loaded machine). Either way nothing was answered.
      expect([grpc.status.UNAVAILABLE, grpc.status.INTERNAL], `${e.code} ${e.details}`).toContain(e.code);
      client.close();
    }
    expect((await cluster.status(primary))?.nodeId).toBe(primary);
  });

  it("a secondary killed with SIGKILL restarts from its sealed WAL, rejoins and serves old and new keys", async () => {
    const victim = secondary;
    const before = (await cluster.status(victim))!;
    expect(await cluster.signal(victim, "SIGKILL")).toBe(null);
    const rsaKey = await call<KeyBundle>(cluster.keyVault(primary), "CreateKey", {
      name: "e2e-rsa",
      kty: "RSA",
      size: 2048,
      ops: ["sign", "verify"],
    });
    // Enough entries for the primary to compact past the victim's log: it must install a snapshot.
    for (let i = 0; i < 4; i++) {
      await call(cluster.keyVault(primary), "CreateKey", { name: `e2e-aes-${i}`, kty: "oct", size: 256 });
    }
    await cluster.start(victim);
    const all = await healthyPool();
    const after = all.find((s) => s.nodeId === victim)!;
    expect(after.dekFingerprint).toBe(before.dekFingerprint);
    expect(after.keyCount).toBe(6);
    const log = await cluster.log(victim);
    const recovered = log
      .split("\n")
      .filter((l) => l.includes('"msg":"state recovered"'))
      .map((l) => JSON.parse(l) as { restarted: boolean; sealedWithPoolKey: boolean; lastIndex: number });
    expect(recovered).toHaveLength(2);
    expect(recovered[1]).toMatchObject({ restarted: true, sealedWithPoolKey: true });
    expect(recovered[1]!.lastIndex).toBeGreaterThan(1);
    expect(log).toContain('"msg":"snapshot installed"');
    for (const [bundle, alg] of [
      [ecKey, "ES256"],
      [rsaKey, "RS256"],
    ] as const) {
      const signed = await call<{ signature: Buffer; servedBy: string }>(cluster.keyVault(victim), "Sign", {
        name: bundle.name,
        alg,
        data: MESSAGE,
      });
      expect(signed.servedBy).toBe(victim);
      expect(verifiesWith(bundle, alg, signed.signature)).toBe(true);
    }
  });

  it("deletes a key on every member", async () => {
    const deleted = await call<{ name: string }>(cluster.keyVault(primary), "DeleteKey", {
      name: "e2e-aes-0",
    });
    expect(deleted.name).toBe("e2e-aes-0");
    const e = await rejection(call(cluster.keyVault(secondary), "GetKey", { name: "e2e-aes-0" }));
    expect(trailer(e, "hsmpool-error-code")).toBe("KeyNotFound");
    const listed = await call<{ keys: KeyBundle[] }>(cluster.keyVault(secondary), "ListKeys", {});
    expect(listed.keys.map((k) => k.name)).toEqual([
      "e2e-aes-1",
      "e2e-aes-2",
      "e2e-aes-3",
      "e2e-ec",
      "e2e-rsa",
    ]);
  });

  it("a purge, restore or recover retried with the requestId of an attempt that applied gets that attempt's answer", async () => {
    // The SDK retries a write whose answer was lost with the same requestId. Each pre-check
    // would read the state the first attempt changed (no deleted key to purge, the restored
    // key already there) and refuse a write that took effect.
    const kv = () => cluster.keyVault(primary);
    const name = "e2e-retried";
    await call(kv(), "CreateKey", { name, kty: "EC", crv: "P-256" });
    const backup = await call<{ value: Buffer }>(kv(), "BackupKey", { name });
    await call(kv(), "DeleteKey", { name, requestId: randomUUID() });
    const purge = { name, requestId: "e2e-retried-purge" };
    for (const attempt of [1, 2])
      expect((await call<{ name: string }>(kv(), "PurgeDeletedKey", purge)).name, `purge ${attempt}`).toBe(
        name,
      );
    const restore = { value: backup.value, requestId: "e2e-retried-restore" };
    for (const attempt of [1, 2])
      expect(await call<KeyBundle>(kv(), "RestoreKey", restore), `restore ${attempt}`).toMatchObject({
        name,
        version: 1,
      });
    await call(kv(), "DeleteKey", { name, requestId: randomUUID() });
    const recover = { name, requestId: "e2e-retried-recover" };
    for (const attempt of [1, 2])
      expect(await call<KeyBundle>(kv(), "RecoverDeletedKey", recover), `recover ${attempt}`).toMatchObject({
        name,
      });
    await call(kv(), "DeleteKey", { name, requestId: randomUUID() });
    await call(kv(), "PurgeDeletedKey", { name, requestId: randomUUID() });
  });

  it("after the primary is killed the survivors elect a new one that serves old keys and takes writes", async () => {
    const old = primary;
    expect(await cluster.signal(old, "SIGKILL")).toBe(null);
    const survivors = IDS.filter((id) => id !== old);
    primary = await waitFor("a new primary", async () => {
      const st = await Promise.all(survivors.map((id) => cluster.status(id)));
      return st.find((s) => s?.role === "primary" && s.ownership === "synced")?.nodeId;
    });
    secondary = survivors.find((id) => id !== primary)!;
    await call(cluster.keyVault(primary), "CreateKey", {
      name: "e2e-after-failover",
      kty: "EC",
      crv: "P-256",
    });
    const signed = await call<{ signature: Buffer }>(cluster.keyVault(primary), "Sign", {
      name: "e2e-ec",
      alg: "ES256",
      data: MESSAGE,
    });
    expect(verifiesWith(ecKey, "ES256", signed.signature)).toBe(true);
    await cluster.start(old);
    const all = await healthyPool();
    expect(all.find((s) => s.nodeId === old)?.role).toBe("secondary");
  });

  it("a write without quorum fails with NoQuorum; retried with its requestId later it is created exactly once", async () => {
    const others = IDS.filter((id) => id !== primary);
    for (const id of others) await cluster.signal(id, "SIGKILL");
    const request = { name: "e2e-no-quorum", kty: "EC", crv: "P-256", requestId: "e2e-request-1" };
    const e = await rejection(call(cluster.keyVault(primary), "CreateKey", request, 20_000));
    expect(trailer(e, "hsmpool-error-code")).toBe("NoQuorum");
    for (const id of others) await cluster.start(id);
    const all = await healthyPool();
    primary = all.find((s) => s.role === "primary")!.nodeId;
    secondary = IDS.find((id) => id !== primary)!;
    const created = await call<KeyBundle>(cluster.keyVault(primary), "CreateKey", request);
    expect(created.version).toBe(1);
    const again = await call<KeyBundle>(cluster.keyVault(primary), "CreateKey", request);
    expect(again.version).toBe(1);
    const got = await call<KeyBundle>(cluster.keyVault(secondary), "GetKey", { name: "e2e-no-quorum" });
    expect(got.version).toBe(1);
    expect(got.publicJwkJson).toBe(created.publicJwkJson);
  });

  it("SIGTERM stops a node gracefully with exit code 0, and it comes back", async () => {
    expect(await cluster.signal(secondary, "SIGTERM")).toBe(0);
    expect(await cluster.log(secondary)).toContain('"msg":"stopped"');
    await cluster.start(secondary);
    await healthyPool();
  });

  it("leaves no partition credential, DEK, pool key or private key in any file or log under the run dir", async () => {
    for (const id of IDS) expect(await cluster.signal(id, "SIGTERM")).toBe(0);
    const secrets = await revealPoolSecrets(cluster, IDS);
    for (const id of IDS)
      for (const name of OWNERSHIP_KEY_NAMES)
        expect(secrets.some((s) => s.what === `${id} ${name}`)).toBe(true);
    const files = (await readdir(cluster.runDir, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name));
    expect(files.some((f) => f.endsWith("node.log"))).toBe(true);
    expect(files.some((f) => f.endsWith("wal.log"))).toBe(true);
    const leaks: string[] = [];
    for (const file of files) {
      const content = await readFile(file);
      const text = content.toString("latin1");
      if (/PRIVATE KEY-----/.test(text)) leaks.push(`${file}: PEM private key`);
      for (const s of secrets) {
        const b = Buffer.from(s.bytes);
        const forms = [b.toString("hex"), b.toString("base64"), b.toString("base64url")];
        if (content.includes(b) || forms.some((f) => text.includes(f))) leaks.push(`${file}: ${s.what}`);
      }
    }
    expect(secrets.length).toBeGreaterThanOrEqual(IDS.length * 5);
    expect(leaks).toEqual([]);
  });
});
