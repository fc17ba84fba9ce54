/**
 * Pool benchmark (`npm run bench -- pool`): a real pool of three node processes on
 * loopback. ES256 and RS256 sign throughput through the pool with 64 requests in
 * flight, as a ratio to raw node:crypto signing and to a plain gRPC echo (separate
 * process, loopback, no TLS) measured in the same run — the three in interleaved
 * rounds after a warm-up each, so the machine's load hits them alike; create-key commit latency
 * p50/p99 (3 members, fsync) as a ratio to etcd's put p50 on a three-member etcd
 * cluster on loopback (Debian's etcd-server, fsync on as always), creates and puts
 * taken in turn so that both meet the same machine load.
 * Temp dirs; the pool and etcd are always stopped at the end.
 */
import { fork } from "node:child_process";
import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import {
  EtcdCluster,
  etcdVersion,
  findOrInstallEtcd,
  goalFigure,
  reportFigure,
} from "@hsmpool/hfc/bench-support";
import { startPool, stopPool } from "../cli/lifecycle.js";
import { PoolClient } from "../sdk/pool-client.js";

const IN_FLIGHT = 64;
const MEASURE_MS = 3000;
/** ES256, RS256 and echo are measured in this many interleaved rounds of MEASURE_MS / RATE_ROUNDS each. */
const RATE_ROUNDS = 3;
/** Every workload runs this long before its first measured round (connections, JIT, lazy key imports). */
const WARM_UP_MS = 1000;
const CREATE_SAMPLES = 100;
/** etcd's default Raft timing (what a user of etcd gets). */
const ETCD_TIMING = { heartbeatMs: 100, electionTimeoutMs: 1000 };
const ECHO_PATH = "/hsmpool.bench.Echo/Echo";
const identity = (b: Buffer) => b;

/** Runs `op` with `inFlight` concurrent loops for `durationMs`; returns the ops completed and the seconds taken. */
async function run(
  inFlight: number,
  durationMs: number,
  op: () => Promise<unknown>,
): Promise<{ ops: number; seconds: number }> {
  const end = Date.now() + durationMs;
  let done = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (Date.now() < end) {
        await op();
        done++;
      }
    }),
  );
  return { ops: done, seconds: (Date.now() - started) / 1000 };
}

function rawSignRate(key: KeyObject, dsaEncoding: "ieee-p1363" | undefined, durationMs: number): number {
  const data = Buffer.alloc(64, 7);
  const end = Date.now() + durationMs;
  const started = Date.now();
  let done = 0;
  while (Date.now() < end) {
    sign("sha256", data, dsaEncoding ? { key, dsaEncoding } : key);
    done++;
  }
  return done / ((Date.now() - started) / 1000);
}

/** Child mode: a gRPC echo server on 127.0.0.1; sends its port to the parent. */
function serveEcho(): void {
  const server = new grpc.Server();
  server.addService(
    {
      Echo: {
        path: ECHO_PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
        cb(null, call.request),
    },
  );
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.send?.({ port });
  });
  process.on("disconnect", () => server.forceShutdown());
}

/** A plain gRPC echo server in a child process and a call to it; `close` stops both. */
async function startEcho(): Promise<{ call: () => Promise<Buffer>; close: () => void }> {
  const child = fork(fileURLToPath(import.meta.url), ["--echo-server"], { stdio: "inherit" });
  const port = await new Promise<number>((resolve) =>
    child.once("message", (m) => resolve((m as { port: number }).port)),
  );
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const payload = Buffer.alloc(64, 1);
  return {
    call: () =>
      new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest(ECHO_PATH, identity, identity, payload, (e, r) =>
          e ? reject(e) : resolve(r as Buffer),
        ),
      ),
    close: () => {
      client.close();
      child.disconnect();
      child.kill();
    },
  };
}

/**
 * Rates of several workloads measured in ROUNDS interleaved rounds (each warmed up first),
 * so a change of the machine's load during the run hits all of them alike.
 */
async function interleavedRates(
  ops: Record<string, () => Promise<unknown>>,
): Promise<Record<string, number>> {
  const done: Record<string, { ops: number; seconds: number }> = {};
  for (const [name, op] of Object.entries(ops)) {
    await run(IN_FLIGHT, WARM_UP_MS, op);
    done[name] = { ops: 0, seconds: 0 };
  }
  for (let round = 0; round < RATE_ROUNDS; round++) {
    for (const [name, op] of Object.entries(ops)) {
      const r = await run(IN_FLIGHT, MEASURE_MS / RATE_ROUNDS, op);
      const d = done[name]!;
      d.ops += r.ops;
      d.seconds += r.seconds;
    }
  }
  return Object.fromEntries(Object.entries(done).map(([name, d]) => [name, d.ops / d.seconds]));
}

/** etcd's three members, warmed up, and the index of their leader; or why there is no baseline. */
async function startEtcdBaseline(root: string): Promise<{ cluster: EtcdCluster; leader: number } | string> {
  const found = findOrInstallEtcd((line) => console.log(line));
  if ("skip" in found) return found.skip;
  console.log(`baseline: etcd ${etcdVersion(found.binary)}, 3 members on loopback`);
  const cluster = await EtcdCluster.start(found.binary, join(root, "etcd"), ETCD_TIMING);
  try {
    const leader = (await cluster.leader()) ?? 0;
    for (let i = 0; i < 20; i++) await cluster.put(leader, `warm-${i}`, 5000);
    return { cluster, leader };
  } catch (e) {
    await cluster.stop();
    throw e;
  }
}

/**
 * Sequential creates through the pool and, when there is a baseline, puts through
 * etcd's leader, one of each in turn: both see the same machine load (other work shares
 * this machine, and a baseline measured a minute later met a different load, which
 * moved the ratio by more than any change under test). Latencies in ms, sorted.
 */
async function commitLatencies(
  client: PoolClient,
  etcd: { cluster: EtcdCluster; leader: number } | string,
): Promise<{ creates: number[]; puts: number[] }> {
  const creates: number[] = [];
  const puts: number[] = [];
  for (let i = 0; i < CREATE_SAMPLES; i++) {
    let t = performance.now();
    await client.createKey({ name: `bench-create-${i}`, kty: "EC", crv: "P-256" });
    creates.push(performance.now() - t);
    if (typeof etcd === "string") continue;
    t = performance.now();
    if (!(await etcd.cluster.put(etcd.leader, `bench-${i}`, 5000))) throw new Error("etcd put failed");
    puts.push(performance.now() - t);
  }
  return { creates: creates.sort((a, b) => a - b), puts: puts.sort((a, b) => a - b) };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

async function bench(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "hsmpool-bench-pool-"));
  const runDir = join(root, "run");
  const t0 = Date.now();
  try {
    await startPool({ runDir, fabricDir: join(root, "fabric"), timeoutMs: 60_000, onProgress: () => {} });
    console.log(`pool up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const client = await PoolClient.connect({ runDir });
    try {
      for (let i = 0; i < 10; i++)
        await client.createKey({ name: `bench-warm-${i}`, kty: "EC", crv: "P-256" });
      const baseline = await startEtcdBaseline(root);
      let measured: { creates: number[]; puts: number[] };
      try {
        measured = await commitLatencies(client, baseline);
      } finally {
        if (typeof baseline !== "string") await baseline.cluster.stop();
      }
      const latencies = measured.creates;
      await client.createKey({ name: "bench-es256", kty: "EC", crv: "P-256" });
      await client.createKey({ name: "bench-rs256", kty: "RSA", size: 2048 });
      const data = Buffer.alloc(64, 7);
      const echoServer = await startEcho();
      let rates: Record<string, number>;
      try {
        rates = await interleavedRates({
          es: () => client.sign({ name: "bench-es256", alg: "ES256", data }),
          rs: () => client.sign({ name: "bench-rs256", alg: "RS256", data }),
          echo: echoServer.call,
        });
      } finally {
        echoServer.close();
      }
      const poolEs = rates.es ?? Number.NaN;
      const poolRs = rates.rs ?? Number.NaN;
      const echo = rates.echo ?? Number.NaN;
      const rawEs = rawSignRate(
        generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey,
        "ieee-p1363",
        MEASURE_MS,
      );
      const rawRs = rawSignRate(
        generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey,
        undefined,
        MEASURE_MS,
      );
      const f = (n: number) => n.toFixed(0).padStart(7);
      const createP50 = percentile(latencies, 50);
      console.log(
        `create-key commit latency (${CREATE_SAMPLES} sequential EC P-256 creates): p50 ${createP50.toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms`,
      );
      reportFigure({ name: "commit_p50_ms", value: createP50, unit: "ms" });
      if (typeof baseline === "string") console.log(`etcd baseline skipped: ${baseline}`);
      else {
        const etcd = measured.puts;
        const etcdP50 = percentile(etcd, 50);
        console.log(
          `baseline: etcd put latency (${CREATE_SAMPLES} sequential puts to the leader, each after one create): p50 ${etcdP50.toFixed(2)} ms, p99 ${percentile(etcd, 99).toFixed(1)} ms`,
        );
        reportFigure({ name: "etcd_put_p50_ms", value: etcdP50, unit: "ms" });
        const ratio = goalFigure("commit_p50_ratio_to_etcd", createP50 / etcdP50, "x", "<=", 1.0);
        console.log(
          `create-key commit p50 / etcd put p50: ${ratio.value.toFixed(2)}x (goal ${ratio.goal}: ${ratio.met ? "met" : "NOT met"})`,
        );
        reportFigure(ratio);
      }
      console.log(`baseline: plain gRPC echo (loopback, no TLS, ${IN_FLIGHT} in flight): ${f(echo)} calls/s`);
      for (const [alg, pool, raw] of [
        ["ES256", poolEs, rawEs],
        ["RS256", poolRs, rawRs],
      ] as const) {
        console.log(
          `${alg} sign through the pool (${IN_FLIGHT} in flight): ${f(pool)} ops/s | raw node:crypto (1 thread): ${f(raw)} ops/s | ` +
            `pool/raw ${(pool / raw).toFixed(3)} | pool/echo ${(pool / echo).toFixed(3)}`,
        );
      }
      reportFigure({ name: "echo_calls_per_s", value: echo, unit: "1/s" });
      reportFigure({ name: "es256_sign_per_s", value: poolEs, unit: "1/s" });
      reportFigure({ name: "rs256_sign_per_s", value: poolRs, unit: "1/s" });
      const es = goalFigure("es256_sign_ratio_to_echo", poolEs / echo, "x", ">=", 0.8);
      // RSA signing is CPU-bound: its ceiling is the echo rate or two cores of raw signing, whichever is lower.
      const rs = goalFigure(
        "rs256_sign_ratio_to_ceiling",
        poolRs / Math.min(echo, 2 * rawRs),
        "x",
        ">=",
        0.8,
      );
      for (const g of [es, rs]) {
        console.log(`${g.name}: ${g.value.toFixed(3)} (goal ${g.goal}: ${g.met ? "met" : "NOT met"})`);
        reportFigure(g);
      }
    } finally {
      client.close();
    }
  } finally {
    await stopPool(runDir, () => {}).catch((e: unknown) =>
      console.error(`stopping the bench pool: ${String(e)}`),
    );
    await rm(root, { recursive: true, force: true });
    console.log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}

if (process.argv.includes("--echo-server")) serveEcho();
else await bench();
