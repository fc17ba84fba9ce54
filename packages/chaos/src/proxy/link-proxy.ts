/**
 * A userspace TCP proxy on loopback for one directed peer link ("connections that
 * node A opens to node B"), so network faults need no root and no netem: nodes are
 * configured to dial their peers through these proxies. Faults apply to both byte
 * directions of the link's connections:
 * - blackhole: bytes are swallowed (connections stay open and go silent, new ones
 *   connect and hear nothing) — a partition as a peer experiences it;
 * - latency + jitter: each chunk is delivered after latency + uniform[0, jitter),
 *   never reordered (TCP keeps order);
 * - bandwidth: a byte budget per second per direction (queued chunks wait);
 * - resetProbability: per chunk, the connection is reset (both sides see ECONNRESET).
 * Every forwarded byte is fed to an optional scanner (the leak scan of wire bytes).
 * The upstream address is resolved when a connection arrives (a replacement node
 * may not exist when the proxy starts).
 */
import { createServer, type Server, Socket } from "node:net";
import { schedule } from "./schedule.js";

export interface LinkFaults {
  blackhole: boolean;
  latencyMs: number;
  jitterMs: number;
  /** 0 = unlimited. */
  bandwidthBytesPerS: number;
  resetProbability: number;
}

export const NO_FAULTS: Readonly<LinkFaults> = Object.freeze({
  blackhole: false,
  latencyMs: 0,
  jitterMs: 0,
  bandwidthBytesPerS: 0,
  resetProbability: 0,
});

export interface LinkStats {
  connections: number;
  bytesForwarded: number;
  bytesDropped: number;
  resets: number;
  upstreamFailures: number;
}

export interface LinkProxyOptions {
  /** "n1->n2": for logs and findings. */
  name: string;
  /** Where to connect, decided per connection; undefined refuses it (closes at once). */
  upstream: () => Promise<string | undefined> | string | undefined;
  /** Uniform [0, 1): jitter and reset draws (seeded by the caller). */
  random: () => number;
  /** Sees every forwarded chunk. */
  onBytes?: (chunk: Uint8Array) => void;
  /** 0 = any free port. */
  port?: number;
}

/** An RST where the socket is connected, else a plain close. */
function resetOrDestroy(s: Socket): void {
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}

/** One direction of one connection: chunks queue and leave in order at their due time. */
class Pipe {
  private readonly queue: { dueMs: number; chunk: Buffer }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastDueMs = 0;

  constructor(
    private readonly to: Socket,
    private readonly proxy: LinkProxy,
  ) {}

  push(chunk: Buffer): void {
    const due = schedule({
      nowMs: performance.now(),
      lastDueMs: this.lastDueMs,
      sizeBytes: chunk.length,
      faults: this.proxy.faults,
      random: this.proxy.random,
    });
    this.lastDueMs = due;
    this.queue.push({ dueMs: due, chunk });
    this.pump();
  }

  private pump(): void {
    if (this.timer) return;
    const next = this.queue[0];
    if (!next) return;
    const wait = next.dueMs - performance.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, wait);
      return;
    }
    this.queue.shift();
    if (this.proxy.faults.blackhole) this.proxy.stats.bytesDropped += next.chunk.length;
    else if (!this.to.destroyed) {
      this.proxy.stats.bytesForwarded += next.chunk.length;
      this.to.write(next.chunk);
    }
    this.pump();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }
}

export class LinkProxy {
  faults: LinkFaults = { ...NO_FAULTS };
  readonly stats: LinkStats = {
    connections: 0,
    bytesForwarded: 0,
    bytesDropped: 0,
    resets: 0,
    upstreamFailures: 0,
  };
  readonly random: () => number;
  private readonly sockets = new Set<Socket>();
  private readonly pipes = new Set<Pipe>();

  private constructor(
    private readonly server: Server,
    readonly name: string,
    readonly address: string,
    private readonly opts: LinkProxyOptions,
  ) {
    this.random = opts.random;
  }

  static async start(opts: LinkProxyOptions): Promise<LinkProxy> {
    const server = createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
    });
    const addr = server.address();
    if (addr === null || typeof addr === "string") throw new Error("link proxy: no TCP address");
    const proxy = new LinkProxy(server, opts.name, `127.0.0.1:${addr.port}`, opts);
    server.on("connection", (s) => void proxy.accept(s));
    return proxy;
  }

  setFaults(f: Partial<LinkFaults>): void {
    this.faults = { ...this.faults, ...f };
  }

  clearFaults(): void {
    this.faults = { ...NO_FAULTS };
  }

  private async accept(down: Socket): Promise<void> {
    this.stats.connections++;
    this.sockets.add(down);
    down.on("close", () => this.sockets.delete(down));
    down.on("error", () => {});
    let target: string | undefined;
    try {
      target = await this.opts.upstream();
    } catch {
      target = undefined;
    }
    const m = target ? /^(.+):(\d+)$/.exec(target) : null;
    if (!m) {
      this.stats.upstreamFailures++;
      down.destroy();
      return;
    }
    const up = new Socket();
    this.sockets.add(up);
    up.on("close", () => this.sockets.delete(up));
    const toUp = new Pipe(up, this);
    const toDown = new Pipe(down, this);
    this.pipes.add(toUp).add(toDown);
    const end = (reset: boolean) => {
      toUp.stop();
      toDown.stop();
      this.pipes.delete(toUp);
      this.pipes.delete(toDown);
      if (reset) {
        resetOrDestroy(up);
        resetOrDestroy(down);
      } else {
        up.destroy();
        down.destroy();
      }
    };
    const relay = (pipe: Pipe) => (chunk: Buffer) => {
      this.opts.onBytes?.(chunk);
      if (this.faults.resetProbability > 0 && this.random() < this.faults.resetProbability) {
        this.stats.resets++;
        end(true);
        return;
      }
      pipe.push(chunk);
    };
    up.on("error", () => end(false));
    down.on("error", () => end(false));
    up.on("close", () => end(false));
    down.on("close", () => end(false));
    up.on("data", relay(toDown));
    down.on("data", relay(toUp));
    up.connect(Number(m[2]), m[1] as string, () => down.resume());
  }

  /** Resets every open connection (used when a fault starts, so old connections feel it at once). */
  resetConnections(): void {
    for (const s of this.sockets) resetOrDestroy(s);
  }

  async close(): Promise<void> {
    for (const p of this.pipes) p.stop();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
