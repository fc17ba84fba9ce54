/**
 * HsmPoolError → the Key Vault error answer: `{"error":{"code","message"}}` with the
 * real service's code and status. Where the service's code is coarser than the
 * pool's (every kind of "not available right now" is ServiceUnavailable), the pool's
 * code rides in `innererror` so nothing is lost for a person debugging.
 */
import { type ErrorCode, HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import type { RestResult } from "./types.js";

/** The service's error code for each pool code that differs from it. */
const SERVICE_CODE: Partial<Record<ErrorCode, string>> = {
  Unauthenticated: "Unauthorized",
  AttestationFailed: "Unauthorized",
  OperationNotAllowed: "Forbidden",
  OwnershipPending: "ServiceUnavailable",
  NotLeader: "ServiceUnavailable",
  NoQuorum: "ServiceUnavailable",
  DeviceFault: "ServiceUnavailable",
  NotInitialized: "Conflict",
  LaunchRefused: "BadParameter",
  IntegrityError: "InternalServerError",
  Internal: "InternalServerError",
  Timeout: "GatewayTimeout",
};

/** Seconds a client should wait before retrying an answer of this status. */
const RETRY_AFTER_SECONDS: Readonly<Record<number, string>> = { 503: "1", 504: "1" };

export function restErrorOf(e: unknown): RestResult {
  const error = isHsmPoolError(e) ? e : new HsmPoolError("Internal", "internal error; see the node log");
  const code = SERVICE_CODE[error.code] ?? error.code;
  const retryAfter = RETRY_AFTER_SECONDS[error.httpStatus];
  return {
    status: error.httpStatus,
    body: {
      error: {
        code,
        message: error.message,
        ...(code !== error.code ? { innererror: { code: error.code } } : {}),
      },
    },
    ...(retryAfter ? { headers: { "retry-after": retryAfter } } : {}),
  };
}
