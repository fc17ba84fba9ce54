/**
 * PoolClient against real grpc-js KeyVault servers on loopback with real fabric-PKI
 * mTLS (the HFC's FabricCa): redirects, bounded retries, error mapping.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { type ErrorCode, HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import { FabricCa } from "@hsmpool/hfc";
import {
  type CryptoReplyMessage,
  type CryptoRequestMessage,
  certDerToPem,
  createCsrKeyPair,
  poolProto,
  serveCryptoSession,
  type TlsClientMaterial,
  toServiceError,
} from "@hsmpool/wire";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { PoolClient } from "./pool-client.js";

let dir: string;
let ca: FabricCa;
let clientTls: TlsClientMaterial;
const servers: grpc.Server[] = [];
const clients: PoolClient[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hsmpool-sdk-"));
  ca = await FabricCa.openOrCreate(join(dir, "pki"));
  const keys = await createCsrKeyPair();
  const issued = await ca.issueClientCert(keys.csrDer);
  clientTls = {
    caCertPem: ca.caCertPem,
    certPem: certDerToPem(issued.certDer),
    privateKeyPem: keys.privateKeyPem,
  };
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) s.forceShutdown();
});
afterAll(() => rm(dir, { recursive: true, force: true }));

type Handler = (request: Record<string, unknown>) => unknown;
/** A handler result that leaves the call unanswered (a member that stopped: SIGSTOP, a partition). */
const HANG = Symbol("hang");

/** A KeyVault server with the given handlers (an Error/HsmPoolError result is sent as a failure) that counts calls. */
async function startServer(
  nodeId: string,
  handlers: Record<string, Handler>,
  issuer: FabricCa = ca,
): Promise<{
  address: string;
  calls: Record<string, number>;
  requests: Record<string, unknown>[];
  /** Each call's authorization value, in order. */
  authorizations: string[];
  /** The crypto session streams opened to it. */
  sessions: grpc.ServerDuplexStream<CryptoRequestMessage, CryptoReplyMessage>[];
}> {
  const keys = await createCsrKeyPair();
  const issued = await issuer.issueNodeCert(nodeId, "pool-test", keys.csrDer);
  const calls: Record<string, number> = {};
  const requests: Record<string, unknown>[] = [];
  const authorizations: string[] = [];
  const sessions: grpc.ServerDuplexStream<CryptoRequestMessage, CryptoReplyMessage>[] = [];
  const implementation: grpc.UntypedServiceImplementation = {
    // Crypto operations arrive as messages of a session: each is counted and answered as its unary method.
    CryptoSession: (call: grpc.ServerDuplexStream<CryptoRequestMessage, CryptoReplyMessage>) => {
      sessions.push(call);
      serveCryptoSession(call, async (method, request) => {
        calls[method] = (calls[method] ?? 0) + 1;
        requests.push(request as Record<string, unknown>);
        authorizations.push(String(call.metadata.get("authorization")[0] ?? ""));
        const handler = handlers[method];
        if (!handler) throw new HsmPoolError("Internal", "not in this test");
        const result = await handler(request as Record<string, unknown>);
        return result === HANG ? new Promise(() => {}) : result;
      });
    },
  };
  for (const method of Object.keys(poolProto().KeyVault.service)) {
    if (method === "CryptoSession") continue;
    implementation[method] = (
      call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      calls[method] = (calls[method] ?? 0) + 1;
      requests.push(call.request);
      authorizations.push(String(call.metadata.get("authorization")[0] ?? ""));
      const handler = handlers[method];
      if (!handler)
        return callback(
          toServiceError(new HsmPoolError("Internal", "not in this test")) as grpc.ServiceError,
        );
      try {
        const result = handler(call.request);
        if (result !== HANG) callback(null, result);
      } catch (e) {
        callback((e instanceof HsmPoolError ? toServiceError(e) : e) as grpc.ServiceError);
      }
    };
  }
  const server = new grpc.Server();
  server.addService(poolProto().KeyVault.service, implementation);
  const credentials = grpc.ServerCredentials.createSsl(
    Buffer.from(issuer.caCertPem),
    [{ private_key: keys.privateKeyPem, cert_chain: Buffer.from(certDerToPem(issued.certDer)) }],
    true,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", credentials, (e, p) => (e ? reject(e) : resolve(p))),
  );
  servers.push(server);
  return { address: `127.0.0.1:${port}`, calls, requests, authorizations, sessions };
}

function client(
  endpoints: string[],
  retry: Partial<ConstructorParameters<typeof PoolClient>[0]["retry"]> = {},
  cryptoEndpoints: string[] = [],
) {
  const c = new PoolClient({
    cryptoEndpoints,
    tls: clientTls,
    credential: { getToken: async () => ({ token: "test-token", expiresOnTimestamp: Date.now() + 60_000 }) },
    resource: "https://test-pool.managedhsm.hsmpool.local",
    endpoints,
    retry: { initialBackoffMs: 1, maxBackoffMs: 5, ...retry },
    callDeadlineMs: 2000,
  });
  clients.push(c);
  return c;
}

/**
 * The attempt deadline of tests where one member stops answering (it must time out) while another must answer
 * in time, through a fresh mTLS channel and session: 300 ms was too short on a loaded CI machine (a member that
 * answers timed out as well). A stopped member costs the test this long, once.
 */
const LIVE_MEMBER_ANSWERS_MS = 3000;

const signed = (servedBy: string) => () => ({ signature: Buffer.from([1, 2, 3]), version: 1, servedBy });

/** NotLeader as a member answers it: in trailers (hsmpool-leader, hsmpool-leader-addr) of a unary call, in the reply of a session message. */
function notLeader(leader: string, address: string): never {
  throw new HsmPoolError("NotLeader", "not the primary", { leader, leaderAddress: address });
}

async function rejection(p: Promise<unknown>): Promise<HsmPoolError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!isHsmPoolError(e)) throw new Error(`expected an HsmPoolError, got ${String(e)}`);
  return e;
}

describe("PoolClient", () => {
  it("spreads crypto operations over the synced members; a member that fails is skipped and the primary answers", async () => {
    let n2Up = true;
    const n1 = await startServer("n1", { Sign: signed("n1"), GetKey: () => notLeader("n1", "") });
    const n2 = await startServer("n2", {
      Sign: () => {
        if (!n2Up) throw new HsmPoolError("ServiceUnavailable", "n2 is stopping", { retryable: true });
        return signed("n2")();
      },
    });
    const n3 = await startServer("n3", { Sign: signed("n3") });
    const c = client([n1.address, n2.address, n3.address], {}, [n1.address, n2.address, n3.address]);
    const sign = async () => (await c.sign({ name: "k", alg: "ES256", data: new Uint8Array([1]) })).servedBy;
    const served: string[] = [];
    for (let i = 0; i < 6; i++) served.push(await sign());
    expect(served.sort()).toEqual(["n1", "n1", "n2", "n2", "n3", "n3"]);
    expect(c.currentTarget).toBe(n1.address); // the primary stays where writes go
    n2Up = false;
    const after: string[] = [];
    for (let i = 0; i < 6; i++) after.push(await sign());
    expect(n2.calls.Sign).toBe(3); // one failed attempt, then n2 is skipped
    expect(after.filter((x) => x === "n2")).toEqual([]);
    expect(after).toHaveLength(6);
  });

  it("follows a NotLeader redirect to the address in hsmpool-leader-addr and stays there", async () => {
    const primary = await startServer("n2", { Sign: signed("n2") });
    const secondary = await startServer("n1", { Sign: () => notLeader("n2", primary.address) });
    const c = client([secondary.address]);
    const r = await c.sign({ name: "k", alg: "ES256", data: new Uint8Array([9]) });
    expect(r.servedBy).toBe("n2");
    expect(Buffer.from(r.signature)).toEqual(Buffer.from([1, 2, 3]));
    expect(secondary.calls.Sign).toBe(1);
    expect(c.currentTarget).toBe(primary.address);
    await c.sign({ name: "k", alg: "ES256", data: new Uint8Array([9]) });
    expect(secondary.calls.Sign).toBe(1);
    expect(primary.calls.Sign).toBe(2);
  });

  it("gives up after maxAttempts on a pool that stays unavailable, saying so", async () => {
    const s = await startServer("n1", {
      Sign: () => {
        throw new HsmPoolError("NoQuorum", "no quorum: 1 of 3 voters reachable");
      },
    });
    const e = await rejection(
      client([s.address], { maxAttempts: 4 }).sign({ name: "k", alg: "ES256", data: new Uint8Array([1]) }),
    );
    expect(e.code).toBe("NoQuorum");
    expect(e.message).toMatch(/no quorum: 1 of 3 voters reachable \(gave up after 4 attempts\)/);
    expect(s.calls.Sign).toBe(4);
  });

  it("stops retrying when the total time budget is spent", async () => {
    const s = await startServer("n1", {
      Sign: () => {
        throw new HsmPoolError("ServiceUnavailable", "busy");
      },
    });
    // The client's own clock and sleep (its seams): only its backoffs advance time, so how long the
    // machine takes for each attempt does not change what is counted. 30 ms per backoff, 300 ms budget.
    let virtualMs = 0;
    const c = new PoolClient({
      tls: clientTls,
      credential: {
        getToken: async () => ({ token: "test-token", expiresOnTimestamp: Date.now() + 60_000 }),
      },
      resource: "https://test-pool.managedhsm.hsmpool.local",
      endpoints: [s.address],
      retry: { maxAttempts: 100, initialBackoffMs: 40, maxBackoffMs: 40, totalTimeoutMs: 300 },
      callDeadlineMs: 60_000,
      random: () => 0.5,
      nowMs: () => virtualMs,
      sleep: async (ms) => {
        virtualMs += ms;
      },
    });
    clients.push(c);
    const e = await rejection(c.sign({ name: "k", alg: "ES256", data: new Uint8Array([1]) }));
    expect(e.code).toBe("ServiceUnavailable");
    // Ten backoffs fit in 300 ms; the eleventh would end past it, so the eleventh attempt is the last.
    expect(e.message).toMatch(/gave up after 11 attempts in 300 ms/);
    expect(s.calls.Sign).toBe(11);
    expect(virtualMs).toBe(300);
  });

  it("does not retry a caller's mistake and keeps the server's code and message", async () => {
    const cases: [ErrorCode, string][] = [
      ["KeyNotFound", "key k was not found"],
      ["BadParameter", "alg must be one of RS256 ..."],
      ["OperationNotAllowed", "key k does not allow sign"],
    ];
    for (const [code, message] of cases) {
      const s = await startServer("n1", {
        Sign: () => {
          throw new HsmPoolError(code, message);
        },
      });
      const e = await rejection(
        client([s.address]).sign({ name: "k", alg: "ES256", data: new Uint8Array([1]) }),
      );
      expect([e.code, e.message]).toEqual([code, message]);
      expect(s.calls.Sign).toBe(1);
    }
  });

  it("reports a caller's mistake met after a retry exactly as the server said it", async () => {
    let calls = 0;
    const s = await startServer("n1", {
      Sign: () => {
        calls++;
        throw calls === 1
          ? new HsmPoolError("ServiceUnavailable", "electing")
          : new HsmPoolError("KeyNotFound", "key k does not exist");
      },
    });
    const e = await rejection(
      client([s.address]).sign({ name: "k", alg: "ES256", data: new Uint8Array([1]) }),
    );
    expect([e.code, e.message, calls]).toEqual(["KeyNotFound", "key k does not exist", 2]);
  });

  it("moves on from a member that is gone to one that answers", async () => {
    const dead = await startServer("n1", {});
    const deadAddress = dead.address;
    (servers.pop() as grpc.Server).forceShutdown();
    const live = await startServer("n2", { Sign: signed("n2") });
    const r = await client([deadAddress, live.address]).sign({
      name: "k",
      alg: "ES256",
      data: new Uint8Array([1]),
    });
    expect(r.servedBy).toBe("n2");
  });

  it("sends the same request id on every attempt of one create, a new one for the next create", async () => {
    let failuresLeft = 2;
    const bundle = (r: Record<string, unknown>) => ({
      name: r.name,
      version: 1,
      kty: "EC",
      crv: "P-256",
      ops: ["sign"],
      publicJwkJson: '{"kty":"EC"}',
    });
    const s = await startServer("n1", {
      CreateKey: (r) => {
        if (failuresLeft-- > 0) throw new HsmPoolError("ServiceUnavailable", "leader changing");
        return bundle(r);
      },
    });
    const c = client([s.address]);
    const key = await c.createKey({ name: "k1", kty: "EC", crv: "P-256" });
    expect(key.publicJwk).toEqual({ kty: "EC" });
    await c.createKey({ name: "k2", kty: "EC" });
    const ids = s.requests.map((r) => r.requestId as string);
    expect(ids).toHaveLength(4);
    expect(new Set(ids.slice(0, 3)).size).toBe(1);
    expect(ids[3]).not.toBe(ids[0]);
    expect(ids[0]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("a primary that stops answering holds a write for one attempt; stale hints naming it are not followed", async () => {
    const bundle = (r: Record<string, unknown>) => ({ name: r.name, version: 1, kty: "EC", crv: "P-256" });
    const stopped = await startServer("n1", { CreateKey: () => HANG });
    // The other member still names the stopped primary twice (its election is under way), then is elected.
    let staleHints = 2;
    const next = await startServer("n2", {
      CreateKey: (r) => (staleHints-- > 0 ? notLeader("n1", stopped.address) : bundle(r)),
    });
    const c = new PoolClient({
      tls: clientTls,
      credential: {
        getToken: async () => ({ token: "test-token", expiresOnTimestamp: Date.now() + 60_000 }),
      },
      resource: "https://test-pool.managedhsm.hsmpool.local",
      endpoints: [stopped.address, next.address],
      primaryAddress: stopped.address,
      retry: { initialBackoffMs: 1, maxBackoffMs: 5 },
      // The operation could wait a minute; one attempt may not.
      callDeadlineMs: 60_000,
      attemptDeadlineMs: LIVE_MEMBER_ANSWERS_MS,
    });
    clients.push(c);
    const key = await c.createKey({ name: "k1", kty: "EC", crv: "P-256" });
    expect(key.name).toBe("k1");
    expect(stopped.calls.CreateKey).toBe(1);
    expect(next.calls.CreateKey).toBe(3);
    expect(c.currentTarget).toBe(next.address);
    const ids = [...stopped.requests, ...next.requests].map((r) => r.requestId);
    expect(new Set(ids).size).toBe(1); // every attempt is the same create
  });

  it("a primary that is only slow (its followers keep naming it) gets the write again before its suspicion lapses; the polls back off meanwhile", async () => {
    const bundle = (r: Record<string, unknown>) => ({ name: r.name, version: 1, kty: "RSA" });
    // Busy past its first attempt's deadline (an RSA-3072 create on a loaded machine), then it answers.
    let busy = 1;
    const slow = await startServer("n1", { CreateKey: (r) => (busy-- > 0 ? HANG : bundle(r)) });
    const followers = await Promise.all(
      ["n2", "n3"].map((id) => startServer(id, { CreateKey: () => notLeader("n1", slow.address) })),
    );
    const c = new PoolClient({
      tls: clientTls,
      credential: {
        getToken: async () => ({ token: "test-token", expiresOnTimestamp: Date.now() + 60_000 }),
      },
      resource: "https://test-pool.managedhsm.hsmpool.local",
      endpoints: [slow.address, ...followers.map((f) => f.address)],
      primaryAddress: slow.address,
      // The default policy: at its leaderless cadence (50-100 ms) the 6 s suspicion after a 3 s attempt is ~60
      // answers naming the busy primary, more than its 40 attempts (how key-surface's RSA-3072 create gave up).
      callDeadlineMs: 60_000,
      attemptDeadlineMs: LIVE_MEMBER_ANSWERS_MS,
    });
    clients.push(c);
    const key = await c.createKey({ name: "rsa1", kty: "RSA" });
    expect(key.name).toBe("rsa1");
    expect(slow.calls.CreateKey).toBe(2);
    const polls = followers.map((f) => f.calls.CreateKey ?? 0);
    // Both followers vouched for it (after the suspicion was older than the attempt's deadline)...
    expect(Math.min(...polls)).toBeGreaterThanOrEqual(1);
    // ...after a handful of backed-off polls (25-50, 50-100, ... 500-1000 ms: at most 10 in the 3 s before the
    // suspicion is stale, then one from each follower), however slow the machine.
    expect(polls.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(14);
    expect(c.currentTarget).toBe(slow.address);
  }, 30_000);

  it("reuses a token without asking the credential until it nears expiry, then sends the fresh one", async () => {
    const s = await startServer("n1", { Sign: signed("n1") });
    let nowMs = 1_000_000;
    const asked: number[] = [];
    const c = new PoolClient({
      tls: clientTls,
      credential: {
        getToken: async () => {
          asked.push(nowMs);
          return { token: `token-${asked.length}`, expiresOnTimestamp: nowMs + 600_000 };
        },
      },
      resource: "https://test-pool.managedhsm.hsmpool.local",
      endpoints: [s.address],
      nowMs: () => nowMs,
    });
    clients.push(c);
    const sign = () => c.sign({ name: "k", alg: "ES256", data: new Uint8Array([1]) });
    await sign();
    nowMs += 400_000; // 200 s of the token's life left: still reused
    await sign();
    await sign();
    expect(asked).toEqual([1_000_000]);
    nowMs += 60_000; // 140 s left: within the refresh window, so the credential is asked again
    await sign();
    expect(asked).toEqual([1_000_000, 1_460_000]);
    expect(s.authorizations).toEqual([
      "Bearer token-1",
      "Bearer token-1",
      "Bearer token-1",
      "Bearer token-2",
    ]);
    // A session carries one token: the fresh one came on a second session.
    expect(s.sessions).toHaveLength(2);
  });

  it("a crypto retry asks every other member at once; members still silent get no further crypto calls", async () => {
    // n1 stopped (SIGSTOP); n2 waits on its ReadIndex barrier (its primary stopped); n3 answers.
    const n1 = await startServer("n1", { Sign: () => HANG });
    const n2 = await startServer("n2", { Sign: () => HANG });
    const n3 = await startServer("n3", { Sign: signed("n3") });
    const members = [n1.address, n2.address, n3.address];
    const c = new PoolClient({
      tls: clientTls,
      credential: {
        getToken: async () => ({ token: "test-token", expiresOnTimestamp: Date.now() + 60_000 }),
      },
      resource: "https://test-pool.managedhsm.hsmpool.local",
      endpoints: members,
      cryptoEndpoints: members,
      // Two attempts: one at a time, n1 then n2 would both time out.
      retry: { initialBackoffMs: 1, maxBackoffMs: 5, maxAttempts: 2 },
      callDeadlineMs: 60_000,
      attemptDeadlineMs: LIVE_MEMBER_ANSWERS_MS,
    });
    clients.push(c);
    const sign = async () => (await c.sign({ name: "k", alg: "ES256", data: new Uint8Array([1]) })).servedBy;
    // Round-robin starts at n1: its attempt times out, then n2 and n3 are asked together.
    expect(await sign()).toBe("n3");
    expect([n1.calls.Sign, n2.calls.Sign, n3.calls.Sign]).toEqual([1, 1, 1]);
    // n2 has not answered yet: like n1 it is skipped, so the next signs go straight to n3.
    for (let i = 0; i < 4; i++) expect(await sign()).toBe("n3");
    expect([n1.calls.Sign, n2.calls.Sign, n3.calls.Sign]).toEqual([1, 1, 5]);
  });

  it("a crypto retry settles on the first refusal that is an answer (KeyNotFound), not on the silent member", async () => {
    const n1 = await startServer("n1", {
      Sign: () => {
        throw new HsmPoolError("ServiceUnavailable", "stopping");
      },
    });
    const n2 = await startServer("n2", { Sign: () => HANG });
    const n3 = await startServer("n3", {
      Sign: () => {
        throw new HsmPoolError("KeyNotFound", "key k was not found");
      },
    });
    const members = [n1.address, n2.address, n3.address];
    // Two attempts: one at a time, the second would wait on n2 until its deadline.
    const c = client(members, { maxAttempts: 2 }, members);
    const e = await rejection(c.sign({ name: "k", alg: "ES256", data: new Uint8Array([1]) }));
    expect([e.code, e.message]).toEqual(["KeyNotFound", "key k was not found"]);
    expect([n1.calls.Sign, n2.calls.Sign, n3.calls.Sign]).toEqual([1, 1, 1]);
  });

  it("refuses a server whose certificate is not from the fabric CA", async () => {
    const otherCa = await FabricCa.openOrCreate(join(dir, "other-pki"));
    const s = await startServer("n1", { Sign: signed("n1") }, otherCa);
    const e = await rejection(
      client([s.address], { maxAttempts: 2 }).sign({ name: "k", alg: "ES256", data: new Uint8Array([1]) }),
    );
    expect(e.code).toBe("ServiceUnavailable");
    expect(s.calls.Sign).toBeUndefined();
  });

  it("crypto operations share one session per member; answers come back by id, in any order", async () => {
    const waiting: (() => void)[] = [];
    const s = await startServer("n1", {
      // Each signature is the data it was asked for, and all wait until ten have arrived; then answered last first.
      Sign: (r) =>
        new Promise((resolve) => {
          waiting.push(() => resolve({ signature: r.data, version: 1, servedBy: "n1" }));
          if (waiting.length === 10) for (const answer of waiting.reverse()) answer();
        }),
    });
    const c = client([s.address]);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => c.sign({ name: "k", alg: "ES256", data: new Uint8Array([i]) })),
    );
    expect(results.map((r) => [...r.signature])).toEqual(Array.from({ length: 10 }, (_, i) => [i]));
    expect(s.sessions).toHaveLength(1);
    expect(s.calls.Sign).toBe(10);
  });

  it("a crypto operation whose attempt deadline passes fails with Timeout; the session carries the next one", async () => {
    let first = true;
    const s = await startServer("n1", {
      Sign: () => {
        if (!first) return signed("n1")();
        first = false;
        return HANG;
      },
    });
    const c = new PoolClient({
      tls: clientTls,
      credential: {
        getToken: async () => ({ token: "test-token", expiresOnTimestamp: Date.now() + 600_000 }),
      },
      resource: "https://test-pool.managedhsm.hsmpool.local",
      endpoints: [s.address],
      retry: { maxAttempts: 1 },
      callDeadlineMs: 60_000,
      attemptDeadlineMs: LIVE_MEMBER_ANSWERS_MS,
    });
    clients.push(c);
    const e = await rejection(c.sign({ name: "k", alg: "ES256", data: new Uint8Array([1]) }));
    expect(e.code).toBe("Timeout");
    expect(e.message).toMatch(new RegExp(`Sign at .* no answer within ${LIVE_MEMBER_ANSWERS_MS} ms`));
    expect((await c.sign({ name: "k", alg: "ES256", data: new Uint8Array([1]) })).servedBy).toBe("n1");
    expect(s.sessions).toHaveLength(1);
  });

  it("operations waiting on a session that breaks are retried at another member at once, not after their deadline", async () => {
    const n1 = await startServer("n1", { Sign: () => HANG });
    const n2 = await startServer("n2", { Sign: signed("n2") });
    const n1Server = servers[servers.length - 2] as grpc.Server;
    const members = [n1.address, n2.address];
    const c = new PoolClient({
      tls: clientTls,
      credential: {
        getToken: async () => ({ token: "test-token", expiresOnTimestamp: Date.now() + 600_000 }),
      },
      resource: "https://test-pool.managedhsm.hsmpool.local",
      endpoints: members,
      cryptoEndpoints: members,
      retry: { initialBackoffMs: 1, maxBackoffMs: 5, maxAttempts: 2 },
      // Only the broken stream can move these operations on within the test's time.
      callDeadlineMs: 600_000,
      attemptDeadlineMs: 600_000,
    });
    clients.push(c);
    // Round-robin: the first and third go to n1 and wait there; the second is answered by n2.
    const signs = [1, 2, 3].map((i) => c.sign({ name: "k", alg: "ES256", data: new Uint8Array([i]) }));
    await vi.waitFor(() => expect(n1.calls.Sign).toBe(2), { timeout: 30_000 });
    n1Server.forceShutdown(); // the member dies with two operations on its session
    const served = (await Promise.all(signs)).map((r) => r.servedBy);
    expect(served).toEqual(["n2", "n2", "n2"]);
    expect(n2.calls.Sign).toBe(3);
  });
});
