/**
 * Counts and times every data-plane call by its gRPC method name and result (ok or the
 * HsmPoolError code from the error trailer). Refusals for want of identity or permission
 * are also counted as authorisation refusals. The request itself (key names, data) is
 * never looked at.
 */
import type * as grpc from "@grpc/grpc-js";
import { secondsSince } from "@hsmpool/metrics";
import { ERROR_CODE_TRAILER } from "@hsmpool/wire";
import type { NodeMetrics } from "../metrics/node-metrics.js";

type UnaryHandler = (call: unknown, callback: (error: unknown, value?: unknown) => void) => void;

function resultOf(error: unknown): string {
  if (error === null || error === undefined) return "ok";
  const metadata = (error as { metadata?: grpc.Metadata }).metadata;
  const code = metadata?.get(ERROR_CODE_TRAILER)[0];
  return typeof code === "string" && /^[A-Za-z]{1,40}$/.test(code) ? code : "Internal";
}

export function withRequestMetrics(
  implementation: grpc.UntypedServiceImplementation,
  metrics: NodeMetrics,
): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [operation, handler] of Object.entries(implementation)) {
    const inner = handler as unknown as UnaryHandler;
    const wrapped: UnaryHandler = (call, callback) => {
      const started = process.hrtime.bigint();
      inner(call, (error, value) => {
        const result = resultOf(error);
        metrics.request(operation, result, secondsSince(started));
        if (result === "Unauthenticated" || result === "Forbidden")
          metrics.authorizationRefused(operation, result);
        callback(error, value);
      });
    };
    out[operation] = wrapped as unknown as grpc.UntypedHandleCall;
  }
  return out;
}
