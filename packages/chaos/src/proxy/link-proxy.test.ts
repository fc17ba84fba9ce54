import { randomBytes } from "node:crypto";
import { createServer, type Server, Socket } from "node:net";
import { Prng } from "@hsmpool/faults";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { StreamScanner } from "../checkers/leaks.js";
import { LinkProxy, NO_FAULTS } from "./link-proxy.js";
import { schedule } from "./schedule.js";

/** A real echo server on loopback. */
async function echoServer(): Promise<{ server: Server; address: string }> {
  const server = createServer((s) => {
    s.on("error", () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const a = server.address();
  if (!a || typeof a === "string") throw new Error("no address");
  return { server, address: `127.0.0.1:${a.port}` };
}

async function connect(address: string): Promise<Socket> {
  const [host, port] = address.split(":");
  const s = new Socket();
  await new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.connect(Number(port), host as string, () => resolve());
  });
  return s;
}

/** Reads exactly n bytes, or what arrived when `timeoutMs` passes. */
function readN(s: Socket, n: number, timeoutMs = 3000): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let got = 0;
    const done = () => {
      clearTimeout(t);
      s.off("data", onData);
      resolve(Buffer.concat(parts));
    };
    const onData = (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= n) done();
    };
    const t = setTimeout(done, timeoutMs);
    s.on("data", onData);
  });
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(upstream?: string | undefined, onBytes?: (b: Uint8Array) => void) {
  const echo = await echoServer();
  const prng = Prng.fromSeed(1);
  const proxy = await LinkProxy.start({
    name: "n1->n2",
    upstream: () => (upstream === "none" ? undefined : echo.address),
    random: () => prng.float(),
    ...(onBytes ? { onBytes } : {}),
  });
  cleanups.push(
    () => new Promise<void>((r) => echo.server.close(() => r())),
    () => proxy.close(),
  );
  return { proxy, echo };
}

describe("link proxy (real sockets on loopback)", () => {
  it("forwards bytes both ways unchanged and counts them", async () => {
    const { proxy } = await setup();
    const s = await connect(proxy.address);
    cleanups.push(() => void s.destroy());
    const payload = randomBytes(200_000);
    s.write(payload);
    const back = await readN(s, payload.length);
    expect(back.equals(payload)).toBe(true);
    expect(proxy.stats.bytesForwarded).toBe(2 * payload.length);
    expect(proxy.stats.connections).toBe(1);
  });

  it("a blackhole swallows bytes on open connections, and clearing it lets new connections through", async () => {
    const { proxy } = await setup();
    const s = await connect(proxy.address);
    cleanups.push(() => void s.destroy());
    proxy.setFaults({ blackhole: true });
    s.write(Buffer.from("hello"));
    expect((await readN(s, 5, 400)).length).toBe(0);
    expect(proxy.stats.bytesDropped).toBe(5);
    proxy.clearFaults();
    const t = await connect(proxy.address);
    cleanups.push(() => void t.destroy());
    t.write(Buffer.from("again"));
    expect((await readN(t, 5)).toString()).toBe("again");
  });

  it("latency delays each direction by at least the configured time", async () => {
    const { proxy } = await setup();
    proxy.setFaults({ latencyMs: 150 });
    const s = await connect(proxy.address);
    cleanups.push(() => void s.destroy());
    const t0 = performance.now();
    s.write(Buffer.from("ping"));
    expect((await readN(s, 4)).toString()).toBe("ping");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(295);
  });

  it("a reset probability of 1 resets the connection on its first bytes", async () => {
    const { proxy } = await setup();
    proxy.setFaults({ resetProbability: 1 });
    const s = await connect(proxy.address);
    const closed = new Promise<string>((r) => {
      s.on("error", (e: NodeJS.ErrnoException) => r(e.code ?? "error"));
      s.on("close", () => r("closed"));
    });
    s.write(Buffer.from("x"));
    expect(["ECONNRESET", "closed"]).toContain(await closed);
    expect(proxy.stats.resets).toBe(1);
  });

  it("a link with no upstream (the peer does not exist yet) closes the connection", async () => {
    const { proxy } = await setup("none");
    const s = await connect(proxy.address);
    await new Promise<void>((r) => s.on("close", () => r()));
    expect(proxy.stats.upstreamFailures).toBe(1);
  });

  it("every forwarded byte passes the scanner, so a secret on the wire is found", async () => {
    const secret = { name: "test secret", bytes: randomBytes(32) };
    const scanner = new StreamScanner([secret]);
    const { proxy } = await setup(undefined, (b) => scanner.push(b));
    const s = await connect(proxy.address);
    cleanups.push(() => void s.destroy());
    const msg = Buffer.concat([randomBytes(1000), secret.bytes, randomBytes(1000)]);
    s.write(msg);
    await readN(s, msg.length);
    expect([...scanner.findings]).toEqual(["test secret"]);
  });
});

describe("delivery schedule of a faulty link", () => {
  it("never reorders, adds latency and transmission time", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ gap: fc.integer({ min: 0, max: 50 }), size: fc.integer({ min: 1, max: 5000 }) }),
          { maxLength: 30 },
        ),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        (chunks, latencyMs, jitterMs, bandwidthBytesPerS) => {
          const prng = Prng.fromSeed(9);
          const faults = { ...NO_FAULTS, latencyMs, jitterMs, bandwidthBytesPerS };
          let now = 0;
          let last = 0;
          for (const c of chunks) {
            now += c.gap;
            const due = schedule({
              nowMs: now,
              lastDueMs: last,
              sizeBytes: c.size,
              faults,
              random: () => prng.float(),
            });
            expect(due).toBeGreaterThanOrEqual(last);
            expect(due).toBeGreaterThanOrEqual(now + latencyMs);
            if (bandwidthBytesPerS > 0)
              expect(due - Math.max(last, now + latencyMs)).toBeGreaterThanOrEqual(
                (c.size * 1000) / bandwidthBytesPerS - 1e-6,
              );
            last = due;
          }
        },
      ),
      { numRuns: 200, seed: 4 },
    );
  });
});
