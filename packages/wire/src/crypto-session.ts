/**
 * The KeyVault crypto session of proto/pool.proto (`CryptoSession`): Sign ... UnwrapKey
 * as messages on one long-lived bidirectional stream, both ends of it.
 * - Client: `CryptoSessionClient.call(method, request, deadlineMs)` sends one message and
 *   settles with its answer, its HsmPoolError, a Timeout once `deadlineMs` passed, or the
 *   stream's failure (every operation still waiting on a broken stream fails with it, so a
 *   caller's retry policy treats them as it treats failed unary calls).
 * - Server: `serveCryptoSession(call, serve)` answers each message with what `serve` gives
 *   for it, in any order, and ends the stream once the client has half-closed and every
 *   answer is out.
 * Errors cross as toServiceError makes them (Internal names no internals) and come back as
 * an HsmPoolError whose NotLeader details keep the leader hints (fromServiceError reads them).
 */
import type * as grpc from "@grpc/grpc-js";
import { type ErrorCode, HsmPoolError, isErrorCode } from "@hsmpool/errors";
import { ERROR_CODE_TRAILER, LEADER_ADDR_TRAILER, LEADER_TRAILER, toServiceError } from "./grpc-errors.js";

export const CRYPTO_METHODS = ["Sign", "Verify", "Encrypt", "Decrypt", "WrapKey", "UnwrapKey"] as const;
export type CryptoMethod = (typeof CRYPTO_METHODS)[number];

/** The oneof field of CryptoRequest / CryptoReply (proto-loader camelCase) for each method. */
const FIELD_OF: Readonly<Record<CryptoMethod, string>> = {
  Sign: "sign",
  Verify: "verify",
  Encrypt: "encrypt",
  Decrypt: "decrypt",
  WrapKey: "wrapKey",
  UnwrapKey: "unwrapKey",
};
const METHOD_OF: ReadonlyMap<string, CryptoMethod> = new Map(
  CRYPTO_METHODS.map((m) => [FIELD_OF[m], m] as const),
);

export function isCryptoMethod(method: string): method is CryptoMethod {
  return Object.hasOwn(FIELD_OF, method);
}

interface CryptoErrorMessage {
  code: string;
  message: string;
  leader: string;
  leaderAddr: string;
}

/** CryptoRequest / CryptoReply as proto-loader reads them (`op` / `result` name the oneof field that is set). */
export interface CryptoRequestMessage {
  id: number;
  op?: string;
  [field: string]: unknown;
}
export interface CryptoReplyMessage {
  id: number;
  result?: string;
  error?: CryptoErrorMessage | null;
  [field: string]: unknown;
}

/** The wire form of an operation's failure: the same code, message and leader hints as a unary call's status and trailers. */
export function cryptoErrorOf(e: unknown, server: string): CryptoErrorMessage {
  const status = toServiceError(e, server);
  const first = (key: string) => String(status.metadata?.get(key)[0] ?? "");
  return {
    code: first(ERROR_CODE_TRAILER),
    message: status.details ?? "",
    leader: first(LEADER_TRAILER),
    leaderAddr: first(LEADER_ADDR_TRAILER),
  };
}

function errorOfReply(m: CryptoErrorMessage): HsmPoolError {
  const code: ErrorCode = isErrorCode(m.code) ? m.code : "Internal";
  return new HsmPoolError(code, m.message, {
    ...(m.leader !== "" ? { leader: m.leader } : {}),
    ...(m.leaderAddr !== "" ? { leaderAddress: m.leaderAddr } : {}),
  });
}

/** An open session on the serving side. */
export interface ServedSession {
  /** Takes no more operations (they are answered ServiceUnavailable) and ends the stream once those under way are answered. */
  drain(): void;
}

/**
 * Serves one CryptoSession stream: each request message is answered with `serve(method,
 * request)` or its failure, under the message's id. A message naming no operation is
 * answered BadParameter. The stream ends once the client half-closed (or the session was
 * drained) and everything taken is answered; `onClosed` runs once the stream is over.
 */
export function serveCryptoSession(
  call: grpc.ServerDuplexStream<CryptoRequestMessage, CryptoReplyMessage>,
  serve: (method: CryptoMethod, request: unknown) => Promise<unknown>,
  options: { server?: string; onClosed?: () => void } = {},
): ServedSession {
  const server = options.server ?? "node";
  let open = 0;
  let closing = false;
  let over = false;
  const close = () => {
    if (over) return;
    over = true;
    options.onClosed?.();
  };
  const finish = () => {
    if (!closing || open > 0 || over) return;
    if (!call.cancelled) call.end();
    close();
  };
  const reply = (m: CryptoReplyMessage) => {
    open--;
    if (!call.cancelled && !call.destroyed && !over) call.write(m);
    finish();
  };
  call.on("data", (m: CryptoRequestMessage) => {
    if (over) return;
    open++;
    const id = m.id;
    if (closing) {
      const stopping = new HsmPoolError("ServiceUnavailable", "this member is stopping; retry at another", {
        retryable: true,
      });
      reply({ id, error: cryptoErrorOf(stopping, server) });
      return;
    }
    const method = m.op === undefined ? undefined : METHOD_OF.get(m.op);
    if (method === undefined) {
      const bad = new HsmPoolError("BadParameter", "a crypto session message names no operation");
      reply({ id, error: cryptoErrorOf(bad, server) });
      return;
    }
    const field = FIELD_OF[method];
    serve(method, m[field]).then(
      (res) => reply({ id, [field]: res }),
      (e: unknown) => reply({ id, error: cryptoErrorOf(e, server) }),
    );
  });
  call.on("end", () => {
    closing = true;
    finish();
  });
  // A reset stream (client gone) reports here; the answers still being made are dropped.
  call.on("error", close);
  call.on("cancelled", close);
  return {
    drain: () => {
      closing = true;
      finish();
    },
  };
}

interface Waiting {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout;
}

/**
 * The client end of one CryptoSession stream to one member, opened with the metadata
 * (bearer token) of every operation it carries. Once the stream failed or ended it is
 * `closed`: callers open a new session.
 */
export class CryptoSessionClient {
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private readonly stream: grpc.ClientDuplexStream<CryptoRequestMessage, CryptoReplyMessage>;
  private failure: unknown;
  private ended = false;

  constructor(
    client: grpc.Client,
    /** The metadata the stream was opened with (its bearer token): a caller with another opens another session. */
    readonly metadata: grpc.Metadata,
    private readonly address: string,
  ) {
    const open = (client as unknown as Record<string, (m: grpc.Metadata) => typeof this.stream>)
      .CryptoSession;
    if (typeof open !== "function") throw new Error("this client has no CryptoSession method");
    this.stream = open.call(client, metadata);
    this.stream.on("data", (m: CryptoReplyMessage) => this.answer(m));
    // grpc-js reports a failed stream as an error carrying its status; a clean end as `status` OK + `end`.
    this.stream.on("error", (e: unknown) => this.fail(e));
    this.stream.on("end", () =>
      this.fail(
        new HsmPoolError("ServiceUnavailable", `the crypto session to ${address} was closed by the member`),
      ),
    );
  }

  /** False once the stream failed, ended, or was ended by this side: new operations need a new session. */
  get usable(): boolean {
    return this.failure === undefined && !this.ended;
  }

  /** Operations waiting for their answer. */
  get inFlight(): number {
    return this.waiting.size;
  }

  /**
   * Sends one operation; settles with its answer, the HsmPoolError the member answered,
   * a Timeout after `deadlineMs`, or the stream's failure (a grpc-js status error).
   */
  call<Res>(method: CryptoMethod, request: object, deadlineMs: number): Promise<Res> {
    if (!this.usable)
      return Promise.reject(
        this.failure ??
          new HsmPoolError("ServiceUnavailable", `the crypto session to ${this.address} is closed`),
      );
    const id = this.nextId++;
    return new Promise<Res>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(
          new HsmPoolError("Timeout", `${method} at ${this.address}: no answer within ${deadlineMs} ms`),
        );
      }, deadlineMs);
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.stream.write({ id, [FIELD_OF[method]]: request });
    });
  }

  /** No more operations: the stream is half-closed, the waiting ones still get their answers. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.failure === undefined) this.stream.end();
  }

  /** Drops the stream; waiting operations fail with CANCELLED. */
  cancel(): void {
    this.ended = true;
    this.stream.cancel();
  }

  private answer(m: CryptoReplyMessage): void {
    const w = this.waiting.get(m.id);
    if (w === undefined) return; // Its deadline passed: nobody waits for it any more.
    this.waiting.delete(m.id);
    clearTimeout(w.timer);
    if (m.result === "error" && m.error) w.reject(errorOfReply(m.error));
    else if (m.result !== undefined) w.resolve(m[m.result]);
    else
      w.reject(new HsmPoolError("IntegrityError", `${this.address} sent a crypto answer without a result`));
  }

  private fail(e: unknown): void {
    this.failure ??= e;
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(this.failure);
    }
    this.waiting.clear();
  }
}
