/**
 * What the pool commands share: where the run directory is, how to reach the pool,
 * and where output goes (results on stdout; progress on stderr).
 */
import { PoolClient } from "../sdk/pool-client.js";
import { TenantDirectoryCredential } from "../tenant/credential.js";
import { DEFAULT_PRINCIPAL, DEFAULT_TENANT_DIR } from "../tenant/tenant-dir.js";

export const DEFAULT_RUN_DIR = ".hsmpool/run";
export const RUN_DIR_HELP = `run directory of the pool (default: $HSMPOOL_RUN_DIR or ${DEFAULT_RUN_DIR})`;

/** `--run-dir`, else $HSMPOOL_RUN_DIR, else `.hsmpool/run`. */
export function resolveRunDir(flag: string | undefined): string {
  if (flag !== undefined && flag !== "") return flag;
  const env = process.env.HSMPOOL_RUN_DIR;
  return env !== undefined && env !== "" ? env : DEFAULT_RUN_DIR;
}

export function out(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

export function progress(text: string): void {
  process.stderr.write(`${text}\n`);
}

export const AS_HELP = `principal the command acts as (default: $HSMPOOL_PRINCIPAL or ${DEFAULT_PRINCIPAL})`;
export const TENANT_HELP = `customer tenant directory (default: $HSMPOOL_TENANT or ${DEFAULT_TENANT_DIR})`;

/** The global `--as` / `--tenant` of the command being run (set by the program's preAction hook). */
let identitySelection: { principal?: string; tenantDir?: string } = {};

export function selectIdentity(globals: { as?: string; tenant?: string }): void {
  identitySelection = {
    ...(globals.as !== undefined ? { principal: globals.as } : {}),
    ...(globals.tenant !== undefined ? { tenantDir: globals.tenant } : {}),
  };
}

/** `--tenant`, else $HSMPOOL_TENANT, else `.hsmpool/tenant`. */
export function selectedTenantDir(): string {
  return TenantDirectoryCredential.fromEnvironment(identitySelection).tenantDir;
}

/** The credential of `--as` in `--tenant` (or their environment defaults). */
export function selectedCredential(): TenantDirectoryCredential {
  return TenantDirectoryCredential.fromEnvironment(identitySelection);
}

/** Runs `fn` with a client for the pool of `runDir`, closing it afterwards. */
export async function withPool<T>(runDir: string, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await PoolClient.connect({ runDir, credential: selectedCredential() });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
