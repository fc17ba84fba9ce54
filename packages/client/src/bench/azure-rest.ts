/**
 * REST benchmark (`npm run bench -- azure-rest`): ES256 sign with 64 requests in flight
 * through the Key Vault REST endpoint — HTTPS keep-alive connections to the HFC's TCP
 * balancer, TLS terminated in the members, a bearer token on every request — as a ratio
 * to the pool's own gRPC path (PoolClient.sign) on the same pool in the same run.
 * Goal ≥ 0.8. Temp dirs; the pool is always stopped at the end.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { Agent, request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { goalFigure, reportFigure } from "@hsmpool/hfc/bench-support";
import { startPool, stopPool } from "../cli/lifecycle.js";
import { hsmpoolCredential } from "../sdk/azure-credential.js";
import { discoverEndpoint } from "../sdk/endpoint.js";
import { PoolClient } from "../sdk/pool-client.js";

const IN_FLIGHT = 64;
const MEASURE_MS = 3000;

/** Runs `op` with `inFlight` concurrent loops for `durationMs`; returns completed ops per second. */
async function throughput(inFlight: number, durationMs: number, op: () => Promise<unknown>): Promise<number> {
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
  return done / ((Date.now() - started) / 1000);
}

function post(agent: Agent, url: string, token: string, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        agent,
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on("end", () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`REST sign answered ${res.statusCode}`)),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function bench(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "hsmpool-bench-rest-"));
  const runDir = join(root, "run");
  try {
    await startPool({ runDir, fabricDir: join(root, "fabric"), timeoutMs: 60_000, onProgress: () => {} });
    const client = await PoolClient.connect({ runDir });
    const endpoint = await discoverEndpoint(runDir);
    const token = (await hsmpoolCredential().getToken(`${endpoint.resource}/.default`))?.token ?? "";
    const agent = new Agent({
      keepAlive: true,
      maxSockets: IN_FLIGHT,
      ca: await readFile(endpoint.caFile, "utf8"),
    });
    try {
      await client.createKey({ name: "bench-es256", kty: "EC", crv: "P-256" });
      const data = Buffer.alloc(64, 7);
      const grpcSign = () => client.sign({ name: "bench-es256", alg: "ES256", data });
      const body = JSON.stringify({
        alg: "ES256",
        value: createHash("sha256").update(data).digest("base64url"),
      });
      const url = `${endpoint.url}/keys/bench-es256//sign?api-version=7.6`;
      const restSign = () => post(agent, url, token, body);
      await throughput(IN_FLIGHT, 500, grpcSign); // warm-up
      await throughput(IN_FLIGHT, 500, restSign);
      // Interleaved, so load on the shared machine hits both paths alike.
      const grpc1 = await throughput(IN_FLIGHT, MEASURE_MS, grpcSign);
      const rest1 = await throughput(IN_FLIGHT, MEASURE_MS, restSign);
      const grpc2 = await throughput(IN_FLIGHT, MEASURE_MS, grpcSign);
      const rest2 = await throughput(IN_FLIGHT, MEASURE_MS, restSign);
      const grpcRate = (grpc1 + grpc2) / 2;
      const restRate = (rest1 + rest2) / 2;
      console.log(
        `ES256 sign, ${IN_FLIGHT} in flight: gRPC ${grpcRate.toFixed(0)} ops/s | REST via balancer ${restRate.toFixed(0)} ops/s`,
      );
      reportFigure({ name: "rest_es256_sign_per_s", value: restRate, unit: "1/s" });
      reportFigure({ name: "grpc_es256_sign_per_s", value: grpcRate, unit: "1/s" });
      const ratio = goalFigure("rest_es256_sign_ratio_to_grpc", restRate / grpcRate, "x", ">=", 0.8);
      console.log(
        `${ratio.name}: ${ratio.value.toFixed(3)} (goal ${ratio.goal}: ${ratio.met ? "met" : "NOT met"})`,
      );
      reportFigure(ratio);
    } finally {
      agent.destroy();
      client.close();
    }
  } finally {
    await stopPool(runDir, () => {}).catch((e: unknown) =>
      console.error(`stopping the bench pool: ${String(e)}`),
    );
    await rm(root, { recursive: true, force: true });
  }
}

await bench();
