/**
 * Wraps a gRPC service so every call, accepted or refused, leaves one audit record:
 * who (from the verified token), the operation, key and version, the result code and a
 * request id. Only names, numbers and codes are read from the call: never the token,
 * plaintexts, signatures or key material.
 */
import type * as grpc from "@grpc/grpc-js";
import type { Principal } from "@hsmpool/pool";
import { ERROR_CODE_TRAILER } from "@hsmpool/wire";
import type { AuditEntry, AuditLog } from "../audit/audit-log.js";
import type { DataPlaneAccess } from "./access.js";

type AnyUnary = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;

const field = (o: unknown, name: string): unknown =>
  typeof o === "object" && o !== null ? (o as Record<string, unknown>)[name] : undefined;

/** Records one operation that is no unary call (a crypto session's message), as withAudit records a call. */
export type AuditOperation = (
  method: string,
  principal: Principal | undefined,
  request: unknown,
  response: unknown,
  /** "OK" or the HsmPoolError code it failed with. */
  result: string,
) => void;

/** The audit record of one operation: names, numbers and codes only, from its request and answer. */
export function auditEntryOf(
  method: string,
  principal: Principal | undefined,
  request: unknown,
  response: unknown,
  /** "OK" or the HsmPoolError code it failed with. */
  result: string,
  newRequestId: () => string,
): AuditEntry {
  const assignment = field(request, "assignment");
  const key = field(request, "name") ?? field(assignment, "id") ?? field(request, "id") ?? "";
  const version = field(response, "version") ?? field(request, "version") ?? 0;
  const requestId = field(request, "requestId");
  return {
    principal: principal?.name ?? "",
    principalId: principal?.oid ?? "",
    operation: method,
    key: typeof key === "string" ? key : "",
    version: typeof version === "number" ? version : 0,
    result,
    requestId: typeof requestId === "string" && requestId !== "" ? requestId : newRequestId(),
  };
}

export function withAudit(
  impl: grpc.UntypedServiceImplementation,
  opts: {
    audit: AuditLog;
    access: DataPlaneAccess;
    newRequestId: () => string;
    /** Methods that are not operations on the pool (reading the audit log itself). */
    skip?: readonly string[];
    onError: (e: unknown) => void;
  },
): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(impl)) {
    if (opts.skip?.includes(method)) {
      out[method] = handler;
      continue;
    }
    const h = handler as AnyUnary;
    out[method] = ((call, callback) => {
      h(call, (err, response) => {
        callback(err, response);
        // Recorded once the answer is out (an immediate runs after HTTP/2 wrote this turn's
        // frames): chaining and writing the record is no part of the caller's wait.
        setImmediate(() => {
          const code = err
            ? String((err as Partial<grpc.StatusObject>).metadata?.get(ERROR_CODE_TRAILER)[0] ?? "Internal")
            : "OK";
          opts.audit
            .record(
              auditEntryOf(
                method,
                opts.access.principalOf(call),
                call.request,
                response,
                code,
                opts.newRequestId,
              ),
            )
            .catch(opts.onError);
        });
      });
    }) as AnyUnary;
  }
  return out;
}
