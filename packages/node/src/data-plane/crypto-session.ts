/**
 * KeyVault's CryptoSession method (proto/pool.proto): every message on the stream is
 * served as its unary method is: authorised on its own against the stream's bearer token
 * at that moment and the member's current RBAC state (cryptoOperations), counted in the
 * request metrics under the method's name, audited as one operation, and counted as a call
 * in flight while it is served (not the stream: an idle open session is no work).
 */
import type * as grpc from "@grpc/grpc-js";
import { isHsmPoolError } from "@hsmpool/errors";
import { secondsSince } from "@hsmpool/metrics";
import {
  type CryptoMethod,
  type CryptoReplyMessage,
  type CryptoRequestMessage,
  type ServedSession,
  serveCryptoSession,
} from "@hsmpool/wire";
import type { NodeMetrics } from "../metrics/node-metrics.js";
import type { CallWithMetadata, DataPlaneAccess } from "./access.js";
import type { AuditOperation } from "./audited.js";
import type { CallsInFlight } from "./calls-in-flight.js";

export type CryptoOperations = Record<
  CryptoMethod,
  (request: never, call: CallWithMetadata) => Promise<unknown>
>;

/** The sessions this member serves: one handler for the data-plane server, drained when it closes. */
export class CryptoSessions {
  private readonly open = new Set<ServedSession>();
  readonly handler: grpc.handleBidiStreamingCall<CryptoRequestMessage, CryptoReplyMessage>;

  constructor(opts: CryptoSessionOptions) {
    const serve = serveOperation(opts);
    this.handler = (call) => {
      const session = serveCryptoSession(call, (method, request) => serve(call, method, request), {
        onClosed: () => this.open.delete(session),
      });
      this.open.add(session);
    };
  }

  /** A closing server: every session ends once what it took is answered (clients retry the rest elsewhere). */
  drain(): void {
    for (const s of this.open) s.drain();
  }
}

interface CryptoSessionOptions {
  operations: CryptoOperations;
  access: DataPlaneAccess;
  metrics: NodeMetrics;
  audit: AuditOperation;
  calls: CallsInFlight;
  onInternalError(e: unknown): void;
}

function serveOperation(
  opts: CryptoSessionOptions,
): (call: CallWithMetadata, method: CryptoMethod, request: unknown) => Promise<unknown> {
  return async (call, method, request) => {
    const started = process.hrtime.bigint();
    // Each message is its own call for authorisation: the principal it authenticated as is its own.
    const message: CallWithMetadata = { metadata: call.metadata };
    opts.calls.enter();
    let result = "OK";
    let response: unknown;
    try {
      response = await opts.operations[method](request as never, message);
      return response;
    } catch (e) {
      if (!isHsmPoolError(e)) opts.onInternalError(e);
      result = isHsmPoolError(e) ? e.code : "Internal";
      throw e;
    } finally {
      opts.metrics.request(method, result === "OK" ? "ok" : result, secondsSince(started));
      if (result === "Unauthenticated" || result === "Forbidden")
        opts.metrics.authorizationRefused(method, result);
      // After the answer is written (this promise settles first, the write follows in a microtask).
      setImmediate(() => {
        opts.calls.leave();
        opts.audit(method, opts.access.principalOf(message), request, response, result);
      });
    }
  };
}
