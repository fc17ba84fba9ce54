/**
 * What a chaos run needs beyond `hsmpool up` (and a debug-signed bundle, debug-bundle.ts): the run's own tenant with a
 * workload principal (Crypto User + Crypto Officer, for recover and purge), and the intruders of the `access`
 * checker (no token, expired token, foreign tenant, wrong role, HFC certificate alone).
 */
import { dirname, join } from "node:path";
import { CUSTOMER_DIR, type Intruder, keyName } from "@hsmpool/chaos";
import { isHsmPoolError } from "@hsmpool/errors";
import { BuiltInRoleIds, poolResourceUri } from "@hsmpool/pool";
import { FabricControllerClient, readHfcInfo } from "@hsmpool/wire";
import { issueClientIdentity } from "../sdk/identity.js";
import { PoolClient } from "../sdk/pool-client.js";
import { mintToken, TenantDirectoryCredential, type TokenCredential } from "../tenant/credential.js";
import { TenantDirectory } from "../tenant/tenant-dir.js";

export const WORKLOAD_PRINCIPAL = "workload";
const WRONG_ROLE_PRINCIPAL = "auditor";

/** `<run>/customer/tenant`, beside the pool dir: the run's own customer tenant (the leak scan's needles). */
export const chaosTenantDir = (poolDir: string): string => join(dirname(poolDir), CUSTOMER_DIR, "tenant");

/** After `up`: the workload principal holds Managed HSM Crypto User and Crypto Officer at /; an auditor holds Crypto Auditor. */
export async function grantWorkload(poolDir: string): Promise<void> {
  const tenant = await TenantDirectory.open(chaosTenantDir(poolDir));
  const admin = await PoolClient.connect({
    runDir: poolDir,
    credential: new TenantDirectoryCredential(tenant.dir, "admin"),
    retry: { totalTimeoutMs: 60_000 },
  });
  try {
    for (const [name, role] of [
      [WORKLOAD_PRINCIPAL, BuiltInRoleIds.CryptoUser],
      // The lifecycle mix recovers and purges deleted keys, which only Crypto Officer may (docs/identity.md).
      [WORKLOAD_PRINCIPAL, BuiltInRoleIds.CryptoOfficer],
      [WRONG_ROLE_PRINCIPAL, BuiltInRoleIds.CryptoAuditor],
    ] as const) {
      const p = tenant.listPrincipals().find((x) => x.name === name) ?? (await tenant.addPrincipal(name));
      await admin.putRoleAssignment({
        id: crypto.randomUUID(),
        scope: "/",
        roleDefinitionId: role,
        principalId: p.oid,
      });
    }
  } finally {
    admin.close();
  }
}

export function workloadCredential(poolDir: string): TokenCredential {
  return new TenantDirectoryCredential(chaosTenantDir(poolDir), WORKLOAD_PRINCIPAL);
}

/** The intruders; each attempt signs with a workload key and answers "OK" or the error code. */
export async function chaosIntruders(poolDir: string): Promise<Intruder[]> {
  const info = await readHfcInfo(poolDir);
  if (!info) return [];
  const hfc = new FabricControllerClient(info.controlAddress);
  const status = await hfc.status();
  const tls = await issueClientIdentity(hfc);
  hfc.close();
  const resource = poolResourceUri(status.poolId);
  const tenant = await TenantDirectory.open(chaosTenantDir(poolDir));
  const foreignDir = join(dirname(poolDir), CUSTOMER_DIR, "foreign-tenant");
  const foreign = (await TenantDirectory.openOrInit(foreignDir, ["mallory"])).tenant;
  const fixed = (mint: () => Promise<{ token: string; expiresOnTimestamp: number }>): TokenCredential => ({
    getToken: mint,
  });
  const credentials: [string, TokenCredential][] = [
    ["HFC certificate alone", { getToken: async () => null }],
    ["no token", { getToken: async () => ({ token: "", expiresOnTimestamp: Date.now() + 60_000 }) }],
    [
      "expired token",
      fixed(() => mintToken(tenant, WORKLOAD_PRINCIPAL, resource, { nowMs: Date.now() - 3_600_000 })),
    ],
    ["foreign tenant", fixed(() => mintToken(foreign, "mallory", resource))],
    ["wrong role", new TenantDirectoryCredential(tenant.dir, WRONG_ROLE_PRINCIPAL)],
  ];
  let turn = 0;
  return credentials.map(([name, credential]) => ({
    name,
    async attempt() {
      // Each attempt goes to the next member: a member that forgot to check would show up.
      const address = status.members[turn++ % status.members.length]?.dataAddress ?? "";
      const client = new PoolClient({
        tls,
        credential,
        resource,
        endpoints: [address],
        primaryAddress: address,
        retry: { maxAttempts: 1 },
        callDeadlineMs: 3000,
      });
      try {
        await client.sign({ name: keyName(0), alg: "ES256", data: new Uint8Array([1]) });
        return "OK";
      } catch (e) {
        return isHsmPoolError(e) ? e.code : "Internal";
      } finally {
        client.close();
      }
    },
  }));
}
