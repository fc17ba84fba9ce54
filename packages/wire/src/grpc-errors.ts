/**
 * HsmPoolError <-> gRPC status, as proto/pool.proto describes it: the gRPC code
 * from @hsmpool/errors' table plus the trailers
 *   hsmpool-error-code   the HsmPoolError code (so the code a program branches on survives the wire)
 *   hsmpool-leader       on NotLeader: the primary's node id, when known
 *   hsmpool-leader-addr  on NotLeader: its data-plane "host:port", when known
 * Servers of both the HFC and the nodes use this shape; clients turn any failed
 * call back into an HsmPoolError.
 */
import * as grpc from "@grpc/grpc-js";
import { type ErrorCode, HsmPoolError, isErrorCode, isHsmPoolError } from "@hsmpool/errors";

export const ERROR_CODE_TRAILER = "hsmpool-error-code";
export const LEADER_TRAILER = "hsmpool-leader";
export const LEADER_ADDR_TRAILER = "hsmpool-leader-addr";

/**
 * A grpc-js server error object for `e` (an HsmPoolError keeps its code; anything else is Internal).
 * `server` names who answers in the Internal message ("node", "server").
 */
export function toServiceError(e: unknown, server = "server"): Partial<grpc.ServiceError> {
  // Anything unexpected keeps its details in the server's log, not on the wire.
  const err = isHsmPoolError(e)
    ? e
    : new HsmPoolError("Internal", `internal error in the ${server}; see its log`);
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_CODE_TRAILER, err.code);
  if (err.code === "NotLeader") {
    const leader = err.details?.leader;
    const address = err.details?.leaderAddress;
    if (typeof leader === "string" && leader !== "") metadata.set(LEADER_TRAILER, leader);
    if (typeof address === "string" && address !== "") metadata.set(LEADER_ADDR_TRAILER, address);
  }
  return { code: err.grpcStatus, details: err.message, metadata };
}

function firstString(metadata: grpc.Metadata | undefined, key: string): string | undefined {
  const v = metadata?.get(key)[0];
  return typeof v === "string" && v.length > 0 ? v : undefined;
}

/** What a client learns from a failed call: the HsmPoolError plus any leader hint. */
export interface CallFailure {
  error: HsmPoolError;
  leaderId?: string;
  leaderAddress?: string;
}

function codeForStatus(status: number | undefined): ErrorCode {
  switch (status) {
    case grpc.status.UNAVAILABLE:
      return "ServiceUnavailable";
    case grpc.status.DEADLINE_EXCEEDED:
      return "Timeout";
    case grpc.status.UNAUTHENTICATED:
      return "Unauthenticated";
    case grpc.status.PERMISSION_DENIED:
      return "Forbidden";
    case grpc.status.INVALID_ARGUMENT:
      return "BadParameter";
    case grpc.status.NOT_FOUND:
      return "NotFound";
    default:
      return "Internal";
  }
}

/** Turns whatever a grpc-js call rejected with into a CallFailure. */
export function fromServiceError(e: unknown, what = "call"): CallFailure {
  if (isHsmPoolError(e)) {
    // A crypto session's answer arrives as the HsmPoolError itself; its NotLeader details are the trailers' hints.
    const leaderId = e.code === "NotLeader" ? e.details?.leader : undefined;
    const leaderAddress = e.code === "NotLeader" ? e.details?.leaderAddress : undefined;
    return {
      error: e,
      ...(typeof leaderId === "string" ? { leaderId } : {}),
      ...(typeof leaderAddress === "string" ? { leaderAddress } : {}),
    };
  }
  const err = e as Partial<grpc.ServiceError> | undefined;
  const trailerCode = firstString(err?.metadata, ERROR_CODE_TRAILER);
  const code: ErrorCode = trailerCode && isErrorCode(trailerCode) ? trailerCode : codeForStatus(err?.code);
  const details =
    typeof err?.details === "string" && err.details.length > 0 ? err.details : String(err?.message ?? e);
  // Transport failures carry no trailer; say where the call was going instead of grpc-js' raw text.
  const message = trailerCode ? details : `${what} failed: ${details}`;
  const leaderId = firstString(err?.metadata, LEADER_TRAILER);
  const leaderAddress = firstString(err?.metadata, LEADER_ADDR_TRAILER);
  return {
    error: new HsmPoolError(code, message, { grpcStatus: err?.code }),
    ...(leaderId ? { leaderId } : {}),
    ...(leaderAddress ? { leaderAddress } : {}),
  };
}
