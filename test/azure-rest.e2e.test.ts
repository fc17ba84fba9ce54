/**
 * Process e2e of the Key Vault REST endpoint: one real pool (`hsmpool up`), reached
 * only through `hsmpool endpoint`'s URL — the HFC's L4 balancer — with TLS checked
 * against the fabric CA file it names. Proves the challenge, that the balancer relays
 * a member's own TLS (never its own), the real service's refusals, that refusals
 * change nothing, and that a killed member costs new connections nothing.
 */

import { execFile } from "node:child_process";
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  verify,
  X509Certificate,
} from "node:crypto";
import { join } from "node:path";
import { connect } from "node:tls";
import { promisify } from "node:util";
import { CryptographyClient, type CryptographyClientOptions } from "@azure/keyvault-keys";
import { PoolClient, TenantDirectory, TenantDirectoryCredential } from "@hsmpool/client";
import { makeByokBlob } from "@hsmpool/hsm";
import { BuiltInRoleIds } from "@hsmpool/pool";
import { type HttpsAnswer, httpsCall } from "@hsmpool/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cli,
  type PoolDirs,
  REPO,
  type RestEndpoint,
  removeDirs,
  startPoolWithEndpoint,
  stopEverything,
  waitFor,
} from "./support/pool-harness.js";

let dirs: PoolDirs;
let endpoint: RestEndpoint;
let ca: string;
let client: PoolClient;

interface Answer extends HttpsAnswer {
  json: () => { error: { code: string; message: string } };
}

async function rest(
  method: string,
  path: string,
  opts: { token?: string; body?: string } = {},
): Promise<Answer> {
  const answer = await httpsCall(`${endpoint.url}${path}`, { method, ca, ...opts });
  return { ...answer, json: () => JSON.parse(answer.text) };
}

/** A bearer token of the pool's tenant for `name`. */
async function tokenOf(name: string): Promise<string> {
  const credential = new TenantDirectoryCredential(join(dirs.root, "tenant"), name);
  return (await credential.getToken(`${endpoint.resource}/.default`)).token;
}

/** A REST call at api-version 2026-04-01 with `token`, its answer's JSON parsed. */
async function restJson(token: string, method: string, path: string, body?: unknown) {
  const a = await rest(method, `${path}${path.includes("?") ? "&" : "?"}api-version=2026-04-01`, {
    token,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return {
    status: a.status,
    // biome-ignore lint/suspicious/noExplicitAny: the tests walk arbitrary response JSON and assert on it
    body: (a.text === "" ? {} : JSON.parse(a.text)) as Record<string, any>,
  };
}

/** The certificate a TLS client sees at `address`. */
function peerCertificate(address: string): Promise<X509Certificate> {
  const [host, port] = address.replace("https://", "").split(":") as [string, string];
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: Number(port), ca, ALPNProtocols: ["http/1.1"] }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.end();
      if (cert) resolve(cert);
      else reject(new Error("no certificate"));
    });
    socket.on("error", reject);
  });
}

beforeAll(async () => {
  const pool = await startPoolWithEndpoint("hsmpool-e2e-rest-");
  ({ dirs, endpoint, ca } = pool);
  // The pool's own tenant (the one `up` bound above), not whatever .hsmpool/tenant holds in this checkout.
  client = await PoolClient.connect({
    runDir: dirs.runDir,
    credential: new TenantDirectoryCredential(join(dirs.root, "tenant"), "admin"),
  });
}, 200_000);

afterAll(async () => {
  client?.close();
  if (dirs) {
    await stopEverything(dirs);
    await removeDirs(dirs);
  }
}, 120_000);

describe("the pool's Key Vault REST endpoint", () => {
  it("hsmpool endpoint names the balancer URL, the fabric CA file, and the challenge's resource and tenant", async () => {
    expect(Object.keys(endpoint).sort()).toEqual(["caFile", "resource", "tenant", "url"]);
    expect(endpoint.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(ca).toMatch(/BEGIN CERTIFICATE/);
    expect(endpoint.resource).toMatch(/^https:\/\//);
    expect(endpoint.tenant).not.toBe("");
    const text = await cli(["endpoint", "--run-dir", dirs.runDir]);
    expect(text.stdout).toContain(endpoint.url);
  });

  it("a request without Authorization gets 401, the bearer challenge and an empty body", async () => {
    const a = await rest("GET", "/keys?api-version=7.5");
    expect(a.status).toBe(401);
    expect(a.text).toBe("");
    const challenge = String(a.headers["www-authenticate"]);
    expect(challenge).toMatch(/^Bearer authorization="https:\/\/[^"]+", resource="[^"]+"$/);
    expect(challenge).toContain(`resource="${endpoint.resource}"`);
    expect(challenge).toContain(endpoint.tenant);
  });

  it("the balancer relays a member's own TLS: the certificate seen through it is a node's, from the fabric CA", async () => {
    const status = JSON.parse((await cli(["status", "--json", "--run-dir", dirs.runDir])).stdout) as {
      members: { id: string; dataAddress: string }[];
    };
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const cert = await peerCertificate(endpoint.url);
      expect(cert.checkIssued(new X509Certificate(ca))).toBe(true);
      seen.add(/CN=(n\d+)/.exec(cert.subject)?.[1] ?? "");
    }
    const direct = await peerCertificate(`https://${status.members[0]?.dataAddress}`);
    expect(direct.subject).toMatch(/CN=n\d+/);
    expect([...seen].every((id) => status.members.some((m) => m.id === id))).toBe(true);
    expect(seen.size).toBeGreaterThan(1); // new connections go round the members
  });

  it("refusals carry the real service's status and code, and change nothing", async () => {
    const admin = await tokenOf("admin");
    // A principal of the pool's tenant that holds no role: authenticated, then denied by default.
    await (await TenantDirectory.open(join(dirs.root, "tenant"))).addPrincipal("rest-nobody");
    const nobody = await tokenOf("rest-nobody");
    const before = (await client.listKeys()).map((k) => k.name).sort();

    const badToken = await rest("GET", "/keys?api-version=7.5", { token: "x" });
    expect(badToken.status).toBe(401);
    expect(badToken.json().error.code).toBe("Unauthorized");
    const tampered = await rest("POST", "/keys/refused/create?api-version=7.5", {
      token: `${admin.slice(0, -4)}AAAA`,
      body: JSON.stringify({ kty: "EC" }),
    });
    expect(tampered.status).toBe(401);
    expect(tampered.json().error.code).toBe("Unauthorized");
    const wrongRole = await rest("POST", "/keys/refused/create?api-version=7.5", {
      token: nobody,
      body: JSON.stringify({ kty: "EC" }),
    });
    expect(wrongRole.status).toBe(403);
    expect(wrongRole.json().error.code).toBe("Forbidden");
    const unknownVersion = await rest("GET", "/keys?api-version=7.9", { token: admin });
    expect(unknownVersion.status).toBe(400);
    expect(unknownVersion.json().error).toEqual({
      code: "BadParameter",
      message:
        "The specified version (7.9) is not recognized. Consider using the latest supported version (2026-04-01).",
    });
    const missingVersion = await rest("GET", "/keys", { token: admin });
    expect(missingVersion.status).toBe(400);
    expect(missingVersion.json().error.code).toBe("BadParameter");
    const unknownPath = await rest("GET", "/nothing?api-version=7.5", { token: admin });
    expect(unknownPath.status).toBe(404);
    expect(unknownPath.json().error.code).toBe("NotFound");
    const unknownOp = await rest("POST", "/keys/k/1/frobnicate?api-version=7.5", {
      token: admin,
      body: "{}",
    });
    expect(unknownOp.status).toBe(400);
    expect(unknownOp.json().error.message).toMatch(/unknown key operation "frobnicate"/);
    const malformed = await rest("POST", "/keys/refused/create?api-version=7.5", {
      token: admin,
      body: '{"kty": "EC",',
    });
    expect(malformed.status).toBe(400);
    expect(malformed.json().error.code).toBe("BadParameter");
    expect(malformed.json().error.message).toMatch(/not valid JSON/);
    const badOps = await rest("POST", "/keys/refused/create?api-version=7.5", {
      token: admin,
      body: JSON.stringify({ kty: "EC", key_ops: ["sign", "frobnicate"] }),
    });
    expect(badOps.status).toBe(400);
    expect(badOps.json().error.message).toMatch(/unknown key operation "frobnicate"/);

    expect((await client.listKeys()).map((k) => k.name).sort()).toEqual(before);
    const refused = await rest("GET", "/keys/refused?api-version=7.5", { token: admin });
    expect(refused.status).toBe(404);
    expect(refused.json().error.code).toBe("KeyNotFound");
  });

  it("RBAC over REST: role definitions and assignments in the examples' shapes, enforced at once, lockout-protected", async () => {
    const tenantDir = join(dirs.root, "tenant");
    const admin = await tokenOf("admin");
    const tenant = await TenantDirectory.open(tenantDir);
    const signer = await tenant.addPrincipal("rest-signer");
    const signerCredential = new TenantDirectoryCredential(tenantDir, "rest-signer");
    const signerToken = await tokenOf("rest-signer");
    const rbac = (kind: string, at = "") => `${at}/providers/Microsoft.Authorization/${kind}`;
    const as = restJson;
    const key = await as(admin, "POST", "/keys/rbac-signed/create", { kty: "EC", crv: "P-256" });
    expect(key.status).toBe(200);
    const kid = key.body?.key.kid as string;
    const sign = () =>
      as(signerToken, "POST", `/keys/rbac-signed/${kid.split("/").at(-1)}/sign`, {
        alg: "ES256",
        value: Buffer.alloc(32, 7).toString("base64url"),
      });
    expect((await sign()).status).toBe(403);

    // Built-in roles are listed with the real ids and type.
    const defs = await as(admin, "GET", `/${rbac("roleDefinitions")}`);
    expect(defs.status).toBe(200);
    const administrator = defs.body?.value.find(
      (d: { name: string }) => d.name === BuiltInRoleIds.Administrator,
    );
    expect(administrator).toMatchObject({
      id: `Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/${BuiltInRoleIds.Administrator}`,
      type: "Microsoft.Authorization/roleDefinitions",
      properties: { roleName: "Managed HSM Administrator", type: "AKVBuiltInRole" },
    });

    // RoleDefinitions_CreateOrUpdate with the example's body (PutRoleDefinition-example.json), then assign it.
    const roleId = randomUUID();
    const signOnly = {
      properties: {
        roleName: "REST signer",
        type: "CustomRole",
        description: "Role description",
        permissions: [{ dataActions: ["Microsoft.KeyVault/managedHsm/keys/sign/action"] }],
      },
    };
    const putDef = await as(admin, "PUT", rbac("roleDefinitions", "/keys") + `/${roleId}`, signOnly);
    expect(putDef.status).toBe(201);
    expect(putDef.body).toMatchObject({
      id: `Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/${roleId}`,
      name: roleId,
      type: "Microsoft.Authorization/roleDefinitions",
      properties: {
        roleName: "REST signer",
        type: "CustomRole",
        assignableScopes: ["/"],
        permissions: [{ dataActions: signOnly.properties.permissions[0]?.dataActions }],
      },
    });
    expect((await as(admin, "GET", rbac("roleDefinitions", "/keys") + `/${roleId}`)).body).toEqual(
      putDef.body,
    );

    const assignmentId = randomUUID();
    const assignmentPath = rbac("roleAssignments", "/keys") + `/${assignmentId}`;
    const putAssignment = await as(admin, "PUT", assignmentPath, {
      properties: { roleDefinitionId: putDef.body?.id, principalId: signer.oid },
    });
    expect(putAssignment.status).toBe(201);
    expect(putAssignment.body).toEqual({
      id: `/keys/providers/Microsoft.Authorization/roleAssignments/${assignmentId}`,
      name: assignmentId,
      type: "Microsoft.Authorization/roleAssignments",
      properties: { scope: "/keys", roleDefinitionId: putDef.body?.id, principalId: signer.oid },
    });
    expect((await as(admin, "GET", assignmentPath)).body).toEqual(putAssignment.body);
    const mine = await as(
      admin,
      "GET",
      `${rbac("roleAssignments", "/keys")}?$filter=${encodeURIComponent(`principalId eq '${signer.oid}'`)}`,
    );
    expect(mine.body?.value).toEqual([putAssignment.body]);

    // The assignment takes effect: the unmodified Azure SDK signs as the new principal.
    const signed = await new CryptographyClient(kid, signerCredential, {
      disableChallengeResourceVerification: true,
      tlsOptions: { ca },
    } as CryptographyClientOptions).sign("ES256", Buffer.alloc(32, 7));
    expect(signed.result.length).toBe(64);
    // ...and grants nothing else: the signer may not read the role assignments.
    const denied = await as(signerToken, "GET", `/${rbac("roleAssignments")}`);
    expect(denied.status).toBe(403);
    expect(denied.body?.error.code).toBe("Forbidden");

    // Refusals change nothing: a role in use, a non-GUID name, an unknown role, the last Administrator.
    const inUse = await as(admin, "DELETE", rbac("roleDefinitions", "/keys") + `/${roleId}`);
    expect(inUse.status).toBe(409);
    expect(inUse.body?.error.code).toBe("Conflict");
    const notGuid = await as(admin, "PUT", rbac("roleAssignments", "/keys") + "/roleAssignmentName", {
      properties: { roleDefinitionId: putDef.body?.id, principalId: signer.oid },
    });
    expect(notGuid.status).toBe(400);
    expect(notGuid.body?.error.code).toBe("BadParameter");
    const noRole = await as(admin, "PUT", rbac("roleAssignments", "/keys") + `/${randomUUID()}`, {
      properties: { roleDefinitionId: randomUUID(), principalId: signer.oid },
    });
    expect(noRole.status).toBe(404);
    const adminOid = tenant.principal("admin").oid;
    const adminAssignments = await as(
      admin,
      "GET",
      `/${rbac("roleAssignments")}?$filter=${encodeURIComponent(`principalId eq '${adminOid}'`)}`,
    );
    const root = adminAssignments.body?.value.find(
      (a: { properties: { roleDefinitionId: string; scope: string } }) =>
        a.properties.scope === "/" && a.properties.roleDefinitionId.endsWith(BuiltInRoleIds.Administrator),
    );
    const lockout = await as(admin, "DELETE", `/${rbac("roleAssignments")}/${root.name}`);
    expect(lockout.status).toBe(403);
    expect(lockout.body?.error.message).toMatch(/lockout protection/);
    expect((await as(admin, "GET", `/${rbac("roleAssignments")}/${root.name}`)).status).toBe(200);
    expect((await as(admin, "GET", assignmentPath)).body).toEqual(putAssignment.body);

    // Deleting answers what was removed, and the access goes with it.
    const deleted = await as(admin, "DELETE", assignmentPath);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual(putAssignment.body);
    expect((await as(admin, "GET", assignmentPath)).status).toBe(404);
    await waitFor(
      "the signer's access to be gone on every member",
      async () => ((await sign()).status === 403 ? true : undefined),
      60_000,
    );
    const deletedDef = await as(admin, "DELETE", rbac("roleDefinitions", "/keys") + `/${roleId}`);
    expect(deletedDef.status).toBe(200);
    expect(deletedDef.body).toEqual(putDef.body);
    expect((await as(admin, "GET", rbac("roleDefinitions", "/keys") + `/${roleId}`)).status).toBe(404);
  }, 180_000);

  it("settings over REST: listed, read and changed through the log in the examples' shapes; bad values change nothing", async () => {
    const admin = await tokenOf("admin");
    const call = (method: string, path: string, body?: unknown) => restJson(admin, method, path, body);
    const all = await call("GET", "/settings");
    expect(all.status).toBe(200);
    expect(all.body).toEqual({
      settings: [
        { name: "AllowKeyManagementOperationsThroughARM", value: "false", type: "boolean" },
        { name: "soft-delete-retention-days", value: "90" },
        { name: "purge-protection", value: "false", type: "boolean" },
      ],
    });
    const changed = await call("PATCH", "/settings/soft-delete-retention-days", { value: "30" });
    expect(changed).toEqual({ status: 200, body: { name: "soft-delete-retention-days", value: "30" } });
    expect((await call("GET", "/settings/soft-delete-retention-days")).body.value).toBe("30");

    for (const [name, value] of [
      ["soft-delete-retention-days", "3"],
      ["purge-protection", "yes"],
      ["AllowKeyManagementOperationsThroughARM", "true"],
      ["no-such-setting", "1"],
    ] as const) {
      const refused = await call("PATCH", `/settings/${name}`, { value });
      expect(refused.status, `${name}=${value}`).toBe(400);
      expect((refused.body.error as { code: string }).code).toBe("BadParameter");
    }
    expect((await call("PATCH", "/settings/soft-delete-retention-days", { days: 30 })).status).toBe(400);
    expect((await call("GET", "/settings")).body).toEqual({
      settings: [
        { name: "AllowKeyManagementOperationsThroughARM", value: "false", type: "boolean" },
        { name: "soft-delete-retention-days", value: "30" },
        { name: "purge-protection", value: "false", type: "boolean" },
      ],
    });

    // Any principal of the tenant reads the settings; only an Administrator changes them (hsmpool's
    // SettingsWrite: purge protection can never be switched off again).
    await (await TenantDirectory.open(join(dirs.root, "tenant"))).addPrincipal("rest-settings-reader");
    const reader = await tokenOf("rest-settings-reader");
    expect((await restJson(reader, "GET", "/settings/purge-protection")).body.value).toBe("false");
    const notAdmin = await restJson(reader, "PATCH", "/settings/purge-protection", { value: "true" });
    expect(notAdmin.status).toBe(403);
    expect((notAdmin.body.error as { code: string }).code).toBe("Forbidden");
    expect((await call("GET", "/settings/purge-protection")).body.value).toBe("false");

    // Purge protection is a boolean on the wire and, as in the service, cannot be turned off once on.
    expect((await call("PATCH", "/settings/purge-protection", { value: "true" })).body).toEqual({
      name: "purge-protection",
      value: "true",
      type: "boolean",
    });
    const off = await call("PATCH", "/settings/purge-protection", { value: "false" });
    expect(off.status).toBe(400);
    expect((await call("GET", "/settings/purge-protection")).body.value).toBe("true");
  }, 120_000);

  it("BYOK over REST: a key_hsm blob made for the pool's key-exchange key imports the target, unwrapped in the HSM", async () => {
    const admin = await tokenOf("admin");
    const call = (method: string, path: string, body?: unknown) => restJson(admin, method, path, body);
    const kek = await call("POST", "/keys/rest-kek/create", {
      kty: "RSA-HSM",
      key_size: 2048,
      key_ops: ["import"],
    });
    expect(kek.status).toBe(200);
    const kekPublic = createPublicKey({
      key: { kty: "RSA", n: kek.body.key.n, e: kek.body.key.e },
      format: "jwk",
    });
    const target = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const der = target.privateKey.export({ type: "pkcs8", format: "der" });
    const blobFor = (kid: string) =>
      Buffer.from(JSON.stringify(makeByokBlob(kekPublic, kid, der, "azure-rest e2e"))).toString("base64url");
    const importBody = (kid: string) => ({
      key: { kty: "EC-HSM", key_ops: ["sign", "verify"], key_hsm: blobFor(kid) },
    });

    // A blob naming no key id is refused and creates nothing.
    const refused = await call("PUT", "/keys/rest-byok", importBody("not-a-key-id"));
    expect(refused.status).toBe(400);
    expect(refused.body.error?.code).toBe("BadParameter");
    expect((await call("GET", "/keys/rest-byok")).status).toBe(404);

    const imported = await call("PUT", "/keys/rest-byok", importBody(kek.body.key.kid));
    expect(imported.status, JSON.stringify(imported.body)).toBe(200);
    const mine = target.publicKey.export({ format: "jwk" });
    expect([imported.body.key.crv, imported.body.key.x, imported.body.key.y]).toEqual([
      "P-256",
      mine.x,
      mine.y,
    ]);
    expect(imported.body.key).not.toHaveProperty("d");
    // The pool signs with the imported key: the signature verifies under the customer's own public key.
    const digest = createHash("sha256").update("byok over rest").digest();
    const signed = await rest(
      "POST",
      `/keys/rest-byok/${imported.body.key.kid.split("/").at(-1)}/sign?api-version=7.5`,
      {
        token: admin,
        body: JSON.stringify({ alg: "ES256", value: digest.toString("base64url") }),
      },
    );
    expect(signed.status).toBe(200);
    const signature = Buffer.from((JSON.parse(signed.text) as { value: string }).value, "base64url");
    expect(
      verify(
        "sha256",
        Buffer.from("byok over rest"),
        { key: target.publicKey, dsaEncoding: "ieee-p1363" },
        signature,
      ),
    ).toBe(true);
  }, 120_000);

  it("REST calls are audited as gRPC calls are: who, which operation, the outcome; never a token", async () => {
    const listed = await cli(["audit", "--json", "--run-dir", dirs.runDir], {
      env: { HSMPOOL_TENANT: join(dirs.root, "tenant"), HSMPOOL_PRINCIPAL: "admin" },
    });
    expect(listed.code, listed.stderr).toBe(0);
    const records = JSON.parse(listed.stdout) as {
      principal: string;
      operation: string;
      result: string;
      key: string;
    }[];
    const has = (p: Partial<(typeof records)[number]>) =>
      records.some((r) => Object.entries(p).every(([k, v]) => r[k as keyof typeof r] === v));
    expect(has({ principal: "rest-signer", operation: "sign", key: "rbac-signed", result: "OK" })).toBe(true);
    expect(
      has({ principal: "rest-signer", operation: "sign", key: "rbac-signed", result: "Forbidden" }),
    ).toBe(true);
    expect(
      has({ principal: "rest-nobody", operation: "CreateKey", key: "refused", result: "Forbidden" }),
    ).toBe(true);
    expect(has({ principal: "", operation: "GetKeys", result: "Unauthenticated" })).toBe(true);
    expect(has({ principal: "admin", operation: "RoleAssignments_Create", result: "OK" })).toBe(true);
    expect(has({ principal: "admin", operation: "RoleAssignments_Delete", result: "Forbidden" })).toBe(true);
    expect(
      has({ principal: "admin", operation: "UpdateSetting", key: "purge-protection", result: "OK" }),
    ).toBe(true);
    expect(listed.stdout).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
  }, 60_000);

  it("the README's example program runs against the pool with the unmodified Azure SDK", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [join(REPO, "examples/azure-sdk.mjs")], {
      cwd: REPO,
      env: { ...process.env, HSMPOOL_RUN_DIR: dirs.runDir, HSMPOOL_TENANT: join(dirs.root, "tenant") },
      timeout: 60_000,
    });
    expect(stdout).toMatch(/created https:\/\/127\.0\.0\.1:\d+\/keys\/example-ec\/\S+/);
    expect(stdout).toContain("verified by the pool: true");
  }, 90_000);

  it("after the primary is killed, every new connection through the balancer is still answered", async () => {
    const kill = await cli(["kill", "primary", "--run-dir", dirs.runDir]);
    expect(kill.code).toBe(0);
    for (let i = 0; i < 9; i++) expect((await rest("GET", "/keys?api-version=7.5")).status).toBe(401);
    await waitFor(
      "the pool to heal after the primary kill",
      async () => {
        const s = JSON.parse((await cli(["status", "--json", "--run-dir", dirs.runDir])).stdout) as {
          state: string;
        };
        return s.state === "healthy" ? s : undefined;
      },
      120_000,
    );
  }, 180_000);
});
