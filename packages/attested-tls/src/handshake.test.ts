import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AttestedIdentity, createAttestedIdentity } from "./attested-identity.js";
import { type AttestedServer, type PeerRejection, startAttestedServer } from "./server.js";
import { type HelloEvent, PeerClient, peerService } from "./peer-service.js";
import { buildWorld, removeTempDirs, type World } from "./test-support.js";

let world: World;
let idA: AttestedIdentity;
let idB: AttestedIdentity;

beforeAll(async () => {
  world = await buildWorld();
  idA = await createAttestedIdentity(world.goodA);
  idB = await createAttestedIdentity(world.goodB);
});
afterAll(removeTempDirs);

async function goodServer(identity: AttestedIdentity, nodeId: string) {
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

describe("genuine peers", () => {
  it.each([
    ["A client -> B server", () => idA, () => idB],
    ["B client -> A server", () => idB, () => idA],
  ])("%s: both sides see each other's attested identity", async (_name, clientId, serverId) => {
    const { server, hellos } = await goodServer(serverId(), "server-node");
    const client = new PeerClient(server.address, {
      identity: clientId(),
      policy: world.policy,
      vendorRoot: world.fabric.vendorRootCertPem,
      nodeId: "client-node",
    });
    try {
      const { server: seen, response } = await client.hello({ payload: Buffer.from("hi") });
      expect(seen).toMatchObject({ ...serverId().enclave, certFingerprint: serverId().certFingerprint });
      expect(response.serverSelf).toMatchObject({ ...serverId().enclave, certFingerprint: serverId().certFingerprint });
      expect(response.clientAsSeenByServer).toMatchObject({ ...clientId().enclave, certFingerprint: clientId().certFingerprint });
      expect(hellos).toHaveLength(1);
      expect(hellos[0]!.request.serverAsSeenByClient?.serverId).toBe(serverId().enclave.serverId);
    } finally {
      client.close();
      await server.close();
    }
  });
});
