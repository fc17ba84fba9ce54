/**
 * The node's CryptoSession handler over real grpc-js on loopback: each message is counted
 * in flight while it is served (the open stream is not), metered and audited under its
 * method with the principal its own authorisation named; a drain ends the session.
 */
import * as grpc from "@grpc/grpc-js";
import { HsmPoolError } from "@hsmpool/errors";
import { bindLoopback, CryptoSessionClient, fromServiceError, poolProto } from "@hsmpool/wire";
import { afterEach, expect, it } from "vitest";
import { NodeMetrics } from "../metrics/node-metrics.js";
import { type CallWithMetadata, DataPlaneAccess } from "./access.js";
import { CallsInFlight } from "./calls-in-flight.js";
import { type CryptoOperations, CryptoSessions } from "./crypto-session.js";

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

it("counts each message in flight while served, meters and audits it as its method, and drains", async () => {
  const access = new DataPlaneAccess(
    { tenant: () => null, assignmentsOf: () => [], definitions: () => new Map() },
    "https://pool.test",
    () => 0,
  );
  const release: (() => void)[] = [];
  const operations = {
    // Stands in for the real authorisation: a message whose token says "refuse" is Forbidden.
    Sign: async (r: { name: string }, call: CallWithMetadata) => {
      if (String(call.metadata.get("authorization")[0]) === "Bearer refuse")
        throw new HsmPoolError("Forbidden", "no role assignment grants it");
      await new Promise<void>((resolve) => release.push(resolve));
      return { signature: Buffer.from(r.name), version: 2, servedBy: "n1" };
    },
  } as unknown as CryptoOperations;
  const calls = new CallsInFlight();
  const audited: [string, string, string, number][] = [];
  const metrics = new NodeMetrics({ node: "n1", pool: "p" }, () => null, { processMetrics: false });
  const sessions = new CryptoSessions({
    operations,
    access,
    metrics,
    audit: (method, _principal, request, response, result) =>
      audited.push([
        method,
        (request as { name: string }).name,
        result,
        (response as { version?: number } | undefined)?.version ?? 0,
      ]),
    calls,
    onInternalError: (e) => {
      throw e;
    },
  });
  const server = new grpc.Server({ interceptors: [calls.interceptor] });
  server.addService(poolProto().KeyVault.service, { CryptoSession: sessions.handler });
  const port = await bindLoopback(server);
  const client = new (poolProto().KeyVault.ctor)(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  cleanup.push(() => {
    client.close();
    server.forceShutdown();
  });
  const sessionWith = (token: string) => {
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${token}`);
    return new CryptoSessionClient(client, metadata, "n1");
  };

  const session = sessionWith("ok");
  const signs = ["a", "b"].map((name) => session.call("Sign", { name, alg: "ES256" }, 30_000));
  await expect.poll(() => release.length, { timeout: 10_000 }).toBe(2);
  expect(calls.busy).toBe(true); // two messages are being served
  for (const r of release.splice(0)) r();
  expect((await Promise.all(signs)).map((r) => (r as { servedBy: string }).servedBy)).toEqual(["n1", "n1"]);
  await expect.poll(() => calls.busy, { timeout: 10_000 }).toBe(false); // the stream is still open: it is no work
  expect(session.usable).toBe(true);

  const refused = fromServiceError(
    await sessionWith("refuse")
      .call("Sign", { name: "c", alg: "ES256" }, 30_000)
      .catch((e) => e),
  ).error;
  expect(refused.code).toBe("Forbidden");
  await expect.poll(() => audited.length, { timeout: 10_000 }).toBe(3);
  expect(audited).toEqual([
    ["Sign", "a", "OK", 2],
    ["Sign", "b", "OK", 2],
    ["Sign", "c", "Forbidden", 0],
  ]);
  const exposition = await metrics.registry.metrics();
  expect(exposition).toMatch(/hsmpool_node_requests_total\{[^}]*operation="Sign"[^}]*result="ok"[^}]*\} 2/);
  expect(exposition).toMatch(/operation="Sign"[^}]*result="Forbidden"[^}]*\} 1/);

  sessions.drain();
  await expect.poll(() => session.usable, { timeout: 10_000 }).toBe(false);
  expect(calls.busy).toBe(false);
});
