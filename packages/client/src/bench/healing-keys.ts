/**
 * Healing at scale (`npm run bench -- healing-keys`): a real pool filled with 10,000
 * EC P-256 keys through the SDK, then a secondary's server is lost (HFC LoseServer)
 * and a blank replacement joins, catches up (a snapshot streamed in chunks) and syncs
 * ownership. Then the SAME pool is filled on to 100,000 keys and healed again. Figures
 * per size: the median time from LoseServer to three healthy synced members again (3
 * rounds), the joiner's peak RSS (VmHWM), the serving primary's RSS rise while it
 * serves the snapshot, and (10k) the snapshot's bytes per key. Each fill stops at its
 * time budget; a size not reached is reported as the size reached, never as reached.
 * HSMPOOL_BENCH_100K=0 skips the 100k step.
 */
import { readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { goalFigure, reportFigure } from "@hsmpool/hfc/bench-support";
import { FabricControllerClient, type PoolStatus, readHfcInfo } from "@hsmpool/wire";
import { fillKeys } from "../bench-support/fill-keys.js";
import { median } from "../bench-support/median.js";
import { ensureFabric, startPool, stopPool } from "../cli/lifecycle.js";
import { PoolClient } from "../sdk/pool-client.js";

const ROUNDS = 3;
/** Creates in flight while filling: the primary batches concurrent creates into one Raft append and fsync. */
const FILL_IN_FLIGHT = Number(process.env.HSMPOOL_BENCH_FILL_IN_FLIGHT ?? 64);
const HEAL_LIMIT_MS = 180_000;
/** The fill stops here even when short of its count (the HSM persists every key: slow on a busy disk). */
const FILL_BUDGET_MS = Number(process.env.HSMPOOL_BENCH_FILL_BUDGET_MS ?? 480_000);
/** The budget of the fill from 10k to 100k keys. */
const FILL_100K_BUDGET_MS = Number(process.env.HSMPOOL_BENCH_FILL_100K_BUDGET_MS ?? 360_000);
/** Three members plus one spare per heal round, each in a rack of its own: 3 + 2 sizes x 3 rounds. */
const RACKS = 9;
const say = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A process's resident set in MiB: VmHWM = its peak so far, VmRSS = now (NaN when it is gone). */
function rssMiB(pid: number, field: "VmHWM" | "VmRSS"): number {
  try {
    const kb = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb ? Number(kb) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

const healthy = (s: PoolStatus, lost: readonly string[]) =>
  s.state === "healthy" &&
  s.members.length === 3 &&
  s.members.every((m) => m.health === "up" && m.ownership === "synced" && !lost.includes(m.server)) &&
  s.healing.every((h) => h.phase === "ready" || h.phase === "failed");

/** Where a node's memory is, from its Prometheus endpoint (prom-client's process metrics), for the log. */
async function memoryBreakdown(metricsUrl: string): Promise<string> {
  if (!metricsUrl) return "no metrics endpoint";
  try {
    const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5000) })).text();
    const mib = (re: RegExp) => {
      const v = re.exec(text)?.[1];
      return v === undefined ? "?" : (Number(v) / 2 ** 20).toFixed(1);
    };
    // A sample line (not its # HELP line): `<prefix><name>{labels} <value>`.
    const metric = (name: string) => new RegExp(`^\\w*${name}(?:\\{[^}]*\\})? (\\S+)$`, "m");
    const space = (name: string) =>
      mib(new RegExp(`nodejs_heap_space_size_total_bytes\\{[^}]*space="${name}"[^}]*\\} (\\S+)`));
    return [
      `rss ${mib(metric("process_resident_memory_bytes"))}`,
      `heap used ${mib(metric("nodejs_heap_size_used_bytes"))} of ${mib(metric("nodejs_heap_size_total_bytes"))}`,
      `(new ${space("new")}, old ${space("old")}, code ${space("code")}, large ${space("large_object")})`,
      `external ${mib(metric("nodejs_external_memory_bytes"))} MiB`,
    ].join(" ");
  } catch (e) {
    return `metrics unavailable (${String(e)})`;
  }
}

interface Heal {
  ms: number;
  /** The joiner's peak RSS (VmHWM: catch-up included) and what it holds once the pool is healed (VmRSS). */
  rssMiB: number;
  healedRssMiB: number;
  /** The primary's highest RSS while it served the heal, and its rise over its RSS before. */
  servingMiB: number;
  servingRiseMiB: number;
  joinerMemory: string;
}

/**
 * Waits for three healthy synced members before a round: losing a member while the pool
 * is still healing (say the HFC replaces one it fenced) takes its quorum with it, and no
 * joiner can then ever be admitted. Says so when it had to wait.
 */
async function untilHealthy(hfc: FabricControllerClient, lost: readonly string[]): Promise<PoolStatus> {
  const t0 = performance.now();
  for (;;) {
    const s = await hfc.status(2000).catch(() => undefined);
    if (s && healthy(s, lost)) {
      const waited = performance.now() - t0;
      if (waited > 1000) say(`  (the pool was not healthy before the round: waited ${waited.toFixed(0)} ms)`);
      return s;
    }
    if (performance.now() - t0 > HEAL_LIMIT_MS)
      throw new Error(`the pool was not healthy within ${HEAL_LIMIT_MS} ms before the round`);
    await sleep(100);
  }
}

/** Loses a secondary's server and times the way back to three healthy synced members. */
async function healOnce(hfc: FabricControllerClient, lost: string[]): Promise<Heal> {
  const before = await untilHealthy(hfc, lost);
  const victim = before.members.find((m) => m.id !== before.primary);
  if (!victim) throw new Error("no secondary to lose");
  const primaryPid = before.members.find((m) => m.id === before.primary)?.pid ?? 0;
  const servingBefore = rssMiB(primaryPid, "VmRSS");
  let serving = servingBefore;
  const t0 = performance.now();
  await hfc.loseServer(victim.server);
  lost.push(victim.server);
  let peak = Number.NaN;
  for (;;) {
    const s = await hfc.status(2000).catch(() => undefined);
    const joiner = s?.members.find((m) => !before.members.some((b) => b.id === m.id));
    if (joiner?.pid) peak = Math.max(Number.isNaN(peak) ? 0 : peak, rssMiB(joiner.pid, "VmHWM"));
    serving = Math.max(serving, rssMiB(primaryPid, "VmRSS"));
    if (s && healthy(s, lost)) {
      const healed = joiner?.pid ? rssMiB(joiner.pid, "VmRSS") : Number.NaN;
      const joinerMemory = await memoryBreakdown(joiner?.metricsUrl ?? "");
      return {
        joinerMemory,
        ms: performance.now() - t0,
        rssMiB: peak,
        healedRssMiB: healed,
        servingMiB: serving,
        servingRiseMiB: serving - servingBefore,
      };
    }
    if (performance.now() - t0 > HEAL_LIMIT_MS) throw new Error(`no healed pool within ${HEAL_LIMIT_MS} ms`);
    await sleep(20);
  }
}

/** The primary's Raft snapshot file size over the keys in it (taken every 1,000 entries: that many keys, give or take the few membership entries). */
function snapshotBytesPerKey(runDir: string, status: PoolStatus, keys: number): number {
  try {
    return (
      statSync(join(runDir, "nodes", status.primary, "state", "raft", "snapshot.bin")).size /
      (Math.floor(keys / 1000) * 1000)
    );
  } catch {
    return Number.NaN;
  }
}

/** Heals the pool ROUNDS times at its current size and reports the figures under `label`. */
async function healRounds(
  hfc: FabricControllerClient,
  lost: string[],
  label: "10k" | "100k" | "quick",
  target: number,
  keys: number,
): Promise<void> {
  const heals: Heal[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const h = await healOnce(hfc, lost).catch((e: unknown) => {
      say(`  ${label}: heal ${r + 1}/${ROUNDS} failed: ${String(e)}`);
      return undefined;
    });
    if (!h) {
      heals.length = 0; // a round that never healed: no median to report
      break;
    }
    heals.push(h);
    say(
      `  ${label}: heal ${r + 1}/${ROUNDS} ${h.ms.toFixed(0)} ms, joiner RSS peak ${h.rssMiB.toFixed(1)} MiB, once healed ${h.healedRssMiB.toFixed(1)} MiB; serving primary ${h.servingMiB.toFixed(1)} MiB (+${h.servingRiseMiB.toFixed(1)})`,
    );
    say(`    joiner once healed: ${h.joinerMemory}`);
  }
  const m = median(heals.map((h) => h.ms));
  const peakOf = (xs: number[]) => (xs.length === 0 ? Number.NaN : Math.max(...xs));
  const joinerPeak = peakOf(heals.map((h) => h.rssMiB));
  const joinerHealed = median(heals.map((h) => h.healedRssMiB));
  const serving = peakOf(heals.map((h) => h.servingMiB));
  const servingRise = median(heals.map((h) => h.servingRiseMiB));
  say(
    `healing a blank replacement with ${keys} keys: median ${m.toFixed(0)} ms, joiner peak RSS ${joinerPeak.toFixed(1)} MiB (once healed, median ${joinerHealed.toFixed(1)}), serving primary peak ${serving.toFixed(1)} MiB (median rise ${servingRise.toFixed(1)})`,
  );
  reportFigure({ name: `healing_${label}_keys_filled`, value: keys, unit: "keys" });
  const reached = keys >= target;
  if (!reached) {
    say(
      `${label}: the fill reached ${keys} of ${target} keys within its budget; figures below are for ${keys} keys`,
    );
    reportFigure({ name: `healing_${label}_partial_median_ms`, value: m, unit: "ms" });
  }
  const goal = label === "10k" ? 5000 : 20000;
  reportFigure(
    reached
      ? goalFigure(`healing_${label}_keys_median_ms`, m, "ms", "<", goal)
      : {
          name: `healing_${label}_keys_median_ms`,
          value: Number.NaN,
          unit: "ms",
          goal: `< ${goal}`,
          met: false,
        },
  );
  const rssFigure = `healing_${label}_keys_rss_mib`;
  if (label === "10k")
    reportFigure(goalFigure(rssFigure, reached ? joinerPeak : Number.NaN, "MiB", "<=", 80));
  else reportFigure({ name: rssFigure, value: joinerPeak, unit: "MiB" });
  reportFigure({ name: `healing_${label}_keys_healed_rss_mib`, value: joinerHealed, unit: "MiB" });
  reportFigure({ name: `healing_${label}_keys_serving_rss_mib`, value: serving, unit: "MiB" });
}

async function bench(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "hsmpool-bench-heal-keys-"));
  const runDir = join(root, "run");
  try {
    // Every round loses a server for good and needs a spare in a rack no member uses.
    await ensureFabric(join(root, "fabric"), () => {}, RACKS);
    await startPool({ runDir, fabricDir: join(root, "fabric"), timeoutMs: 120_000, onProgress: () => {} });
    const client = await PoolClient.connect({
      runDir,
      callDeadlineMs: 30_000,
      retry: { maxAttempts: 30, totalTimeoutMs: 120_000 },
    });
    const info = await readHfcInfo(runDir);
    if (!info) throw new Error("no hfc.json");
    const hfc = new FabricControllerClient(info.controlAddress);
    try {
      const first = QUICK_KEYS > 0 ? QUICK_KEYS : 10_000;
      const created = await fillKeys(client, {
        keys: first,
        inFlight: FILL_IN_FLIGHT,
        budgetMs: FILL_BUDGET_MS,
        say,
      });
      const lost: string[] = [];
      if (QUICK_KEYS > 0) {
        await healRounds(hfc, lost, "quick", Number.POSITIVE_INFINITY, created);
        return;
      }
      reportFigure(
        goalFigure(
          "snapshot_bytes_per_ec_key",
          snapshotBytesPerKey(runDir, await hfc.status(), created),
          "B",
          "<=",
          1536,
        ),
      );
      await healRounds(hfc, lost, "10k", 10_000, created);
      if (process.env.HSMPOOL_BENCH_100K === "0") {
        say("100,000 keys: not measured (HSMPOOL_BENCH_100K=0)");
        reportFigure({
          name: "healing_100k_keys_median_ms",
          value: Number.NaN,
          unit: "ms",
          goal: "< 20000",
          met: false,
        });
        return;
      }
      // The same pool, filled on: creates are the slow part, and its first 10k keys are already there.
      const more = await fillKeys(client, {
        keys: 100_000,
        from: first,
        inFlight: FILL_IN_FLIGHT,
        budgetMs: FILL_100K_BUDGET_MS,
        say,
      });
      await healRounds(hfc, lost, "100k", 100_000, created + more);
    } finally {
      client.close();
      hfc.close();
    }
  } finally {
    await stopPool(runDir, () => {}).catch((e: unknown) => say(`stopping the bench pool: ${String(e)}`));
    if (!process.env.HSMPOOL_BENCH_KEEP) await rm(root, { recursive: true, force: true });
  }
}

/** HSMPOOL_BENCH_HEAL_KEYS=N: a quick diagnostic run at N keys (its figures are reported as partial). */
const QUICK_KEYS = Number(process.env.HSMPOOL_BENCH_HEAL_KEYS ?? 0);
await bench();
