/**
 * The crypto session protocol, both ends over real grpc-js on loopback (no TLS: the
 * protocol, not the transport, is under test here; the SDK's tests run it over mTLS).
 */
import * as grpc from "@grpc/grpc-js";
import { HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import { afterEach, describe, expect, it } from "vitest";
import {
  type CryptoReplyMessage,
  type CryptoRequestMessage,
  CryptoSessionClient,
  type ServedSession,
  serveCryptoSession,
} from "./crypto-session.js";
import { fromServiceError } from "./grpc-errors.js";
import { bindLoopback } from "./loopback-server.js";
import { poolProto } from "./proto.js";

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

type Serve = Parameters<typeof serveCryptoSession>[1];

async function start(
  serve: Serve,
): Promise<{ client: grpc.Client; server: grpc.Server; served: ServedSession[]; closed: number[] }> {
  const served: ServedSession[] = [];
  const closed: number[] = [];
  const server = new grpc.Server();
  server.addService(poolProto().KeyVault.service, {
    CryptoSession: (call: grpc.ServerDuplexStream<CryptoRequestMessage, CryptoReplyMessage>) => {
      const index = served.length;
      served.push(serveCryptoSession(call, serve, { onClosed: () => closed.push(index) }));
    },
  });
  const port = await bindLoopback(server);
  const client = new (poolProto().KeyVault.ctor)(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  cleanup.push(() => {
    client.close();
    server.forceShutdown();
  });
  return { client, server, served, closed };
}

async function failureOf(p: Promise<unknown>): Promise<HsmPoolError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  const failure = fromServiceError(e).error;
  if (!isHsmPoolError(failure)) throw new Error(`expected a failure, got ${String(e)}`);
  return failure;
}

const sign = { name: "k", version: 0, alg: "ES256", data: Buffer.from([1]) };

describe("crypto session", () => {
  it("carries each method's request to the server and its answer back, under the metadata it was opened with", async () => {
    const seen: [string, unknown][] = [];
    const { client } = await start(async (method, request) => {
      seen.push([method, (request as { name: string }).name]);
      return method === "Verify"
        ? { valid: true }
        : { signature: Buffer.from([7]), version: 3, servedBy: "n1" };
    });
    const metadata = new grpc.Metadata();
    const session = new CryptoSessionClient(client, metadata, "n1");
    expect(session.metadata).toBe(metadata);
    const signed = await session.call<{ signature: Buffer; version: number }>("Sign", sign, 10_000);
    const verified = await session.call<{ valid: boolean }>(
      "Verify",
      { ...sign, name: "v", signature: Buffer.from([7]) },
      10_000,
    );
    expect([[...signed.signature], signed.version, verified.valid]).toEqual([[7], 3, true]);
    expect(seen).toEqual([
      ["Sign", "k"],
      ["Verify", "v"],
    ]);
  });

  it("a failed operation comes back as its HsmPoolError with the leader hints; an unexpected one names no internals", async () => {
    const { client } = await start(async (_method, request) => {
      const name = (request as { name: string }).name;
      if (name === "moved")
        throw new HsmPoolError("NotLeader", "not the primary", {
          leader: "n2",
          leaderAddress: "127.0.0.1:9",
        });
      if (name === "missing") throw new HsmPoolError("KeyNotFound", "key missing was not found");
      throw new Error("secret internal detail /var/lib/state");
    });
    const session = new CryptoSessionClient(client, new grpc.Metadata(), "n1");
    const moved = fromServiceError(
      await session.call("Sign", { ...sign, name: "moved" }, 10_000).catch((e) => e),
    );
    expect([moved.error.code, moved.leaderId, moved.leaderAddress]).toEqual([
      "NotLeader",
      "n2",
      "127.0.0.1:9",
    ]);
    const missing = await failureOf(session.call("Sign", { ...sign, name: "missing" }, 10_000));
    expect([missing.code, missing.message]).toEqual(["KeyNotFound", "key missing was not found"]);
    const internal = await failureOf(session.call("Sign", sign, 10_000));
    expect(internal.code).toBe("Internal");
    expect(internal.message).not.toContain("secret");
    expect(session.usable).toBe(true); // failures are answers: the stream goes on
  });

  it("answers a message that names no operation with BadParameter", async () => {
    const { client } = await start(async () => ({ valid: true }));
    const stream = (
      client as unknown as {
        CryptoSession: (m: grpc.Metadata) => grpc.ClientDuplexStream<object, CryptoReplyMessage>;
      }
    ).CryptoSession(new grpc.Metadata());
    stream.on("error", () => {}); // its cancel below
    const reply = new Promise<CryptoReplyMessage>((resolve) => stream.once("data", resolve));
    stream.write({ id: 41 });
    const r = await reply;
    expect([r.id, r.result, r.error?.code]).toEqual([41, "error", "BadParameter"]);
    stream.cancel();
  });

  it("an operation past its deadline fails with Timeout; its late answer is dropped and the session goes on", async () => {
    let release: (() => void) | undefined;
    const { client } = await start(async (_method, request) => {
      if ((request as { name: string }).name === "slow") await new Promise<void>((r) => (release = r));
      return { valid: true };
    });
    const session = new CryptoSessionClient(client, new grpc.Metadata(), "n1");
    const late = await failureOf(session.call("Verify", { ...sign, name: "slow" }, 100));
    expect(late.code).toBe("Timeout");
    release?.();
    expect(await session.call("Verify", sign, 10_000)).toEqual({ valid: true });
    expect(session.inFlight).toBe(0);
  });

  it("a drained session answers what it took, refuses later operations as retryable, then ends", async () => {
    let release: (() => void) | undefined;
    const { client, served, closed } = await start(async () => {
      await new Promise<void>((r) => (release = r));
      return { valid: true };
    });
    const session = new CryptoSessionClient(client, new grpc.Metadata(), "n1");
    const taken = session.call("Verify", sign, 10_000);
    await expect.poll(() => release !== undefined, { timeout: 10_000 }).toBe(true);
    served[0]?.drain();
    const refused = await failureOf(session.call("Verify", sign, 10_000));
    expect(refused.code).toBe("ServiceUnavailable");
    release?.();
    expect(await taken).toEqual({ valid: true });
    await expect.poll(() => closed, { timeout: 10_000 }).toEqual([0]);
    await expect.poll(() => session.usable, { timeout: 10_000 }).toBe(false);
    const after = await failureOf(session.call("Verify", sign, 10_000));
    expect(after.code).toBe("ServiceUnavailable");
  });

  it("a stream that breaks fails every operation waiting on it with a retryable code", async () => {
    const { client, server } = await start(() => new Promise(() => {}));
    const session = new CryptoSessionClient(client, new grpc.Metadata(), "n1");
    const waiting = [1, 2, 3].map(() => failureOf(session.call("Sign", sign, 60_000)));
    await expect.poll(() => session.inFlight, { timeout: 10_000 }).toBe(3);
    server.forceShutdown(); // the member goes away
    const codes = (await Promise.all(waiting)).map((e) => e.code);
    expect(new Set(codes).size).toBe(1);
    expect(codes[0]).toBe("ServiceUnavailable");
    expect(session.usable).toBe(false);
  });
});
