/**
 * Pool benchmark (`npm run bench -- pool`): a real pool of three node processes on
 * loopback. ES256 and RS256 sign throughput through the pool with 64 requests in
 * flight, as a ratio to raw node:crypto signing and to a plain gRPC echo (separate
 * process, loopback, no TLS) measured in the same run — all in interleaved
 * rounds after a warm-up each, so the machine's load hits them alike. Three more echo
 * baselines (figures, no goal): the plain echo as messages on one open stream (the SDK
 * sends crypto operations as messages of a session, so the sign's ratio to it is reported
 * too: the goal stays against the unary echo), and, splitting the distance between a plain
 * echo and a sign into what the transport costs, the echo over the data plane's mTLS (its
 * server and client credentials shaped like a member's and the SDK's), and that with an
 * `authorization: Bearer` entry of the pool token's length (HTTP/2 never indexes it, so it
 * is encoded and decoded in full on every call); create-key commit latency
 * p50/p99 (3 members, fsync) as a ratio to etcd's put p50 on a three-member etcd
 * cluster on loopback (Debian's etcd-server, fsync on as always), creates and puts
 * taken in turn so that both meet the same machine load.
 * Temp dirs; the pool and etcd are always stopped at the end.
 */
import { fork } from "node:child_process";
import { generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { FabricCa } from "@hsmpool/hfc";
import {
  EtcdCluster,
  etcdVersion,
  findOrInstallEtcd,
  goalFigure,
  reportFigure,
} from "@hsmpool/hfc/bench-support";
import { poolResourceUri } from "@hsmpool/pool";
import {
  certDerToPem,
  createCsrKeyPair,
  DATA_PLANE_CHANNEL_OPTIONS,
  dataPlaneCredentials,
  readNodePids,
  type TlsClientMaterial,
} from "@hsmpool/wire";
import { percentile } from "../bench-support/percentile.js";
import { startPool, stopPool } from "../cli/lifecycle.js";
import { PoolClient } from "../sdk/pool-client.js";
import { TenantDirectoryCredential } from "../tenant/credential.js";

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
/** The same echo as messages on one open bidirectional stream (what the SDK's crypto session rides on). */
const ECHO_STREAM_PATH = "/hsmpool.bench.Echo/EchoStream";
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

/** The echo server's certificate (fabric PKI, like a member's data-plane one), in memory only. */
interface EchoServerTls {
  keyPem: string;
  certPem: string;
  caPem: string;
}

/**
 * Child mode: a gRPC echo server on 127.0.0.1, plain and behind a TLS port made as a
 * member's data-plane server makes it (node:tls terminates, client certificate
 * required for gRPC, the sockets injected into grpc-js); gets its certificate from the
 * parent and sends both ports back.
 */
function serveEcho(): void {
  const echo: grpc.UntypedServiceImplementation = {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
      cb(null, call.request),
    EchoStream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on("data", (b: Buffer) => call.write(b));
      call.on("end", () => call.end());
      call.on("error", () => {});
    },
  };
  const definition: grpc.ServiceDefinition = {
    Echo: {
      path: ECHO_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
    EchoStream: {
      path: ECHO_STREAM_PATH,
      requestStream: true,
      responseStream: true,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  };
  const server = new grpc.Server();
  server.addService(definition, echo);
  // The TLS echo's gRPC server is configured as a member's data-plane server is.
  const tlsGrpc = new grpc.Server({ "grpc.enable_channelz": 0 });
  tlsGrpc.addService(definition, echo);
  const injector = tlsGrpc.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  process.once("message", (m) => {
    const tls = m as EchoServerTls;
    const tlsServer = createTlsServer({
      key: tls.keyPem,
      cert: tls.certPem,
      ca: [tls.caPem],
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: ["h2", "http/1.1"],
      minVersion: "TLSv1.2",
    });
    tlsServer.on("secureConnection", (socket: TLSSocket) => {
      if (socket.alpnProtocol === "h2" && socket.authorized) injector.injectConnection(socket);
      else socket.destroy();
    });
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) throw err;
      tlsServer.listen(0, "127.0.0.1", () => {
        const address = tlsServer.address();
        process.send?.({ port, tlsPort: typeof address === "object" && address ? address.port : 0 });
      });
    });
    process.on("disconnect", () => {
      tlsServer.close();
      server.forceShutdown();
      tlsGrpc.forceShutdown();
    });
  });
}

/** A fabric CA in `pkiDir` and, from it, the echo server's certificate and a client's (the SDK's kind). */
async function echoTls(pkiDir: string): Promise<{ server: EchoServerTls; client: TlsClientMaterial }> {
  const ca = await FabricCa.openOrCreate(pkiDir);
  const serverKeys = await createCsrKeyPair();
  const serverCert = await ca.issueNodeCert("echo", "bench", serverKeys.csrDer);
  const clientKeys = await createCsrKeyPair();
  const clientCert = await ca.issueClientCert(clientKeys.csrDer);
  return {
    server: {
      keyPem: serverKeys.privateKeyPem.toString(),
      certPem: certDerToPem(serverCert.certDer),
      caPem: ca.caCertPem,
    },
    client: {
      caCertPem: ca.caCertPem,
      certPem: certDerToPem(clientCert.certDer),
      privateKeyPem: clientKeys.privateKeyPem,
    },
  };
}

type EchoCall = () => Promise<Buffer>;

function echoCall(client: grpc.Client, payload: Buffer, metadata?: grpc.Metadata): EchoCall {
  return () =>
    new Promise<Buffer>((resolve, reject) => {
      const done = (e: grpc.ServiceError | null, r?: Buffer) => (e ? reject(e) : resolve(r as Buffer));
      if (metadata) client.makeUnaryRequest(ECHO_PATH, identity, identity, payload, metadata, done);
      else client.makeUnaryRequest(ECHO_PATH, identity, identity, payload, done);
    });
}

/** Echo calls as messages on one stream (the server answers in order, so the oldest waiting call gets each answer). */
function echoStreamCall(client: grpc.Client, payload: Buffer): { call: EchoCall; close: () => void } {
  const stream = client.makeBidiStreamRequest<Buffer, Buffer>(ECHO_STREAM_PATH, identity, identity);
  const waiting: { resolve: (b: Buffer) => void; reject: (e: unknown) => void }[] = [];
  stream.on("data", (b: Buffer) => waiting.shift()?.resolve(b));
  stream.on("error", (e: unknown) => {
    for (const w of waiting.splice(0)) w.reject(e);
  });
  return {
    call: () =>
      new Promise<Buffer>((resolve, reject) => {
        waiting.push({ resolve, reject });
        stream.write(payload);
      }),
    close: () => stream.cancel(),
  };
}

/**
 * A gRPC echo server in a child process and calls to it: plain; plain as messages on one stream; over the data plane's
 * mTLS; and over mTLS with `authorization: Bearer <bearerLength random characters>`
 * (never a real token: the echo server is no part of the pool). `close` stops all.
 */
async function startEcho(
  pkiDir: string,
  bearerLength: number,
): Promise<{
  plain: EchoCall;
  stream: EchoCall;
  tls: EchoCall;
  tlsBearer: EchoCall;
  pid: number;
  close: () => void;
}> {
  const material = await echoTls(pkiDir);
  const child = fork(fileURLToPath(import.meta.url), ["--echo-server"], { stdio: "inherit" });
  const ports = new Promise<{ port: number; tlsPort: number }>((resolve) =>
    child.once("message", (m) => resolve(m as { port: number; tlsPort: number })),
  );
  child.send(material.server);
  const { port, tlsPort } = await ports;
  const plain = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const tls = new grpc.Client(
    `127.0.0.1:${tlsPort}`,
    dataPlaneCredentials(material.client),
    DATA_PLANE_CHANNEL_OPTIONS,
  );
  const bearer = new grpc.Metadata();
  bearer.set(
    "authorization",
    `Bearer ${randomBytes(bearerLength).toString("base64url").slice(0, bearerLength)}`,
  );
  const payload = Buffer.alloc(64, 1);
  const streamed = echoStreamCall(plain, payload);
  return {
    plain: echoCall(plain, payload),
    stream: streamed.call,
    tls: echoCall(tls, payload),
    tlsBearer: echoCall(tls, payload, bearer),
    pid: child.pid ?? 0,
    close: () => {
      streamed.close();
      plain.close();
      tls.close();
      child.disconnect();
      child.kill();
    },
  };
}

/** CPU seconds (user + system) a process has used so far; NaN where /proc cannot tell. */
function cpuSecondsOf(pid: number): number {
  try {
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th, in clock ticks (100/s).
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** A workload: its operation and the other processes that serve it (their CPU counts with this one's). */
interface Workload {
  op: () => Promise<unknown>;
  servers: number[];
}

/**
 * Rates of several workloads measured in ROUNDS interleaved rounds (each warmed up first),
 * so a change of the machine's load during the run hits all of them alike; and the CPU
 * each operation cost, this process's plus its servers' (for the pool: the members,
 * whose idle work — ticks, heartbeats, health probes — is counted too).
 */
async function interleavedRates(
  workloads: Record<string, Workload>,
): Promise<Record<string, { rate: number; cpuMsPerOp: number }>> {
  const done: Record<string, { ops: number; seconds: number; cpuSeconds: number }> = {};
  for (const [name, w] of Object.entries(workloads)) {
    await run(IN_FLIGHT, WARM_UP_MS, w.op);
    done[name] = { ops: 0, seconds: 0, cpuSeconds: 0 };
  }
  const serverCpu = (w: Workload) => w.servers.reduce((sum, pid) => sum + cpuSecondsOf(pid), 0);
  for (let round = 0; round < RATE_ROUNDS; round++) {
    for (const [name, w] of Object.entries(workloads)) {
      const client = process.cpuUsage();
      const servers = serverCpu(w);
      const r = await run(IN_FLIGHT, MEASURE_MS / RATE_ROUNDS, w.op);
      const used = process.cpuUsage(client);
      const d = done[name]!;
      d.ops += r.ops;
      d.seconds += r.seconds;
      d.cpuSeconds += (used.user + used.system) / 1e6 + serverCpu(w) - servers;
    }
  }
  return Object.fromEntries(
    Object.entries(done).map(([name, d]) => [
      name,
      { rate: d.ops / d.seconds, cpuMsPerOp: (1000 * d.cpuSeconds) / d.ops },
    ]),
  );
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

async function bench(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "hsmpool-bench-pool-"));
  const runDir = join(root, "run");
  const t0 = Date.now();
  try {
    const status = await startPool({
      runDir,
      fabricDir: join(root, "fabric"),
      timeoutMs: 60_000,
      onProgress: () => {},
    });
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
      // The echo's bearer entry is as long as the SDK's (the same credential's token for this pool).
      const token = await TenantDirectoryCredential.fromEnvironment().getToken(
        `${poolResourceUri(status.poolId)}/.default`,
      );
      const echoServer = await startEcho(join(root, "echo-pki"), token?.token.length ?? 0);
      const members = Object.values(await readNodePids(runDir));
      const echoPid = [echoServer.pid];
      let workloads: Record<string, { rate: number; cpuMsPerOp: number }>;
      try {
        workloads = await interleavedRates({
          es: { op: () => client.sign({ name: "bench-es256", alg: "ES256", data }), servers: members },
          rs: { op: () => client.sign({ name: "bench-rs256", alg: "RS256", data }), servers: members },
          echo: { op: echoServer.plain, servers: echoPid },
          echoStream: { op: echoServer.stream, servers: echoPid },
          echoTls: { op: echoServer.tls, servers: echoPid },
          echoTlsBearer: { op: echoServer.tlsBearer, servers: echoPid },
        });
      } finally {
        echoServer.close();
      }
      const rate = (name: string) => workloads[name]?.rate ?? Number.NaN;
      const cpuMs = (name: string) => workloads[name]?.cpuMsPerOp ?? Number.NaN;
      const poolEs = rate("es");
      const poolRs = rate("rs");
      const echo = rate("echo");
      const echoStream = rate("echoStream");
      const echoTls = rate("echoTls");
      const echoTlsBearer = rate("echoTlsBearer");
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
      console.log(
        `baseline: the same echo over the data plane's mTLS: ${f(echoTls)} calls/s (${(echoTls / echo).toFixed(3)}x plain); ` +
          `with a bearer token's authorization entry: ${f(echoTlsBearer)} calls/s (${(echoTlsBearer / echo).toFixed(3)}x plain)`,
      );
      for (const [alg, pool, raw] of [
        ["ES256", poolEs, rawEs],
        ["RS256", poolRs, rawRs],
      ] as const) {
        console.log(
          `${alg} sign through the pool (${IN_FLIGHT} in flight): ${f(pool)} ops/s | raw node:crypto (1 thread): ${f(raw)} ops/s | ` +
            `pool/raw ${(pool / raw).toFixed(3)} | pool/echo ${(pool / echo).toFixed(3)}`,
        );
      }
      console.log(
        `baseline: the plain echo as messages on one open stream (what the SDK's crypto session rides on): ${f(echoStream)} calls/s (${(echoStream / echo).toFixed(3)}x plain unary)`,
      );
      reportFigure({ name: "echo_calls_per_s", value: echo, unit: "1/s" });
      reportFigure({ name: "echo_stream_calls_per_s", value: echoStream, unit: "1/s" });
      reportFigure({ name: "echo_tls_calls_per_s", value: echoTls, unit: "1/s" });
      reportFigure({ name: "echo_tls_bearer_calls_per_s", value: echoTlsBearer, unit: "1/s" });
      // Where the sign stands against the transport it cannot avoid (informational, no goal).
      for (const [name, base] of [
        ["es256_sign_ratio_to_echo_stream", echoStream],
        ["es256_sign_ratio_to_echo_tls", echoTls],
        ["es256_sign_ratio_to_echo_tls_bearer", echoTlsBearer],
      ] as const) {
        reportFigure({ name, value: poolEs / base, unit: "x" });
        console.log(`${name}: ${(poolEs / base).toFixed(3)}`);
      }
      // CPU per operation, client + servers (informational): what each step from a plain echo to a sign costs.
      const cpu: [string, string][] = [
        ["echo_cpu_ms_per_call", "echo"],
        ["echo_stream_cpu_ms_per_call", "echoStream"],
        ["echo_tls_cpu_ms_per_call", "echoTls"],
        ["echo_tls_bearer_cpu_ms_per_call", "echoTlsBearer"],
        ["es256_sign_cpu_ms_per_op", "es"],
        ["rs256_sign_cpu_ms_per_op", "rs"],
      ];
      for (const [name, workload] of cpu) reportFigure({ name, value: cpuMs(workload), unit: "ms" });
      console.log(
        `CPU per operation (this process + its servers; the members' idle work included): ${cpu
          .map(
            ([name, workload]) =>
              `${name.replace(/_cpu_ms_per_(call|op)$/, "")} ${cpuMs(workload).toFixed(3)} ms`,
          )
          .join(", ")}`,
      );
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
