/** Customer identity and local RBAC, pure: data actions, built-in roles, scopes, the decision, tokens. */
export { Authenticator, DEFAULT_TOKEN_CACHE_ENTRIES } from "./authenticator.js";
export { BUILT_IN_ROLES, BuiltInRoleIds, isBuiltInRoleId } from "./builtin-roles.js";
export { ALL_DATA_ACTIONS, type DataAction, DataActions, isDataAction } from "./data-actions.js";
export { isAllowed, permits } from "./evaluate.js";
export { requireGuid, validateAssignment, validateCustomRole } from "./role-validation.js";
export { KEYS_SCOPE, keyScope, normalizeScope, ROOT_SCOPE, scopeCovers } from "./scope.js";
export {
  type AccessOp,
  type AccessOpName,
  AccessRejection,
  type AccessSnapshot,
  AccessState,
  MAX_CUSTOM_ROLES,
  MAX_ROLE_ASSIGNMENTS,
  validateAccessOp,
} from "./state.js";
export {
  ISSUER_BASE,
  issuerOf,
  MAX_JWKS_KEYS,
  poolResourceUri,
  requireTenantId,
  type TenantBinding,
  type TenantJwk,
  validateJwks,
  validateTenantBinding,
} from "./tenant.js";
export {
  MAX_TOKEN_CHARS,
  TOKEN_ALGORITHMS,
  TOKEN_SKEW_SECONDS,
  type VerifiedToken,
  verifyAccessToken,
} from "./token.js";
export type { Principal, RoleAssignment, RoleDefinition, RolePermission, Scope } from "./types.js";
