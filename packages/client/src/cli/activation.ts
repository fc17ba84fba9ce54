/**
 * The customer's security-domain ceremony, done for them by `hsmpool up` (unless
 * --no-activate) and the demo: three RSA key pairs in the customer's own directory
 * (never the run dir, the fabric or anything the HFC reads), then `sd download` with
 * quorum 2 into that directory. What an operator would do by hand with openssl and
 * `hsmpool sd download`.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { createCustomerKeyPair } from "@hsmpool/security-domain";
import type { PoolClient } from "../sdk/pool-client.js";

export const CEREMONY_SHARES = 3;
export const CEREMONY_QUORUM = 2;

/**
 * The customer's side, beside their tenant directory (default .hsmpool/security-domain/<pool>), or
 * `$HSMPOOL_CUSTOMER_DIR/<pool>`: never the run dir or the fabric, which the operator (HFC) holds.
 */
export function customerDirFor(tenantDir: string, poolId: string): string {
  const base = process.env.HSMPOOL_CUSTOMER_DIR || join(dirname(resolve(tenantDir)), "security-domain");
  return join(base, poolId);
}

export interface CeremonyResult {
  dir: string;
  sdId: string;
  securityDomainPath: string;
  privateKeyPaths: string[];
  certificatePaths: string[];
}

export async function activateWithCustomerKeys(client: PoolClient, dir: string): Promise<CeremonyResult> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const pairs = await Promise.all(
    Array.from({ length: CEREMONY_SHARES }, (_, i) => createCustomerKeyPair(`sd-officer-${i + 1}`)),
  );
  const privateKeyPaths: string[] = [];
  const certificatePaths: string[] = [];
  for (const [i, pair] of pairs.entries()) {
    const key = join(dir, `sd-officer-${i + 1}.key`);
    const cert = join(dir, `sd-officer-${i + 1}.pem`);
    await writeFile(key, pair.privateKeyPem, { mode: 0o600 });
    await writeFile(cert, pair.certificatePem, { mode: 0o644 });
    privateKeyPaths.push(key);
    certificatePaths.push(cert);
  }
  const { securityDomainJson, sdId } = await client.downloadSecurityDomain({
    certificates: pairs.map((p) => p.certificatePem),
    quorum: CEREMONY_QUORUM,
  });
  const securityDomainPath = join(dir, "sd.json");
  await writeFile(securityDomainPath, securityDomainJson, { mode: 0o600 });
  return { dir, sdId, securityDomainPath, privateKeyPaths, certificatePaths };
}
