/**
 * Clients during a paused primary (`npm run bench -- pause`): a real pool of three node
 * processes on loopback and CLIENTS SDK clients in a loop (half create keys, half sign),
 * each with its own connection. The primary is SIGSTOPped; each client's stall is the
 * time from the fault to the first success of a call it started after the fault. The
 * primary gets SIGCONT once every client has had one (or after ROUND_LIMIT_MS), and the
 * pool is healthy again before the next round. Figure pause_client_stall_ms: the median
 * over ROUNDS of the slowest client's stall; goal: at most 2x the election timeout.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_RAFT_TIMING } from "@hsmpool/hfc";
import { goalFigure, reportFigure } from "@hsmpool/hfc/bench-support";
import type { FabricControllerClient, PoolStatus } from "@hsmpool/wire";
import { median } from "../bench-support/median.js";
import { startPool, stopPool } from "../cli/lifecycle.js";
import { hfcForRunDir, PoolClient } from "../sdk/pool-client.js";

const ROUNDS = Number(process.env.HSMPOOL_BENCH_PAUSES ?? 3);
const CLIENTS = 6;
const ROUND_LIMIT_MS = 30_000;
const HEALTHY_LIMIT_MS = 90_000;
const ELECTION_TIMEOUT_MS = DEFAULT_RAFT_TIMING.electionTickMs * DEFAULT_RAFT_TIMING.electionTicks;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const healthy = (s: PoolStatus) =>
  s.members.length === 3 &&
  s.primary !== "" &&
  s.members.every((m) => m.health === "up" && m.ownership === "synced");

async function waitHealthy(hfc: FabricControllerClient): Promise<PoolStatus> {
  const deadline = Date.now() + HEALTHY_LIMIT_MS;
  for (;;) {
    const s = await hfc.status(2000).catch(() => undefined);
    if (s && healthy(s)) return s;
    if (Date.now() > deadline) throw new Error(`benchmark: pool not healthy within ${HEALTHY_LIMIT_MS} ms`);
    await sleep(100);
  }
}

/** One client's loop; resolves with its stall (ms after `faultAt()`), or NaN if it had no success in time. */
async function clientLoop(
  client: PoolClient,
  index: number,
  faultAt: () => number | undefined,
  stop: () => boolean,
): Promise<number> {
  const data = Buffer.alloc(32, index);
  let n = 0;
  while (!stop()) {
    const started = performance.now();
    const ok =
      index % 2 === 0
        ? await client.createKey({ name: `pause-${index}-${n++}`, kty: "EC", crv: "P-256" }).then(
            () => true,
            () => false,
          )
        : await client.sign({ name: "pause-sign", alg: "ES256", data }).then(
            () => true,
            () => false,
          );
    const fault = faultAt();
    if (ok && fault !== undefined && started >= fault) return performance.now() - fault;
    if (!ok) await sleep(10);
  }
  return Number.NaN;
}

async function bench(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "hsmpool-bench-pause-"));
  const runDir = join(root, "run");
  let paused: number | undefined;
  const hfc = await (async () => {
    await startPool({ runDir, fabricDir: join(root, "fabric"), timeoutMs: 60_000, onProgress: () => {} });
    return hfcForRunDir(runDir);
  })().catch(async (e: unknown) => {
    await stopPool(runDir, () => {}).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
    throw e;
  });
  try {
    const setup = await PoolClient.connect({ runDir });
    await setup.createKey({ name: "pause-sign", kty: "EC", crv: "P-256" });
    setup.close();
    const worst: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      await waitHealthy(hfc);
      const clients = await Promise.all(
        Array.from({ length: CLIENTS }, () => PoolClient.connect({ runDir })),
      );
      let fault: number | undefined;
      let done = false;
      const loops = clients.map((c, i) =>
        clientLoop(
          c,
          i,
          () => fault,
          () => done,
        ),
      );
      try {
        await sleep(1000); // every client busy, its connections up
        const status = await waitHealthy(hfc);
        const primary = status.members.find((m) => m.id === status.primary);
        if (!primary) throw new Error("benchmark: no primary");
        fault = performance.now();
        process.kill(primary.pid, "SIGSTOP");
        paused = primary.pid;
        const stalls = await Promise.race([Promise.all(loops), sleep(ROUND_LIMIT_MS).then(() => undefined)]);
        done = true;
        process.kill(primary.pid, "SIGCONT");
        paused = undefined;
        const s = stalls ?? (await Promise.all(loops));
        const slowest = s.some(Number.isNaN) ? ROUND_LIMIT_MS : Math.max(...s);
        worst.push(slowest);
        console.log(
          `round ${round + 1}: paused ${primary.id}; first success after the fault per client: ${s.map((x) => (Number.isNaN(x) ? "none" : x.toFixed(0))).join(", ")} ms`,
        );
      } finally {
        done = true;
        if (paused !== undefined) process.kill(paused, "SIGCONT");
        paused = undefined;
        await Promise.all(loops);
        for (const c of clients) c.close();
      }
    }
    const stall = goalFigure("pause_client_stall_ms", median(worst), "ms", "<=", 2 * ELECTION_TIMEOUT_MS);
    console.log(
      `clients after SIGSTOP of the primary (${CLIENTS} clients, ${ROUNDS} rounds): slowest client's first success median ${stall.value.toFixed(0)} ms after the fault ` +
        `(election timeout ${ELECTION_TIMEOUT_MS} ms; goal ${stall.goal}: ${stall.met ? "met" : "NOT met"})`,
    );
    reportFigure(stall);
  } finally {
    if (paused !== undefined) process.kill(paused, "SIGCONT");
    hfc.close();
    await stopPool(runDir, () => {}).catch((e: unknown) =>
      console.error(`stopping the bench pool: ${String(e)}`),
    );
    await rm(root, { recursive: true, force: true });
  }
}

await bench();
