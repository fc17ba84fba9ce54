/**
 * The customer's side of identity: `hsmpool tenant init|add-principal|show` (a simulated
 * identity provider in a directory the HFC never reads) and `hsmpool token --as <name>`
 * (a short-lived bearer token for the pool of the run directory).
 */

import { poolResourceUri } from "@hsmpool/pool";
import { readHfcInfo, readPoolSpec } from "@hsmpool/wire";
import type { Command } from "commander";
import { mintToken } from "../tenant/credential.js";
import { TenantDirectory } from "../tenant/tenant-dir.js";
import {
  out,
  progress,
  RUN_DIR_HELP,
  resolveRunDir,
  selectedCredential,
  selectedTenantDir,
} from "./context.js";

/** Any pool's tokens name their pool; with no pool at hand the token names no pool at all. */
export const UNBOUND_RESOURCE = "https://managedhsm.hsmpool.local";

/** The resource URI of the pool in `runDir` (running or stopped), if there is one. */
export async function poolResourceOf(runDir: string): Promise<string | undefined> {
  const info = await readHfcInfo(runDir).catch(() => undefined);
  if (info) return poolResourceUri(info.poolId);
  const spec = await readPoolSpec(runDir).catch(() => undefined);
  return spec ? poolResourceUri(spec.poolId) : undefined;
}

export function registerIdentityCommands(program: Command): void {
  const tenant = program
    .command("tenant")
    .description("the customer's identity tenant (a simulated identity provider; the HFC never reads it)");
  registerTenantInitCommand(tenant);
  registerTenantAddPrincipalCommand(tenant);
  registerTenantShowCommand(tenant);
  registerTokenCommand(program);
}

function registerTenantInitCommand(tenant: Command): void {
  tenant
    .command("init")
    .description("create a tenant: an id, a token-signing key and its public JWKS")
    .option("--dir <dir>", "tenant directory (default: --tenant, $HSMPOOL_TENANT or .hsmpool/tenant)")
    .action(async (opts: { dir?: string }) => {
      const t = await TenantDirectory.init(opts.dir ?? selectedTenantDir());
      out(`tenant ${t.tenantId} created in ${t.dir} (issuer ${t.issuer})`);
    });
}

function registerTenantAddPrincipalCommand(tenant: Command): void {
  tenant
    .command("add-principal")
    .description("add a principal (user or service principal) with a new object id")
    .argument("<name>", "principal name: 1-64 letters, digits, . _ @ -")
    .option("--dir <dir>", "tenant directory (default: --tenant, $HSMPOOL_TENANT or .hsmpool/tenant)")
    .action(async (name: string, opts: { dir?: string }) => {
      const t = await TenantDirectory.open(opts.dir ?? selectedTenantDir());
      const p = await t.addPrincipal(name);
      out(`principal ${p.name} added to tenant ${t.tenantId} (object id ${p.oid})`);
    });
}

function registerTenantShowCommand(tenant: Command): void {
  tenant
    .command("show")
    .description("print the tenant's id, issuer, public JWKS key ids and principals")
    .option("--dir <dir>", "tenant directory (default: --tenant, $HSMPOOL_TENANT or .hsmpool/tenant)")
    .option("--json", "print JSON")
    .action(async (opts: { dir?: string; json?: boolean }) => {
      const t = await TenantDirectory.open(opts.dir ?? selectedTenantDir());
      const view = {
        tenantId: t.tenantId,
        issuer: t.issuer,
        kids: t.jwks.keys.map((k) => k.kid),
        principals: t.listPrincipals(),
      };
      if (opts.json) return out(JSON.stringify(view, null, 2));
      out(`tenant ${view.tenantId} (${t.dir}), issuer ${view.issuer}, signing keys ${view.kids.join(", ")}`);
      for (const p of view.principals) out(`  ${p.name}  ${p.oid}`);
    });
}

function registerTokenCommand(program: Command): void {
  program
    .command("token")
    .description("print a short-lived bearer token (JWT) for --as <principal> of --tenant <dir>")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .option("--resource <uri>", "audience (default: the resource URI of the pool in the run directory)")
    .action(async (opts: { runDir?: string; resource?: string }) => {
      const credential = selectedCredential();
      let resource = opts.resource ?? (await poolResourceOf(resolveRunDir(opts.runDir)));
      if (resource === undefined) {
        resource = UNBOUND_RESOURCE;
        progress(
          `no pool in ${resolveRunDir(opts.runDir)}: the token's audience is ${resource}, which no pool accepts`,
        );
      }
      const t = await TenantDirectory.open(credential.tenantDir);
      out((await mintToken(t, credential.principalName, resource)).token);
    });
}
