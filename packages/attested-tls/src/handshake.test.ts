/**
 * Real sockets on 127.0.0.1: genuine enclaves reach each other in both directions;
 * every kind of bad peer is refused during the handshake, in both directions, and
 * the server's handler counter proves no application code ran for it.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type AttestedIdentity, createAttestedIdentity } from "./attested-identity.js";
import { attestedChannelCredentials } from "./client.js";
import { peerProto } from "./peer-proto.js";
import { type HelloEvent, PeerClient, peerService } from "./peer-service.js";
import { type PeerRejection, startAttestedServer } from "./server.js";
import {
  buildWorld,
  callHello,
  caught,
  expiredIdentity,
  forgedIdentity,
  HandlerCounter,
  materialOf,
  ordinaryCa,
  rawClient,
  rawServer,
  removeTempDirs,
  type TlsMaterial,
  type World,
} from "./test-support.js";

let world: World;
let idA: AttestedIdentity;
let idB: AttestedIdentity;
/** How long a rejection may take to be reported (vi.waitFor's default, 1 s, is short for a loaded CI machine). */
const WAIT = { timeout: 30_000 };
/** TLS material of every kind of bad peer, by case name. */
const bad = new Map<string, TlsMaterial | null>();

beforeAll(async () => {
  world = await buildWorld();
  idA = await createAttestedIdentity(world.goodA);
  idB = await createAttestedIdentity(world.goodB);
  bad.set("tampered bundle", materialOf(await createAttestedIdentity(world.tampered)));
  bad.set("other signer", materialOf(await createAttestedIdentity(world.otherSigner)));
  bad.set("debug enclave", materialOf(await createAttestedIdentity(world.debug)));
  bad.set("SVN below minimum", materialOf(await createAttestedIdentity(world.lowSvn)));
  // The victim's own platform issues the forged cert, so only the key binding is wrong.
  bad.set("quote for another key", (await forgedIdentity(idB, world.goodB)).material);
  bad.set("foreign platform", materialOf(await createAttestedIdentity(world.foreign)));
  bad.set("expired certificate", materialOf(await expiredIdentity(world.goodB)));
  bad.set("ordinary CA certificate", (await ordinaryCa()).leaf);
  bad.set("no certificate", null);
});
afterAll(removeTempDirs);

async function goodServer(identity: AttestedIdentity, nodeId = "server-node") {
  const hellos: HelloEvent[] = [];
  const rejections: PeerRejection[] = [];
  const server = await startAttestedServer({
    identity,
    policy: world.policy,
    vendorRoot: world.fabric.vendorRootCertPem,
    services: [peerService({ self: identity, nodeId, onHello: (e) => hellos.push(e) })],
    onPeerRejected: (r) => rejections.push(r),
  });
  return { server, hellos, rejections };
}

describe("genuine enclaves of the same signed bundle", () => {
  it.each([
    ["A client -> B server", () => idA, () => idB],
    ["B client -> A server", () => idB, () => idA],
  ])("%s: Hello shows each side the other's verified identity", async (_name, clientId, serverId) => {
    const { server, hellos, rejections } = await goodServer(serverId());
    const client = new PeerClient(server.address, {
      identity: clientId(),
      policy: world.policy,
      vendorRoot: world.fabric.vendorRootCertPem,
      nodeId: "client-node",
    });
    try {
      const { server: seen, response } = await client.hello({ payload: Buffer.from("hi") });
      const expectServer = { ...serverId().enclave, certFingerprint: serverId().certFingerprint };
      const expectClient = { ...clientId().enclave, certFingerprint: clientId().certFingerprint };
      expect(seen).toEqual(expectServer);
      expect(response.serverSelf).toEqual(expectServer);
      expect(response.clientAsSeenByServer).toEqual(expectClient);
      expect(response.nodeId).toBe("server-node");
      expect(hellos).toHaveLength(1);
      expect(hellos[0]!.client).toEqual(expectClient);
      expect(hellos[0]!.request.serverAsSeenByClient).toEqual(expectServer);
      expect(hellos[0]!.request.nodeId).toBe("client-node");
      expect(rejections).toEqual([]);
      // Different servers in different racks, same code.
      expect(seen.serverId).not.toBe(response.clientAsSeenByServer?.serverId);
      expect(seen.rackId).not.toBe(response.clientAsSeenByServer?.rackId);
      expect(seen.mrenclave).toBe(response.clientAsSeenByServer?.mrenclave);
    } finally {
      client.close();
      await server.close();
    }
  });
});

/**
 * Per bad peer: which check the attested side names when refusing it. "handshake"
 * means OpenSSL itself refused the chain (vendor root as the only anchor, expiry,
 * missing certificate) before our verifier was even asked.
 */
const cases: [name: string, serverSideCheck: string, clientSideCheck: string | RegExp][] = [
  ["tampered bundle", "measurement", "measurement"],
  ["other signer", "signer", "signer"],
  ["debug enclave", "debug", "debug"],
  ["SVN below minimum", "svn", "svn"],
  ["quote for another key", "key-binding", "key-binding"],
  ["foreign platform", "chain", /unable to (get|verify)|issuer/i],
  ["expired certificate", "validity", /expired/i],
  ["ordinary CA certificate", "chain", /unable to (get|verify)|issuer|self-signed/i],
  ["no certificate", "no-certificate", /./],
];

describe("bad client -> attested server", () => {
  it.each(cases)("%s is refused in the handshake; the handler never runs", async (name, serverCheck) => {
    const { server, hellos, rejections } = await goodServer(idA);
    const client = rawClient(server.address, world.fabric.vendorRootCertPem, bad.get(name)!);
    try {
      const err = (await callHello(client).then(
        () => null,
        (e: grpc.ServiceError) => e,
      )) as grpc.ServiceError | null;
      expect(err?.code).toBe(grpc.status.UNAVAILABLE);
      await vi.waitFor(() => expect(rejections.length).toBeGreaterThan(0), WAIT);
      expect(rejections[0]!.error.code).toBe("AttestationFailed");
      expect(rejections[0]!.error.details?.check).toBe(serverCheck);
      expect(hellos).toHaveLength(0);
    } finally {
      client.close();
      await server.close();
    }
  });
});

describe("attested client -> bad server", () => {
  it.each(cases)(
    "%s is refused in the handshake; the server handler never runs",
    async (name, _s, clientCheck) => {
      const counter = new HandlerCounter();
      const server = await rawServer(bad.get(name)!, counter);
      const channel = attestedChannelCredentials({
        identity: idA,
        policy: world.policy,
        vendorRoot: world.fabric.vendorRootCertPem,
      });
      const client = new (peerProto().ctor)(server.address, channel.credentials, channel.channelOptions);
      try {
        const err = (await callHello(client).then(
          () => null,
          (e: grpc.ServiceError) => e,
        )) as grpc.ServiceError | null;
        expect(err?.code).toBe(grpc.status.UNAVAILABLE);
        if (typeof clientCheck === "string") {
          expect(channel.lastRejection()?.details?.check).toBe(clientCheck);
        } else {
          // OpenSSL refused before the RA-TLS check ran: nothing reached our verifier.
          expect(channel.lastRejection()).toBeUndefined();
          expect(err?.details).toMatch(clientCheck);
        }
        expect(channel.serverIdentity()).toBeUndefined();
        expect(counter.calls).toBe(0);
      } finally {
        client.close();
        await server.close();
      }
    },
  );

  it("PeerClient reports the failed check as AttestationFailed", async () => {
    const counter = new HandlerCounter();
    const server = await rawServer(bad.get("other signer")!, counter);
    const client = new PeerClient(server.address, {
      identity: idA,
      policy: world.policy,
      vendorRoot: world.fabric.vendorRootCertPem,
      nodeId: "client-node",
    });
    try {
      const err = await caught(() => client.hello());
      expect(err.code).toBe("AttestationFailed");
      expect(err.details?.check).toBe("signer");
      expect(counter.calls).toBe(0);
    } finally {
      client.close();
      await server.close();
    }
  });
});

describe("reconnects answered from the caches", () => {
  const helloAs = (identity: AttestedIdentity, address: string) => {
    const client = new PeerClient(address, {
      identity,
      policy: world.policy,
      vendorRoot: world.fabric.vendorRootCertPem,
      nodeId: "client-node",
    });
    return client.hello().finally(() => client.close());
  };

  it("a renewed identity on the same enclave presents its own new certificate (one TLS context per identity)", async () => {
    const { server, hellos } = await goodServer(idB);
    const renewed = await createAttestedIdentity(world.goodA);
    try {
      await helloAs(idA, server.address);
      await helloAs(renewed, server.address);
      await helloAs(idA, server.address);
      expect(hellos.map((h) => h.client?.certFingerprint)).toEqual([
        idA.certFingerprint,
        renewed.certFingerprint,
        idA.certFingerprint,
      ]);
      expect(renewed.certFingerprint).not.toBe(idA.certFingerprint);
    } finally {
      await server.close();
    }
  });

  it("a server refuses a client it admitted (and cached) once its clock is past the client's certificate", async () => {
    let clock = new Date();
    const rejections: PeerRejection[] = [];
    const hellos: HelloEvent[] = [];
    const server = await startAttestedServer({
      identity: idB,
      policy: world.policy,
      vendorRoot: world.fabric.vendorRootCertPem,
      services: [peerService({ self: idB, nodeId: "server-node", onHello: (e) => hellos.push(e) })],
      onPeerRejected: (r) => rejections.push(r),
      now: () => clock,
    });
    try {
      await helloAs(idA, server.address);
      expect(hellos).toHaveLength(1);
      // OpenSSL judges expiry by the real clock (still valid); only the verifier's clock moved.
      clock = new Date(idA.notAfter.getTime() + 1000);
      const err = await caught(() => helloAs(idA, server.address));
      expect(err.code).toBe("ServiceUnavailable");
      await vi.waitFor(() => expect(rejections.length).toBeGreaterThan(0), WAIT);
      expect(rejections[0]!.error.details).toMatchObject({ check: "validity", reason: "expired" });
      expect(hellos).toHaveLength(1);
    } finally {
      await server.close();
    }
  });

  it("a client admitted (and cached) under one policy is refused by a server whose policy revokes its measurement", async () => {
    const admitted = await goodServer(idB);
    const rejections: PeerRejection[] = [];
    const strict = await startAttestedServer({
      identity: idB,
      policy: { ...world.policy, allowedMeasurements: ["00".repeat(32)] },
      vendorRoot: world.fabric.vendorRootCertPem,
      services: [peerService({ self: idB, nodeId: "server-node" })],
      onPeerRejected: (r) => rejections.push(r),
    });
    try {
      await helloAs(idA, admitted.server.address);
      expect(admitted.hellos).toHaveLength(1);
      await caught(() => helloAs(idA, strict.address));
      await vi.waitFor(() => expect(rejections.length).toBeGreaterThan(0), WAIT);
      expect(rejections[0]!.error.details?.check).toBe("measurement");
    } finally {
      await admitted.server.close();
      await strict.close();
    }
  });
});

describe("identity plumbing", () => {
  it("Hello refuses an oversized payload with INVALID_ARGUMENT and never reports it as a hello", async () => {
    const { server, hellos } = await goodServer(idB);
    const channel = attestedChannelCredentials({
      identity: idA,
      policy: world.policy,
      vendorRoot: world.fabric.vendorRootCertPem,
    });
    const client = new (peerProto().ctor)(server.address, channel.credentials, channel.channelOptions);
    try {
      const err = (await callHello(client, new Uint8Array(5000)).catch(
        (e: grpc.ServiceError) => e,
      )) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err.details).toMatch(/payload.*\[BadParameter\]$/);
      expect(hellos).toHaveLength(0);
      expect(channel.serverIdentity()?.certFingerprint).toBe(idB.certFingerprint);
    } finally {
      client.close();
      await server.close();
    }
  });

  it("a client pinned to another server id refuses a genuine server (check server-id)", async () => {
    const { server, hellos } = await goodServer(idB);
    const client = new PeerClient(server.address, {
      identity: idA,
      policy: world.policy,
      vendorRoot: world.fabric.vendorRootCertPem,
      nodeId: "client-node",
      expectedServerId: world.goodA.identity.serverId,
    });
    try {
      const err = await caught(() => client.hello());
      expect(err.details).toMatchObject({ check: "server-id", serverId: world.goodB.identity.serverId });
      expect(hellos).toHaveLength(0);
    } finally {
      client.close();
      await server.close();
    }
  });

  it("Hello on a connection this package did not attest answers UNAUTHENTICATED", async () => {
    const grpcServer = new grpc.Server();
    const service = peerService({ self: idA, nodeId: "plain" });
    grpcServer.addService(service.definition, service.implementation);
    const port = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    const client = new (peerProto().ctor)(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const err = (await callHello(client).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(err.details).toMatch(/\[Unauthenticated\]$/);
    } finally {
      client.close();
      grpcServer.forceShutdown();
    }
  });
});
