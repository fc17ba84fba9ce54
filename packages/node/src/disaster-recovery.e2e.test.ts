/**
 * Disaster recovery with real node processes and a real Azurite (the `hsmpool storage up`
 * the customer uses): an activated pool with keys (versions, a soft-deleted one) backs up
 * to blob storage; a backup whose primary is SIGKILLed mid-job is never read as good;
 * the whole region is lost; a blank pool in recovery mode takes the old identity from the
 * SD (a quorum of the customer's RSA keys) and the customer's tenant from it, not the one
 * in its launch config; the restore brings every key back with the same public keys, old
 * signatures verify and the keys sign again. Last, a leak scan: none of the pool's secrets
 * (HSM keys, DEK, pool key, SD domain key, secret, shares, derived keys) in any blob, the
 * SD file, the upload blob or the recovered pool's files.
 */
import { execFileSync } from "node:child_process";
import {
  createHash,
  createPublicKey,
  verify as cryptoVerify,
  type JsonWebKey,
  privateDecrypt,
  randomUUID,
} from "node:crypto";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { ContainerClient } from "@azure/storage-blob";
import * as grpc from "@grpc/grpc-js";
import { BuiltInRoleIds, poolResourceUri } from "@hsmpool/pool";
import {
  decodePayload,
  deriveDomainKeys,
  fromBase64Url,
  openPayload,
  parseSecurityDomain,
  recoverDomainKey,
  restoreBlob,
} from "@hsmpool/security-domain";
import { httpsCall, jsonOf, type NodeStatus } from "@hsmpool/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findLeaks, type Needle } from "../../chaos/src/checkers/leaks.js";
import {
  buildAndSignNode,
  type CallError,
  call,
  REPO_ROOT,
  TestCluster,
  waitFor,
} from "./testing/cluster.js";
import { removeTempDirs, tempDir } from "./testing/fixtures.js";
import { OWNERSHIP_KEY_NAMES, revealPoolSecrets } from "./testing/pool-secrets.js";
import type { TestTenant } from "./testing/test-tenant.js";

const IDS = ["n1", "n2", "n3"];
const POOL_ID = "pool-dr";
const MESSAGE = Buffer.from("signed before the disaster");
const CLI = join(REPO_ROOT, "packages/client/bin/hsmpool.js");
/** Generous: two pools of three processes and Azurite on a loaded 2-core machine. */
const LONG = 300_000;

let azuriteDir: string;
let storageUrl: string;
let original: TestCluster;
let recovered: TestCluster;
let customer: TestTenant;
let sd: { securityDomainJson: string; sdId: string; privateKeys: string[] };
let uploadJson: string;
let folder: string;

interface KeyBundle {
  name: string;
  version: number;
  publicJwkJson: string;
}
interface Job {
  jobId: string;
  status: string;
  folder: string;
  errorCode: string;
  errorMessage: string;
}
const before = new Map<string, KeyBundle>();
const signatures = new Map<string, { alg: "ES256" | "RS256"; signature: Buffer }>();

function storage(...args: string[]): string {
  return execFileSync(process.execPath, [CLI, "storage", ...args, "--dir", azuriteDir], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 120_000,
  });
}

beforeAll(async () => {
  buildAndSignNode();
  azuriteDir = await tempDir("hsmpool-dr-azurite-");
  storageUrl = (JSON.parse(storage("up", "--json")) as { url: string }).url;
  original = await TestCluster.create(await tempDir("hsmpool-dr-old-"), IDS, { poolId: POOL_ID });
  customer = original.tenant;
  for (const id of IDS) await original.start(id);
}, LONG);

afterAll(async () => {
  await original?.close();
  await recovered?.close();
  if (azuriteDir) storage("down");
  await removeTempDirs();
});

async function rejection(p: Promise<unknown>): Promise<CallError> {
  return p.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (e: CallError) => e,
  );
}
const codeOf = (e: CallError): string | undefined => e.metadata?.get("hsmpool-error-code")[0]?.toString();

/** The member that is primary (and, unless `recovering`, synced on every member). */
async function primaryOf(cluster: TestCluster, recovering = false): Promise<string> {
  return waitFor(
    "a primary",
    async () => {
      const all = (await Promise.all(IDS.map((id) => cluster.status(id)))).filter(
        (s): s is NodeStatus => s !== null,
      );
      const primary = all.find((s) => s.role === "primary");
      if (!primary || all.length < IDS.length) return null;
      return recovering || all.every((s) => s.ownership === "synced") ? primary.nodeId : null;
    },
    LONG,
  );
}

/** Polls a backup or restore job to its end on the primary that runs it. */
async function finished(cluster: TestCluster, primary: string, jobId: string, as?: TestTenant): Promise<Job> {
  return waitFor(
    `job ${jobId} to end`,
    async () => {
      const job = await call<Job>(cluster.securityDomain(primary, as ? { tenant: as } : {}), "GetJob", {
        jobId,
      });
      return job.status === "InProgress" ? null : job;
    },
    LONG,
  );
}

/** One Managed HSM REST call to a member's data port (server TLS + bearer token, as the Azure SDKs send). */
async function rest(
  cluster: TestCluster,
  id: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; headers: Record<string, unknown>; body: unknown }> {
  const token = await cluster.tenant.token(poolResourceUri(POOL_ID));
  const port = cluster.member(id).config.dataListen.split(":")[1];
  const answer = await httpsCall(`https://localhost:${port}${path}?api-version=7.6`, {
    method,
    ca: cluster.ca.certPem,
    token,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: answer.status, headers: answer.headers, body: jsonOf(answer) };
}

function verifies(bundle: KeyBundle, alg: "ES256" | "RS256", signature: Uint8Array, data = MESSAGE): boolean {
  const key = createPublicKey({ key: JSON.parse(bundle.publicJwkJson), format: "jwk" });
  return alg === "ES256"
    ? cryptoVerify("sha256", data, { key, dsaEncoding: "ieee-p1363" }, signature)
    : cryptoVerify("sha256", data, key, signature);
}

describe("disaster recovery: region loss, SD upload with a quorum, restore from Azure Blob Storage", () => {
  let primary: string;

  it(
    "an activated pool holds keys with versions and a soft-deleted key, and signs",
    async () => {
      primary = await primaryOf(original);
      await waitFor(
        "the tenant binding",
        () => call(original.securityDomain(primary), "Status", {}).catch(() => null),
        LONG,
      );
      sd = await original.activate(primary);
      const kv = original.keyVault(primary);
      const create = (request: object) => call<KeyBundle>(kv, "CreateKey", request, 60_000);
      before.set("dr-ec", await create({ name: "dr-ec", kty: "EC", crv: "P-256", ops: ["sign", "verify"] }));
      await create({ name: "dr-rsa", kty: "RSA", size: 2048, ops: ["sign", "verify"] });
      before.set(
        "dr-rsa",
        await call<KeyBundle>(kv, "RotateKey", { name: "dr-rsa", requestId: randomUUID() }),
      );
      before.set("dr-aes", await create({ name: "dr-aes", kty: "oct", size: 256 }));
      await create({ name: "dr-gone", kty: "EC", crv: "P-256" });
      await call(kv, "DeleteKey", { name: "dr-gone" });
      for (const [name, alg] of [
        ["dr-ec", "ES256"],
        ["dr-rsa", "RS256"],
      ] as const) {
        const r = await call<{ signature: Buffer; version: number }>(kv, "Sign", {
          name,
          alg,
          data: MESSAGE,
        });
        expect(r.version).toBe(before.get(name)?.version);
        expect(verifies(before.get(name) as KeyBundle, alg, r.signature)).toBe(true);
        signatures.set(name, { alg, signature: r.signature });
      }
      expect(before.get("dr-rsa")?.version).toBe(2);
    },
    LONG,
  );

  it(
    "a backup whose primary is SIGKILLed mid-job is reported by the next primary and never read as good; a clean backup succeeds",
    async () => {
      const sdClient = () => original.securityDomain(primary);
      const crashed = await call<Job>(sdClient(), "StartBackup", { storageUrl });
      expect(crashed.status).toBe("InProgress");
      const victim = primary;
      expect(await original.signal(victim, "SIGKILL")).toBe(null);
      await original.start(victim);
      primary = await primaryOf(original);
      // The job's record is replicated: the next primary reports it, and one whose primary died mid-job
      // ends Failed (Succeeded only if its runner committed the end before the kill).
      const reported = await call<Job & { startTimeMs: number; endTimeMs: number }>(sdClient(), "GetJob", {
        jobId: crashed.jobId,
      });
      expect(reported).toMatchObject({ jobId: crashed.jobId, folder: crashed.folder });
      expect(["Failed", "Succeeded"]).toContain(reported.status);
      expect(Number(reported.endTimeMs)).toBeGreaterThanOrEqual(Number(reported.startTimeMs));
      if (reported.status === "Failed") expect(reported.errorMessage).toMatch(/stopped before it ended/);
      // Asked again, on the same or another primary: the same verdict (the first terminal status wins).
      expect((await call<Job>(sdClient(), "GetJob", { jobId: crashed.jobId })).status).toBe(reported.status);
      const container = new ContainerClient(storageUrl);
      const written = new Map<string, Buffer>();
      for await (const blob of container.listBlobsFlat({ prefix: `${crashed.folder}/` }))
        written.set(
          blob.name.slice(crashed.folder.length + 1),
          await container.getBlockBlobClient(blob.name).downloadToBuffer(),
        );
      const manifest = written.get("manifest.json");
      if (reported.status === "Succeeded") expect(manifest).toBeDefined();
      if (manifest) {
        // The kill came after the job's last write: then it is a complete backup, blob and manifest agree.
        const m = JSON.parse(manifest.toString("utf8")) as { sha256: string; sdId: string };
        expect(m.sdId).toBe(sd.sdId);
        expect(
          createHash("sha256")
            .update(written.get("backup.hsbk") ?? Buffer.alloc(0))
            .digest("hex"),
        ).toBe(m.sha256);
      } else {
        // No manifest: whatever was written is not a backup, and a restore says so and changes nothing.
        const keysBefore = (await original.status(primary))?.keyCount;
        const job = await call<Job>(sdClient(), "StartRestore", {
          storageUrl,
          folder: crashed.folder,
          keyName: "",
        });
        const ended = await finished(original, primary, job.jobId);
        expect(ended).toMatchObject({ status: "Failed", errorCode: "BadParameter" });
        expect(ended.errorMessage).toMatch(/never completed/);
        expect((await original.status(primary))?.keyCount).toBe(keysBefore);
      }
      const started = await call<Job>(sdClient(), "StartBackup", { storageUrl });
      const done = await finished(original, primary, started.jobId);
      expect(done).toMatchObject({ status: "Succeeded", errorCode: "" });
      folder = done.folder;
      expect(folder).toMatch(/^mhsm-pool-dr-\d+$/);
      // The pre-checks over REST (jobs too): the container takes writes, the folder opens as a restore would
      // open it; a folder without a finished backup fails the pre-restore; nothing changes either way.
      const u = new URL(storageUrl);
      const sas = { storageResourceUri: `${u.origin}${u.pathname}`, token: u.search.slice(1) };
      const keyCountBefore = (await original.status(primary))?.keyCount;
      const preJob = async (method: string, path: string, body: unknown, kind: string) => {
        const started = await rest(original, primary, method, path, body);
        expect(started.status).toBe(202);
        const { jobId } = started.body as { jobId: string };
        return waitFor(
          `${path} job to end`,
          async () => {
            const r = await rest(original, primary, "GET", `/${kind}/${jobId}/pending`);
            const job = r.body as {
              status: string;
              statusDetails: string;
              azureStorageBlobContainerUri?: unknown;
            };
            return job.status === "InProgress" ? null : job;
          },
          LONG,
        );
      };
      expect(await preJob("POST", "/prebackup", sas, "backup")).toMatchObject({
        status: "Succeeded",
        azureStorageBlobContainerUri: null,
      });
      const preRestore = await preJob(
        "PUT",
        "/prerestore",
        { sasTokenParameters: sas, folderToRestore: folder },
        "restore",
      );
      expect(preRestore).toMatchObject({ status: "Succeeded" });
      expect(preRestore.statusDetails).toMatch(/holds a backup of this security domain \(\d+ keys\)/);
      const preMissing = await preJob(
        "PUT",
        "/prerestore",
        { sasTokenParameters: sas, folderToRestore: `${folder}-missing` },
        "restore",
      );
      expect(preMissing).toMatchObject({ status: "Failed" });
      expect(preMissing.statusDetails).toMatch(/never completed/);
      expect((await original.status(primary))?.keyCount).toBe(keyCountBefore);
      // After the backup: the expected loss of a region failure, never restored silently.
      await call(original.keyVault(primary), "CreateKey", { name: "dr-late", kty: "EC", crv: "P-256" });
    },
    LONG,
  );

  it(
    "region loss: a blank pool takes the old identity from the SD with a quorum, and the customer's tenant",
    async () => {
      await original.close();
      await rm(original.runDir, { recursive: true, force: true });
      // The recovering pool's launch config names another tenant (what the operator wrote): it
      // may run the recovery exchange only, and the upload binds the tenant the SD carries.
      recovered = await TestCluster.create(await tempDir("hsmpool-dr-new-"), IDS, {
        poolId: POOL_ID,
        recover: true,
      });
      for (const id of IDS) await recovered.start(id);
      primary = await primaryOf(recovered, true);
      // Nothing is served before the upload: no tenant is bound, no key is there.
      const early = await rejection(call(recovered.keyVault(primary), "ListKeys", {}));
      expect(["ServiceUnavailable", "NotActivated"]).toContain(codeOf(early));
      const stranger = { oid: randomUUID(), name: "stranger" };
      const refused = await rejection(
        call(recovered.securityDomain(primary, { principal: stranger }), "InitRecovery", {}),
      );
      expect(codeOf(refused)).toBe("Forbidden");
      // The recovery exchange over the Managed HSM REST API, as the Azure CLI does it: the transfer key, then the upload.
      const transfer = await rest(recovered, primary, "GET", "/securitydomain/upload");
      expect(transfer.status).toBe(200);
      const transferKey = (transfer.body as { transfer_key: Record<string, unknown> }).transfer_key;
      expect(transferKey).toMatchObject({ kty: "RSA", alg: "RSA-OAEP-256", key_ops: ["encrypt"] });
      const exchange = {
        exchangeKeyPem: createPublicKey({ key: transferKey as JsonWebKey, format: "jwk" })
          .export({ type: "spki", format: "pem" })
          .toString(),
      };
      const file = JSON.parse(sd.securityDomainJson) as unknown;
      await expect(
        restoreBlob({
          securityDomain: file,
          privateKeys: [sd.privateKeys[0] as string],
          exchangeKey: exchange.exchangeKeyPem,
        }),
      ).rejects.toThrow(/needs 2 of its 3 shares; 1 given/);
      const blob = await restoreBlob({
        securityDomain: file,
        privateKeys: [sd.privateKeys[0] as string, sd.privateKeys[2] as string],
        exchangeKey: exchange.exchangeKeyPem,
      });
      uploadJson = JSON.stringify(blob);
      const uploaded = await rest(recovered, primary, "POST", "/securitydomain/upload", {
        value: uploadJson,
      });
      expect(uploaded.status).toBe(202);
      expect(String(uploaded.headers["azure-asyncoperation"])).toMatch(/\/securitydomain\/upload\/pending$/);
      expect(uploaded.body).toMatchObject({ status: "Success" });
      primary = await primaryOf(recovered);
      // The launch config's admin is nobody now: the pool answers to the customer's tenant.
      const launchAdmin = await rejection(
        call(recovered.securityDomain(primary), "StartRestore", { storageUrl, folder, keyName: "" }),
      );
      expect(launchAdmin.code).toBe(grpc.status.UNAUTHENTICATED);
      const status = await call<{ state: string; sdId: string }>(
        recovered.securityDomain(primary, { tenant: customer }),
        "Status",
        {},
      );
      expect(status).toMatchObject({ state: "active", sdId: sd.sdId });
    },
    LONG,
  );

  it(
    "a Crypto User may not restore; the customer's Administrator restores every key, and they sign and verify as before",
    async () => {
      // The SD carries the Administrators only: a Crypto User of the customer's tenant has no role yet.
      const workload = { oid: randomUUID(), name: "workload" };
      await call(recovered.accessControl(primary, { tenant: customer }), "PutRoleAssignment", {
        assignment: {
          id: randomUUID(),
          scope: "/",
          roleDefinitionId: BuiltInRoleIds.CryptoUser,
          principalId: workload.oid,
        },
        requestId: randomUUID(),
      });
      const forbidden = await rejection(
        call(recovered.securityDomain(primary, { tenant: customer, principal: workload }), "StartRestore", {
          storageUrl,
          folder,
          keyName: "",
        }),
      );
      expect(codeOf(forbidden)).toBe("Forbidden");
      const job = await call<Job>(recovered.securityDomain(primary, { tenant: customer }), "StartRestore", {
        storageUrl,
        folder,
        keyName: "",
      });
      expect(await finished(recovered, primary, job.jobId, customer)).toMatchObject({ status: "Succeeded" });
      const kv = recovered.keyVault(primary, { tenant: customer });
      for (const [name, bundle] of before) {
        const after = await call<KeyBundle>(kv, "GetKey", { name });
        expect({ name, version: after.version, jwk: after.publicJwkJson }).toEqual({
          name,
          version: bundle.version,
          jwk: bundle.publicJwkJson,
        });
      }
      const rsaV1 = await call<KeyBundle>(kv, "GetKey", { name: "dr-rsa", version: 1 });
      expect(rsaV1.version).toBe(1);
      const deleted = await call<{ keys: { key: { name: string } }[] }>(kv, "ListDeletedKeys", {});
      expect(deleted.keys.map((k) => k.key.name)).toEqual(["dr-gone"]);
      const listed = await call<{ keys: KeyBundle[] }>(kv, "ListKeys", {});
      expect(listed.keys.map((k) => k.name).sort()).toEqual(["dr-aes", "dr-ec", "dr-rsa"]);
      for (const [name, { alg, signature }] of signatures) {
        const bundle = before.get(name) as KeyBundle;
        const check = await call<{ valid: boolean }>(kv, "Verify", { name, alg, data: MESSAGE, signature });
        expect(check.valid).toBe(true);
        const again = Buffer.from("signed after the recovery");
        const r = await call<{ signature: Buffer }>(kv, "Sign", { name, alg, data: again });
        expect(verifies(bundle, alg, r.signature, again)).toBe(true);
      }
    },
    LONG,
  );

  it(
    "no secret of the pool or its security domain in the blob container, the SD file, the upload blob or the pool's files",
    async () => {
      for (const id of IDS) await recovered.signal(id, "SIGTERM");
      const revealed = await revealPoolSecrets(recovered, IDS);
      for (const id of IDS)
        for (const name of OWNERSHIP_KEY_NAMES)
          expect(revealed.some((s) => s.what === `${id} ${name}`)).toBe(true);
      const needles: Needle[] = revealed.map((s) => ({ name: s.what, bytes: s.bytes }));
      const file = parseSecurityDomain(JSON.parse(sd.securityDomainJson));
      const domainKey = await recoverDomainKey(file, sd.privateKeys.slice(0, 2));
      const secret = decodePayload(openPayload(file, domainKey)).secret;
      const derived = deriveDomainKeys(secret);
      needles.push(
        { name: "SD domain key", bytes: domainKey },
        { name: "SD secret", bytes: secret },
        { name: "SD-derived backup key", bytes: derived.backupKey },
        { name: "SD-derived escrow key", bytes: derived.escrowKey },
      );
      for (const [i, share] of file.shares.entries()) {
        const opened = sd.privateKeys
          .map((pem) => {
            try {
              return privateDecrypt(
                { key: pem, oaepHash: "sha256" },
                fromBase64Url(share.encryptedShare, "share"),
              );
            } catch {
              return null;
            }
          })
          .find((s) => s !== null);
        expect(opened).toBeDefined();
        needles.push({ name: `SD share ${i + 1}`, bytes: opened as Buffer });
      }
      const scanned: { where: string; content: Buffer }[] = [
        { where: "sd.json", content: Buffer.from(sd.securityDomainJson) },
        { where: "upload.json", content: Buffer.from(uploadJson) },
      ];
      const container = new ContainerClient(storageUrl);
      for await (const blob of container.listBlobsFlat())
        scanned.push({
          where: `blob ${blob.name}`,
          content: await container.getBlockBlobClient(blob.name).downloadToBuffer(),
        });
      expect(scanned.filter((s) => s.where.startsWith(`blob ${folder}/`)).length).toBe(2);
      for (const entry of await readdir(recovered.runDir, { recursive: true, withFileTypes: true }))
        if (entry.isFile()) {
          const path = join(entry.parentPath, entry.name);
          scanned.push({ where: path, content: await readFile(path) });
        }
      expect(scanned.some((s) => s.where.endsWith("node.log"))).toBe(true);
      expect(needles.length).toBeGreaterThan(IDS.length * 6);
      const leaks = scanned.flatMap((s) => findLeaks(s.content, needles, s.where));
      expect(leaks).toEqual([]);
    },
    LONG,
  );
});
