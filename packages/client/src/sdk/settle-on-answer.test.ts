/**
 * settleOnAnswer against a real grpc-js server on loopback whose status can be held
 * back after the answer: a unary call settles on its message while the member's
 * trailers are still withheld; refusals (trailers-only) keep their code and trailers;
 * an answer the client cannot decode is an error, not a success; streams are untouched.
 */
import * as grpc from "@grpc/grpc-js";
import { bindLoopback } from "@hsmpool/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { settleOnAnswer } from "./settle-on-answer.js";

const bytes = (b: Buffer) => b;
const method = (path: string, responseStream = false) => ({
  path,
  requestStream: false,
  responseStream,
  requestSerialize: bytes,
  requestDeserialize: bytes,
  responseSerialize: bytes,
  responseDeserialize: (b: Buffer) => {
    if (b.toString() === "garbled") throw new Error("cannot decode");
    return b;
  },
});
const service: grpc.ServiceDefinition = {
  Echo: method("/t.T/Echo"),
  Refuse: method("/t.T/Refuse"),
  Stream: method("/t.T/Stream", true),
};

/** Statuses the server holds back until the test lets them go (`release`). */
class HeldStatus {
  private held: (() => void)[] = [];
  holding = false;

  readonly interceptor: grpc.ServerInterceptor = (_method, call) =>
    new grpc.ServerInterceptingCall(call, {
      sendStatus: (status, next) => {
        if (this.holding) this.held.push(() => next(status));
        else next(status);
      },
    });

  release(): number {
    const n = this.held.length;
    for (const send of this.held.splice(0)) send();
    return n;
  }
}

/** A generic client's methods, by name. */
type Methods = Record<string, ((...args: unknown[]) => unknown) | undefined>;

describe("settleOnAnswer", () => {
  const hold = new HeldStatus();
  let server: grpc.Server;
  let client: grpc.Client;

  beforeAll(async () => {
    server = new grpc.Server({ interceptors: [hold.interceptor] });
    server.addService(service, {
      Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
        cb(null, call.request),
      Refuse: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const trailers = new grpc.Metadata();
        trailers.set("x-error-code", "NotLeader");
        cb({ code: grpc.status.FAILED_PRECONDITION, details: "not the primary", metadata: trailers });
      },
      Stream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        call.write(Buffer.from("a"));
        call.write(Buffer.from("b"));
        call.end();
      },
    });
    const port = await bindLoopback(server);
    const Ctor = grpc.makeGenericClientConstructor(service, "T");
    client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
      interceptors: [settleOnAnswer],
    });
  });

  afterAll(() => {
    hold.holding = false;
    hold.release();
    client.close();
    server.forceShutdown();
  });

  const unary = (name: string, payload: string): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const fn = (client as unknown as Methods)[name];
      // The deadline only bounds a failure: a call that waited for the held status would end in DEADLINE_EXCEEDED.
      fn?.call(
        client,
        Buffer.from(payload),
        { deadline: Date.now() + 20_000 },
        (e: Error | null, v: Buffer) => (e ? reject(e) : resolve(v)),
      );
    });

  it("settles a unary call on its answer while the member still holds its status", async () => {
    hold.holding = true;
    try {
      const answer = await unary("Echo", "ping");
      expect(answer.toString()).toBe("ping");
      expect(hold.release()).toBe(1);
    } finally {
      hold.holding = false;
      hold.release();
    }
  });

  it("keeps a refusal's code and trailers (no answer, so the status settles it)", async () => {
    const e = (await unary("Refuse", "x").catch((err: unknown) => err)) as grpc.ServiceError;
    expect(e.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(e.details).toBe("not the primary");
    expect(e.metadata.get("x-error-code")).toEqual(["NotLeader"]);
  });

  it("reports an answer it cannot decode as an error, not a success", async () => {
    const e = (await unary("Echo", "garbled").catch((err: unknown) => err)) as grpc.ServiceError;
    expect(e.code).toBe(grpc.status.INTERNAL);
  });

  it("leaves streaming calls to their status", async () => {
    const got = await new Promise<string[]>((resolve, reject) => {
      const out: string[] = [];
      const s = (client as unknown as Methods).Stream?.call(client, Buffer.from("go"), {
        deadline: Date.now() + 20_000,
      }) as grpc.ClientReadableStream<Buffer>;
      s.on("data", (b: Buffer) => out.push(b.toString()));
      s.on("error", reject);
      s.on("end", () => resolve(out));
    });
    expect(got).toEqual(["a", "b"]);
  });
});
