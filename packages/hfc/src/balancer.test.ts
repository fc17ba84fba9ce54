/** The L4 balancer on real loopback sockets: relays bytes unchanged, goes round the backends, skips a dead one. */
import { once } from "node:events";
import { createConnection, createServer, type Server } from "node:net";
import { afterEach, describe, expect, test } from "vitest";
import { type Balancer, startBalancer } from "./balancer.js";

const servers: Server[] = [];
let balancer: Balancer | undefined;

afterEach(async () => {
  await balancer?.close();
  for (const s of servers.splice(0)) s.close();
});

/** A backend that answers every chunk with "<name>:" + the chunk. */
async function backend(name: string): Promise<string> {
  const server = createServer((socket) =>
    socket.on("data", (c) => socket.write(Buffer.concat([Buffer.from(`${name}:`), c]))),
  );
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  servers.push(server);
  return `127.0.0.1:${(server.address() as { port: number }).port}`;
}

async function deadAddress(): Promise<string> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, "close");
  return `127.0.0.1:${port}`;
}

function exchange(address: string, payload: string): Promise<string> {
  const [host, port] = address.split(":") as [string, string];
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port: Number(port) }, () => socket.write(payload));
    socket.once("data", (d) => {
      resolve(d.toString());
      socket.end();
    });
    socket.once("error", reject);
  });
}

describe("the endpoint balancer", () => {
  test("relays bytes both ways unchanged and sends new connections round the backends", async () => {
    const backends = [await backend("a"), await backend("b")];
    const seen: string[] = [];
    balancer = await startBalancer({
      backends: () => backends,
      onChunk: (dir, c) => seen.push(`${dir} ${c}`),
    });
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await exchange(balancer.address, `hello${i}`));
    expect(answers).toEqual(["a:hello0", "b:hello1", "a:hello2", "b:hello3"]);
    expect(seen).toContain("to-member hello0");
    expect(seen).toContain("to-client b:hello1");
  });

  test("a backend that refuses connections is skipped", async () => {
    const backends = [await deadAddress(), await backend("live")];
    balancer = await startBalancer({ backends: () => backends });
    for (let i = 0; i < 3; i++) expect(await exchange(balancer.address, "x")).toBe("live:x");
  });

  test("with no reachable backend the client's connection is closed, not left hanging", async () => {
    const dead = await deadAddress();
    balancer = await startBalancer({ backends: () => [dead] });
    const [host, port] = balancer.address.split(":") as [string, string];
    const socket = createConnection({ host, port: Number(port) });
    socket.on("error", () => {});
    await once(socket, "close");
    expect(socket.destroyed).toBe(true);
  });
});
