/**
 * The join loop against real gRPC servers on loopback (plain credentials stand in for
 * the attested channel, whose refusals are injected through lastRejection): it follows
 * hints to the primary, stops once a member, gives up for good answers, handshake
 * refusals and timeouts with the reason, and never spins on bouncing hints.
 */

import * as grpc from "@grpc/grpc-js";
import type { AttestedChannel } from "@hsmpool/attested-tls";
import { HsmPoolError } from "@hsmpool/errors";
import { bindLoopback } from "@hsmpool/wire";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { clusterProto, type JoinRequestWire, type JoinResponseWire } from "../cluster/cluster-proto.js";
import { systemClock, systemRandomness } from "../seams/index.js";
import { freePort } from "../testing/cluster.js";
import { classifyJoinError, grpcJoin } from "./join-client.js";
import { Joiner, type JoinFailure } from "./joiner.js";

type Answer = (request: JoinRequestWire) => JoinResponseWire | Partial<grpc.StatusObject>;

const servers: grpc.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.forceShutdown();
});

async function fakeMember(answer: Answer): Promise<{ address: string; calls: JoinRequestWire[] }> {
  const calls: JoinRequestWire[] = [];
  const server = new grpc.Server();
  server.addService(clusterProto().membershipService, {
    Join: (
      call: grpc.ServerUnaryCall<JoinRequestWire, JoinResponseWire>,
      cb: grpc.sendUnaryData<JoinResponseWire>,
    ) => {
      calls.push(call.request);
      const a = answer(call.request);
      if ("accepted" in a) cb(null, a as JoinResponseWire);
      else cb(a as grpc.ServiceError);
    },
  });
  const port = await bindLoopback(server);
  servers.push(server);
  return { address: `127.0.0.1:${port}`, calls };
}

function plainChannel(rejection?: HsmPoolError): AttestedChannel {
  return {
    credentials: grpc.credentials.createInsecure(),
    channelOptions: {},
    serverIdentity: () => undefined,
    lastRejection: () => rejection,
  };
}

const REQUEST: JoinRequestWire = {
  nodeId: "n4",
  peerAddress: "127.0.0.1:7104",
  dataAddress: "127.0.0.1:7204",
  replaces: "n2",
};

function joiner(
  peers: { id: string; address: string }[],
  opts: { isMember?: () => boolean; timeoutMs?: number; rejection?: HsmPoolError } = {},
) {
  const failures: JoinFailure[] = [];
  const j = new Joiner({
    request: REQUEST,
    peers,
    join: grpcJoin(() => plainChannel(opts.rejection)),
    isMember: opts.isMember ?? (() => false),
    timeoutMs: opts.timeoutMs ?? 10_000,
    attemptTimeoutMs: 1_000,
    acceptedRecheckMs: 50,
    logger: pino({ level: "silent" }),
    clock: systemClock,
    random: { ...systemRandomness, float: () => 0.5 },
    onGiveUp: (f) => failures.push(f),
  });
  return { j, failures };
}

const redirect = (leaderId: string, leaderAddress = ""): JoinResponseWire => ({
  accepted: false,
  leaderId,
  leaderAddress,
  message: "not the primary",
});

describe("Joiner", () => {
  it("follows a secondary's hint to the primary and stops once Raft made it a member", async () => {
    let member = false;
    const primary = await fakeMember(() => {
      setTimeout(() => (member = true), 50);
      return { accepted: true, leaderId: "n1", leaderAddress: "", message: "registered" };
    });
    const secondary = await fakeMember(() => redirect("n1", primary.address));
    const { j, failures } = joiner([{ id: "n2", address: secondary.address }], { isMember: () => member });
    await j.run();
    expect(member).toBe(true);
    expect(secondary.calls).toEqual([REQUEST]);
    expect(primary.calls).toEqual([REQUEST]);
    expect(failures).toEqual([]);
  });

  it("gives up at once, reason pool, when the primary refuses for good", async () => {
    const primary = await fakeMember(() => ({
      code: grpc.status.FAILED_PRECONDITION,
      details: "cannot replace n2: it is not a member of the pool [Conflict]",
    }));
    const { j, failures } = joiner([{ id: "n1", address: primary.address }]);
    await j.run();
    expect(primary.calls).toHaveLength(1);
    expect(failures).toEqual([
      {
        reason: "pool",
        code: "Conflict",
        error: "cannot replace n2: it is not a member of the pool [Conflict]",
        peers: { n1: "refused [Conflict]" },
      },
    ]);
  });

  it("keeps asking through retryable answers (NoQuorum) until a member admits it", async () => {
    let member = false;
    let n = 0;
    const primary = await fakeMember(() => {
      if (++n < 3)
        return { code: grpc.status.UNAVAILABLE, details: "no quorum: 1 of 3 voters reachable [NoQuorum]" };
      member = true;
      return { accepted: true, leaderId: "n1", leaderAddress: "", message: "registered" };
    });
    const { j, failures } = joiner([{ id: "n1", address: primary.address }], { isMember: () => member });
    await j.run();
    expect(primary.calls).toHaveLength(3);
    expect(failures).toEqual([]);
  });

  it("gives up with reason attestation (naming the check) once every member refused the handshake twice", async () => {
    const refusal = new HsmPoolError("AttestationFailed", "peer rejected (signer): unknown signer", {
      check: "signer",
    });
    const peers = [
      { id: "n1", address: `127.0.0.1:${await freePort()}` },
      { id: "n2", address: `127.0.0.1:${await freePort()}` },
    ];
    const { j, failures } = joiner(peers, { rejection: refusal });
    await j.run();
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({
      reason: "attestation",
      check: "signer",
      peers: { n1: "attestation refused (signer)", n2: "attestation refused (signer)" },
    });
  });

  it("gives up with reason timeout when no member answers, and does not spin on hints that bounce", async () => {
    const unreachable = { id: "n3", address: `127.0.0.1:${await freePort()}` };
    const timedOut = joiner([unreachable], { timeoutMs: 1_200 });
    await timedOut.j.run();
    expect(timedOut.failures[0]).toMatchObject({ reason: "timeout" });
    expect(timedOut.failures[0]?.peers.n3).toMatch(/^unreachable: .*ECONNREFUSED/);

    const a = await fakeMember(() => redirect("n2", b.address));
    const b: { address: string; calls: JoinRequestWire[] } = await fakeMember(() =>
      redirect("n1", a.address),
    );
    // 3 s: room for the third call (after two gRPC connects and a 200 ms backoff) on a loaded machine; the backoff
    // doubling from 200 ms still allows only ~6 calls in it, far below the bound a spin would cross.
    const bouncing = joiner([{ id: "n1", address: a.address }], { timeoutMs: 3_000 });
    await bouncing.j.run();
    expect(bouncing.failures[0]).toMatchObject({ reason: "timeout" });
    expect(a.calls.length + b.calls.length).toBeGreaterThan(2);
    expect(a.calls.length + b.calls.length).toBeLessThan(20);
  });

  it("classifies failures: own verifier's check, a member dropping the handshake, unreachable, coded answers", () => {
    const err = (code: number, details: string) => ({ code, details, message: details }) as grpc.ServiceError;
    const refused = new HsmPoolError("AttestationFailed", "svn too low", { check: "svn" });
    expect(classifyJoinError(err(14, "x"), plainChannel(refused))).toMatchObject({
      kind: "attestation",
      check: "svn",
    });
    expect(
      classifyJoinError(
        err(14, "No connection established. Last error: Failed to connect (t)."),
        plainChannel(),
      ),
    ).toMatchObject({ kind: "attestation", check: "peer-closed" });
    expect(
      classifyJoinError(
        err(14, "No connection established. Last error: Error: connect ECONNREFUSED"),
        plainChannel(),
      ),
    ).toMatchObject({ kind: "unavailable" });
    expect(classifyJoinError(err(9, "downgrade refused [Forbidden]"), plainChannel())).toMatchObject({
      kind: "refused",
      code: "Forbidden",
    });
    expect(classifyJoinError(err(14, "not committed [NoQuorum]"), plainChannel())).toMatchObject({
      kind: "unavailable",
    });
  });
});
