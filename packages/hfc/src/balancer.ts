/**
 * The pool's one endpoint: an L4 TCP passthrough balancer, as the real service's load
 * balancer sits in front of its instances. It relays bytes and never terminates TLS:
 * clients handshake with a member inside its node process (the HFC is outside the
 * boundary and holds no data-plane key). Each new connection goes to the next live
 * member in turn; a member that refuses the connection is skipped, so a killed member
 * costs a client one reconnect, not an error.
 */
import { type AddressInfo, createConnection, createServer, type Socket } from "node:net";
import { HsmPoolError } from "@hsmpool/errors";

export interface BalancerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** The members' data-plane addresses ("host:port") to relay to, best first. */
  backends: () => readonly string[];
  /** Per backend connection attempt (default 2 s). */
  connectTimeoutMs?: number;
  /** Sees every relayed chunk (a leak scanner); must not keep or change it. */
  onChunk?: (direction: "to-member" | "to-client", chunk: Buffer) => void;
}

export interface Balancer {
  readonly address: string;
  close(): Promise<void>;
}

function connectTo(address: string, timeoutMs: number): Promise<Socket> {
  const at = address.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: address.slice(0, at), port: Number(address.slice(at + 1)) });
    const timer = setTimeout(() => socket.destroy(new Error(`connect to ${address} timed out`)), timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeListener("error", reject);
      resolve(socket);
    });
    socket.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export async function startBalancer(opts: BalancerOptions): Promise<Balancer> {
  const host = opts.host ?? "127.0.0.1";
  const connectTimeoutMs = opts.connectTimeoutMs ?? 2_000;
  const open = new Set<Socket>();
  let next = 0;

  async function connectSomewhere(): Promise<Socket | null> {
    const backends = opts.backends();
    for (let i = 0; i < backends.length; i++) {
      const address = backends[(next + i) % backends.length] as string;
      try {
        const socket = await connectTo(address, connectTimeoutMs);
        next = (next + i + 1) % Math.max(1, backends.length);
        return socket;
      } catch {
        // That member is down or restarting: the next one.
      }
    }
    return null;
  }

  const server = createServer({ pauseOnConnect: true }, (client) => {
    open.add(client);
    client.once("close", () => open.delete(client));
    client.on("error", () => client.destroy());
    void connectSomewhere().then((member) => {
      if (!member || client.destroyed) {
        member?.destroy();
        client.destroy();
        return;
      }
      open.add(member);
      member.once("close", () => {
        open.delete(member);
        client.destroy();
      });
      member.on("error", () => member.destroy());
      client.once("close", () => member.destroy());
      if (opts.onChunk) {
        const tap = opts.onChunk;
        client.on("data", (c: Buffer) => tap("to-member", c));
        member.on("data", (c: Buffer) => tap("to-client", c));
      }
      client.pipe(member);
      member.pipe(client);
      client.resume();
    });
  });

  const bound = await new Promise<AddressInfo>((resolve, reject) => {
    const onError = (e: Error) =>
      reject(
        new HsmPoolError(
          "ServiceUnavailable",
          `the balancer cannot listen on ${host}:${opts.port ?? 0}: ${e.message}`,
        ),
      );
    server.once("error", onError);
    server.listen(opts.port ?? 0, host, () => {
      server.off("error", onError);
      resolve(server.address() as AddressInfo);
    });
  });

  return {
    address: `${host}:${bound.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of open) s.destroy();
      }),
  };
}
