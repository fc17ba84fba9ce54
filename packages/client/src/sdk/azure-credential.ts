/**
 * The TokenCredential to hand the Azure Key Vault SDK (`new KeyClient(url, credential)`):
 * tokens of the pool's identity tenant for one principal, minted from the tenant
 * directory on this machine (the customer's side; the HFC never reads it).
 */
import { TenantDirectoryCredential, type TokenCredential } from "../tenant/credential.js";

export interface HsmpoolCredentialOptions {
  /** The principal (default: $HSMPOOL_PRINCIPAL, else `admin`). */
  as?: string;
  /** The tenant directory (default: $HSMPOOL_TENANT, else `.hsmpool/tenant`). */
  tenant?: string;
}

export function hsmpoolCredential(options: HsmpoolCredentialOptions = {}): TokenCredential {
  return TenantDirectoryCredential.fromEnvironment({
    ...(options.as !== undefined ? { principal: options.as } : {}),
    ...(options.tenant !== undefined ? { tenantDir: options.tenant } : {}),
  });
}
