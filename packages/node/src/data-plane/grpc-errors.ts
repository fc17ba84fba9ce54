/**
 * HsmPoolError -> gRPC status, with the trailers proto/pool.proto documents:
 *   hsmpool-error-code   the HsmPoolError code
 *   hsmpool-leader       on NotLeader: the primary's node id, when known
 *   hsmpool-leader-addr  on NotLeader: its data-plane "host:port", when known
 * Anything that is not an HsmPoolError is an Internal error whose message names no
 * internals (the cause goes to the node's log instead).
 */
import * as grpc from "@grpc/grpc-js";
import { HsmPoolError, isHsmPoolError } from "@hsmpool/errors";

export const ERROR_CODE_TRAILER = "hsmpool-error-code";
export const LEADER_TRAILER = "hsmpool-leader";
export const LEADER_ADDRESS_TRAILER = "hsmpool-leader-addr";

export function toServiceError(e: unknown): Partial<grpc.StatusObject> {
  const err = isHsmPoolError(e) ? e : new HsmPoolError("Internal", "internal error in the node; see its log");
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_CODE_TRAILER, err.code);
  if (err.code === "NotLeader") {
    const leader = err.details?.leader;
    const address = err.details?.leaderAddress;
    if (typeof leader === "string" && leader !== "") metadata.set(LEADER_TRAILER, leader);
    if (typeof address === "string" && address !== "") metadata.set(LEADER_ADDRESS_TRAILER, address);
  }
  return { code: err.grpcStatus, details: err.message, metadata };
}

/** Wraps an async handler as a grpc-js unary handler with error mapping. */
export function unary<Req, Res>(
  handler: (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>,
  onInternalError: (e: unknown) => void,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    handler(call.request, call).then(
      (response) => callback(null, response),
      (e: unknown) => {
        if (!isHsmPoolError(e)) onInternalError(e);
        callback(toServiceError(e));
      },
    );
  };
}
