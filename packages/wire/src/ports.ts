/**
 * Free loopback ports for child processes: members, the bench's etcd, Azurite, e2e clusters (docs/node-hfc-contract.md).
 *
 * A port is handed to a child process as a number and bound there later, so in between
 * anyone may take it. A port from listen(0) is the worst choice: it goes back to the
 * kernel's ephemeral range, from which every outgoing connection on the machine draws its
 * source port, so under load a client socket can take it first (a chaos run saw a member
 * die of EADDRINUSE at start-up). Ports below that range are only ever taken on explicit
 * request: draw there, and check each draw by binding it once.
 */
import { randomInt } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** The lowest port drawn: above Azurite's 10000-10002, etcd's 2379/2380 and other well-known dev ports. */
const LOWEST = 20_000;
const DRAWS_PER_PORT = 50;

/** The first port of the kernel's ephemeral range (Linux), or null when it is unknown. */
export function ephemeralRangeStart(
  read: () => string = () => readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8"),
): number | null {
  try {
    const first = Number(read().trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > 0 ? first : null;
  } catch {
    return null;
  }
}

/** Binds `port` (0: any) on 127.0.0.1 and closes it; the bound port, or null if it is taken. */
function tryBind(port: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", (e: NodeJS.ErrnoException) =>
      e.code === "EADDRINUSE" || e.code === "EACCES" ? resolve(null) : reject(e),
    );
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      const bound = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(bound > 0 ? bound : null));
    });
  });
}

async function onePort(below: number | null): Promise<number> {
  if (below !== null && below - LOWEST >= 1_000) {
    for (let i = 0; i < DRAWS_PER_PORT; i++) {
      const port = await tryBind(randomInt(LOWEST, below));
      if (port !== null) return port;
    }
  }
  // No usable range below the ephemeral one (or all draws taken): let the kernel choose.
  const port = await tryBind(0);
  if (port === null) throw new Error("could not bind any loopback port");
  return port;
}

/** `count` distinct free ports (a port drawn twice is drawn again). */
export async function allocateLoopbackPorts(count: number): Promise<number[]> {
  const below = ephemeralRangeStart();
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await onePort(below));
  return [...ports];
}

/** One free port, as allocateLoopbackPorts draws them. */
export function allocateLoopbackPort(): Promise<number> {
  return onePort(ephemeralRangeStart());
}
