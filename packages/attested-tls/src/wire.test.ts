/**
 * Wire capture: a loopback TCP relay between an attested client and server records
 * every byte in both directions. A random marker sent in Hello reaches the handler
 * but never appears on the wire, in raw, hex or base64 form — and the same scan
 * does find it over plaintext gRPC, so the capture itself is known to work.
 */
import { createPrivateKey, randomBytes } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AttestedIdentity, createAttestedIdentity, tlsPrivateKeyPem } from "./attested-identity.js";
import { peerProto } from "./peer-proto.js";
import { type HelloEvent, PeerClient, peerService } from "./peer-service.js";
import { startAttestedServer } from "./server.js";
import {
  buildWorld,
  callHello,
  HandlerCounter,
  rawServer,
  removeTempDirs,
  type World,
} from "./test-support.js";

interface Relay {
  address: string;
  clientToServer: Buffer[];
  serverToClient: Buffer[];
  close(): Promise<void>;
}

/** A TCP relay on 127.0.0.1 that forwards to `target` and keeps a copy of every chunk. */
async function startRelay(target: string): Promise<Relay> {
  const [host, port] = target.split(":") as [string, string];
  const clientToServer: Buffer[] = [];
  const serverToClient: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connect(Number(port), host);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    }
    inbound.on("data", (chunk: Buffer) => {
      clientToServer.push(Buffer.from(chunk));
      outbound.write(chunk);
    });
    outbound.on("data", (chunk: Buffer) => {
      serverToClient.push(Buffer.from(chunk));
      inbound.write(chunk);
    });
    inbound.on("close", () => outbound.destroy());
    outbound.on("close", () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port: relayPort } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${relayPort}`,
    clientToServer,
    serverToClient,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Every encoding of `secret` a careless implementation might put on the wire. */
function encodingsOf(secret: Uint8Array): Buffer[] {
  const b = Buffer.from(secret);
  return [
    b,
    Buffer.from(b.toString("hex")),
    Buffer.from(b.toString("base64")),
    Buffer.from(b.toString("base64url")),
  ];
}

function found(captured: Buffer[], secret: Uint8Array): boolean {
  const all = Buffer.concat(captured);
  return encodingsOf(secret).some((needle) => all.includes(needle));
}

let world: World;
let idA: AttestedIdentity;
let idB: AttestedIdentity;

beforeAll(async () => {
  world = await buildWorld();
  idA = await createAttestedIdentity(world.goodA);
  idB = await createAttestedIdentity(world.goodB);
});
afterAll(removeTempDirs);

describe("wire capture through a loopback relay", () => {
  it("a Hello payload marker reaches the handler but never appears on the attested wire", async () => {
    const hellos: HelloEvent[] = [];
    const server = await startAttestedServer({
      identity: idB,
      policy: world.policy,
      vendorRoot: world.fabric.vendorRootCertDer,
      services: [peerService({ self: idB, nodeId: "b", onHello: (e) => hellos.push(e) })],
    });
    const relay = await startRelay(server.address);
    const client = new PeerClient(relay.address, {
      identity: idA,
      policy: world.policy,
      vendorRoot: world.fabric.vendorRootCertDer,
      nodeId: "a",
    });
    const marker = randomBytes(32);
    try {
      const { response } = await client.hello({ payload: marker });
      expect(Buffer.compare(hellos[0]!.request.payload, marker)).toBe(0);
      expect(Buffer.compare(response.payload, marker)).toBe(0);
      expect(relay.clientToServer.length).toBeGreaterThan(0);
      expect(relay.serverToClient.length).toBeGreaterThan(0);
      expect(found(relay.clientToServer, marker)).toBe(false);
      expect(found(relay.serverToClient, marker)).toBe(false);
      // Neither side's TLS private key (the raw EC scalar) travels either.
      for (const id of [idA, idB]) {
        const d = Buffer.from(
          createPrivateKey(tlsPrivateKeyPem(id)).export({ format: "jwk" }).d!,
          "base64url",
        );
        expect(found([...relay.clientToServer, ...relay.serverToClient], d)).toBe(false);
      }
    } finally {
      client.close();
      await relay.close();
      await server.close();
    }
  });

  it("the same capture finds the marker over plaintext gRPC (the scan can fail)", async () => {
    const counter = new HandlerCounter();
    const server = await rawServer(null, counter);
    const relay = await startRelay(server.address);
    const client = new (peerProto().ctor)(relay.address, grpc.credentials.createInsecure());
    const marker = randomBytes(32);
    try {
      await callHello(client, marker);
      expect(counter.calls).toBe(1);
      expect(found(relay.clientToServer, marker)).toBe(true);
    } finally {
      client.close();
      await relay.close();
      await server.close();
    }
  });
});
