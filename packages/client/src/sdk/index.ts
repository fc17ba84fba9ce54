export { type HsmpoolCredentialOptions, hsmpoolCredential } from "./azure-credential.js";
export { discoverEndpoint, type PoolEndpoint, parseBearerChallenge } from "./endpoint.js";
export { issueClientIdentity } from "./identity.js";
export {
  type ConnectOptions,
  DEFAULT_CALL_DEADLINE_MS,
  hfcForRunDir,
  type MemberAnswer,
  PoolClient,
  type PoolClientOptions,
} from "./pool-client.js";
export {
  backoffMs,
  DEFAULT_RETRY_POLICY,
  decideRetry,
  RETRYABLE_CODES,
  type RetryDecision,
  type RetryInput,
  type RetryPolicy,
} from "./retry.js";
export type * from "./types.js";
