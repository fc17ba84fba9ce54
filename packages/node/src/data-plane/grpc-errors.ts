/**
 * The node's gRPC handlers map errors with @hsmpool/wire's toServiceError (the
 * trailers proto/pool.proto documents). Anything that is not an HsmPoolError is an
 * Internal error whose message names no internals (the cause goes to the node's
 * log instead).
 */
import type * as grpc from "@grpc/grpc-js";
import { isHsmPoolError } from "@hsmpool/errors";
import { toServiceError } from "@hsmpool/wire";

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
        callback(toServiceError(e, "node"));
      },
    );
  };
}
