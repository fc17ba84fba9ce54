/**
 * Failover and healing benchmark (`npm run bench -- failover`), in one run:
 * - hsmpool failover: SIGKILL of the primary → first acknowledged write (CreateKey);
 * - hsmpool healing: SIGKILL of the primary → three healthy, synced members again
 *   (the HFC restarts the process in place);
 * - baseline: the same failover measurement on a three-member etcd cluster on
 *   loopback with hsmpool's heartbeat (100 ms) and election timeout (1000 ms), pre-vote
 *   on. etcd always randomises the timeout to [1, 2) s; hsmpool draws from
 *   [1, 1 + jitter) s (DEFAULT_RAFT_TIMING.electionJitterTicks).
 * Medians over at least 10 kills each; prints the failover ratio against etcd.
 * Goals: failover no slower than etcd's; healing under 3 s.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import * as grpc from "@grpc/grpc-js";
import { DEFAULT_RAFT_TIMING } from "@hsmpool/hfc";
import {
  EtcdCluster,
  etcdVersion,
  findOrInstallEtcd,
  goalFigure,
  reportFigure,
} from "@hsmpool/hfc/bench-support";
import { poolResourceUri } from "@hsmpool/pool";
import {
  DATA_PLANE_CHANNEL_OPTIONS,
  dataPlaneCredentials,
  FabricControllerClient,
  type PoolStatus,
  poolProto,
  readHfcInfo,
  unaryCall,
} from "@hsmpool/wire";
import { median } from "../bench-support/median.js";
import { percentile } from "../bench-support/percentile.js";
import { startPool, stopPool } from "../cli/lifecycle.js";
import { issueClientIdentity } from "../sdk/identity.js";
import { TenantDirectoryCredential } from "../tenant/credential.js";

const KILLS = Number(process.env.HSMPOOL_BENCH_KILLS ?? 10);
const ATTEMPT_DEADLINE_MS = 300;
const ROUND_PAUSE_MS = 10;
const PER_KILL_LIMIT_MS = 30_000;
const timing = {
  heartbeatMs: DEFAULT_RAFT_TIMING.electionTickMs * DEFAULT_RAFT_TIMING.heartbeatTicks,
  electionTimeoutMs: DEFAULT_RAFT_TIMING.electionTickMs * DEFAULT_RAFT_TIMING.electionTicks,
  electionJitterMs: DEFAULT_RAFT_TIMING.electionTickMs * DEFAULT_RAFT_TIMING.electionJitterTicks,
};

const say = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function stats(samples: number[]): { median: number; p90: number; min: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { median: median(s), p90: percentile(s, 90), min: s[0] ?? Number.NaN, max: s.at(-1) ?? Number.NaN };
}

const fmt = (label: string, samples: number[]) => {
  const x = stats(samples);
  return `${label}: median ${x.median.toFixed(0)} ms (p90 ${x.p90.toFixed(0)}, min ${x.min.toFixed(0)}, max ${x.max.toFixed(0)}, n=${samples.length})`;
};

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  limitMs = PER_KILL_LIMIT_MS,
): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`benchmark: no ${what} within ${limitMs} ms`);
    await sleep(20);
  }
}

const healthyWithout = (s: PoolStatus, pidGone: number) =>
  s.state === "healthy" &&
  s.members.length === 3 &&
  s.members.every((m) => m.health === "up" && m.ownership === "synced" && m.pid !== pidGone) &&
  s.healing.every((h) => h.phase === "ready" || h.phase === "failed");

// ---------------------------------------------------------------- hsmpool

async function benchPool(root: string): Promise<{ failover: number[]; healing: number[] }> {
  const runDir = join(root, "run");
  // `hsmpool up` as a user runs it: default health polling (250 ms, 3 misses), the default
  // tenant bound at creation; the writes carry its admin's bearer token like any SDK call.
  await startPool({ runDir, fabricDir: join(root, "fabric"), timeoutMs: 120_000, onProgress: () => {} });
  const info = await readHfcInfo(runDir);
  if (!info) throw new Error("no hfc.json");
  const hfc = new FabricControllerClient(info.controlAddress);
  const clients = new Map<string, grpc.Client>();
  try {
    const up = await until(
      "healthy pool",
      async () => ((s) => (healthyWithout(s, -1) ? s : undefined))(await hfc.status()),
      120_000,
    );
    const credentials = dataPlaneCredentials(await issueClientIdentity(hfc));
    const { token } = await TenantDirectoryCredential.fromEnvironment().getToken(
      `${poolResourceUri(up.poolId)}/.default`,
    );
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${token}`);
    const client = (address: string) => {
      let c = clients.get(address);
      if (!c) {
        c = new (poolProto().KeyVault.ctor)(address, credentials, DATA_PLANE_CHANNEL_OPTIONS);
        clients.set(address, c);
      }
      return c;
    };
    const write = async (address: string, name: string) => {
      try {
        await unaryCall(
          client(address),
          "CreateKey",
          { name, kty: "EC", crv: "P-256", requestId: randomUUID() },
          { deadlineMs: ATTEMPT_DEADLINE_MS, metadata },
        );
        return true;
      } catch {
        return false;
      }
    };
    const failover: number[] = [];
    const healing: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      const before = await until("healthy pool", async () =>
        ((s) => (healthyWithout(s, -1) ? s : undefined))(await hfc.status()),
      );
      const primary = before.members.find((m) => m.id === before.primary);
      if (!primary) throw new Error("no primary");
      for (const m of before.members) await write(m.dataAddress, `warm-${k}-${m.id}`); // channels connected
      const survivors = before.members.filter((m) => m.id !== primary.id).map((m) => m.dataAddress);
      const t0 = performance.now();
      process.kill(primary.pid, "SIGKILL");
      const healed = until("healed pool", async () => {
        const s = await hfc.status(1000).catch(() => undefined);
        return s && healthyWithout(s, primary.pid) ? performance.now() - t0 : undefined;
      });
      let n = 0;
      const firstWrite = await until("write after the kill", async () => {
        for (const address of survivors)
          if (await write(address, `after-${k}-${n++}`)) return performance.now() - t0;
        await sleep(ROUND_PAUSE_MS);
        return undefined;
      });
      failover.push(firstWrite);
      healing.push(await healed);
      say(
        `  hsmpool kill ${k + 1}/${KILLS} (${primary.id}): first write ${firstWrite.toFixed(0)} ms, healed ${healing.at(-1)?.toFixed(0)} ms`,
      );
    }
    return { failover, healing };
  } finally {
    for (const c of clients.values()) c.close();
    hfc.close();
    await stopPool(runDir, () => {}).catch((e: unknown) => say(`stopping the bench pool: ${String(e)}`));
  }
}

// ---------------------------------------------------------------- etcd

async function benchEtcd(root: string, binary: string): Promise<number[]> {
  const cluster = await EtcdCluster.start(binary, join(root, "etcd"), timing);
  try {
    const failover: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      const leader = await until("etcd leader", () => cluster.leader());
      for (const i of cluster.live()) await cluster.put(i, `warm-${k}`, 1000);
      const survivors = cluster.live().filter((i) => i !== leader);
      const t0 = performance.now();
      await cluster.kill(leader);
      let n = 0;
      const firstPut = await until("put after the kill", async () => {
        for (const i of survivors)
          if (await cluster.put(i, `after-${k}-${n++}`, ATTEMPT_DEADLINE_MS)) return performance.now() - t0;
        await sleep(ROUND_PAUSE_MS);
        return undefined;
      });
      failover.push(firstPut);
      say(`  etcd kill ${k + 1}/${KILLS} (e${leader + 1}): first put ${firstPut.toFixed(0)} ms`);
      await cluster.restart(leader);
    }
    return failover;
  } finally {
    await cluster.stop();
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "hsmpool-bench-healing-"));
  try {
    say(
      `healing benchmark: ${KILLS} SIGKILLs of the primary each; heartbeat ${timing.heartbeatMs} ms, ` +
        `election timeout ${timing.electionTimeoutMs} ms randomised by up to ${timing.electionJitterMs} ms ` +
        `(etcd: up to ${timing.electionTimeoutMs} ms), pre-vote on both sides`,
    );
    const ours = await benchPool(root);
    const etcd = findOrInstallEtcd(say);
    let etcdFailover: number[] | undefined;
    let etcdLabel = "";
    if ("binary" in etcd) {
      etcdLabel = `etcd ${etcdVersion(etcd.binary)}`;
      etcdFailover = await benchEtcd(root, etcd.binary);
    } else {
      say(`  etcd baseline skipped: ${etcd.skip}`);
    }
    say("");
    say(fmt("hsmpool failover (kill -> first acknowledged write)", ours.failover));
    say(fmt("hsmpool healing  (kill -> 3 healthy synced members)", ours.healing));
    const failover = stats(ours.failover);
    reportFigure({ name: "failover_median_ms", value: failover.median, unit: "ms" });
    reportFigure(goalFigure("failover_p90_over_median", failover.p90 / failover.median, "x", "<=", 1.3));
    reportFigure(goalFigure("restart_healing_median_ms", stats(ours.healing).median, "ms", "<", 3000));
    if (etcdFailover) {
      say(fmt(`${etcdLabel} failover (kill -> first acknowledged put)`, etcdFailover));
      const ratio = stats(ours.failover).median / stats(etcdFailover).median;
      reportFigure(goalFigure("failover_median_ratio_to_etcd", ratio, "x", "<=", 1.0));
      say(
        `failover ratio hsmpool/etcd: ${ratio.toFixed(2)}x (goal <= 1.00x: ${ratio <= 1 ? "met" : "not met"})`,
      );
    } else {
      say("failover ratio hsmpool/etcd: not measured (no etcd)");
      reportFigure({
        name: "failover_median_ratio_to_etcd",
        value: Number.NaN,
        unit: "x",
        goal: "<= 1",
        met: false,
      });
    }
    const healMedian = stats(ours.healing).median;
    say(
      `healing median ${healMedian.toFixed(0)} ms (goal < 3000 ms: ${healMedian < 3000 ? "met" : "not met"})`,
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
