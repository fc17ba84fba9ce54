export {
  type AccessToken,
  type GetTokenOptions,
  mintToken,
  resourceOfScopes,
  TenantDirectoryCredential,
  TOKEN_LIFETIME_SECONDS,
  type TokenCredential,
} from "./credential.js";
export {
  DEFAULT_PRINCIPAL,
  DEFAULT_TENANT_DIR,
  requirePrincipalName,
  TenantDirectory,
  type TenantPrincipal,
} from "./tenant-dir.js";
