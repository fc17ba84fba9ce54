/**
 * `hsmpool chaos list|run`: chaos scenarios against a real pool. Each run brings up
 * its own pool (own fabric, own run dir under --out) with `hsmpool up`'s code, drives
 * it with the SDK, and tears it down at the end. Exit codes: 0 valid, 1 invalid,
 * 2 unknown or harness error (a malformed scenario prints `file:line: message`).
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  listScenarios,
  loadScenario,
  type PoolDriver,
  parseDurationMs,
  runScenario,
  SHIPPED_SCENARIO_DIR,
  summaryLines,
} from "@hsmpool/chaos";
import { fail, isHsmPoolError } from "@hsmpool/errors";
import { initFabricWithHsms } from "@hsmpool/hsm";
import { openFabric } from "@hsmpool/platform";
import type { Command } from "commander";
import { DEFAULT_ATTEMPT_DEADLINE_MS, PoolClient } from "../sdk/pool-client.js";
import { chaosIntruders, chaosTenantDir, grantWorkload, workloadCredential } from "./chaos-identity.js";
import { chaosRegionRecovery } from "./chaos-recovery.js";
import { out, progress } from "./context.js";
import { debugBundle } from "./debug-bundle.js";
import { requestExitCode } from "./exit-code.js";
import { startPool, stopPool } from "./lifecycle.js";

export const DEFAULT_CHAOS_OUT = ".hsmpool/chaos";
const HARNESS_ERROR = 2;

/** The pool a chaos run drives: `hsmpool up`/`down`'s code and the SDK. */
export const cliPoolDriver: PoolDriver = {
  enclaveKind: "debug",
  async prepareFabric(fabricDir, shape, onProgress) {
    await createFabric(fabricDir, shape.racks, shape.serversPerRack, onProgress);
  },
  async start(o) {
    const bundleDir = await debugBundle(o.runDir);
    await startPool({
      runDir: o.runDir,
      fabricDir: o.fabricDir,
      bundleDir,
      tenantDir: chaosTenantDir(o.runDir),
      healthIntervalMs: o.healthIntervalMs,
      failureThreshold: o.failureThreshold,
      timeoutMs: o.timeoutMs,
      onProgress: o.onProgress,
    });
    await grantWorkload(o.runDir);
    o.onProgress(
      "the workload runs as principal workload (Managed HSM Crypto User + Crypto Officer: recover and purge)",
    );
  },
  intruders: (runDir) => chaosIntruders(runDir),
  regionRecovery: chaosRegionRecovery,
  async stop(runDir, onProgress) {
    try {
      await stopPool(runDir, onProgress);
    } catch (e) {
      if (!isHsmPoolError(e, "NotFound")) throw e;
    }
  },
  async inventory(fabricDir) {
    const fabric = await openFabric(fabricDir);
    return fabric.info.racks.map((r) => ({ rackId: r.id, serverIds: r.servers.map((s) => s.id) }));
  },
  connect(runDir, { opTimeoutMs }) {
    return PoolClient.connect({
      runDir,
      credential: workloadCredential(runDir),
      retry: { totalTimeoutMs: opTimeoutMs },
      callDeadlineMs: Math.min(5000, opTimeoutMs),
      // Short attempts: a paused primary holds a call for one attempt, not the whole op timeout.
      attemptDeadlineMs: Math.min(DEFAULT_ATTEMPT_DEADLINE_MS, opTimeoutMs),
    });
  },
};

/** The run's own fabric, of the scenario's shape (e.g. a spare rack for a rack loss to heal into). */
async function createFabric(
  dir: string,
  racks: number,
  serversPerRack: number,
  onProgress: (l: string) => void,
) {
  await initFabricWithHsms(dir, { racks, serversPerRack, onProgress });
}

/** A path, or the name of a shipped scenario (`kill-primary` → `<repo>/chaos/kill-primary.yaml`). */
function resolveScenarioFile(arg: string): string {
  if (existsSync(arg)) return arg;
  const shipped = join(SHIPPED_SCENARIO_DIR, arg.endsWith(".yaml") ? arg : `${arg}.yaml`);
  return existsSync(shipped) ? shipped : arg;
}

function parseSeed(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(n))
    fail("BadParameter", `--seed must be a whole number, got ${JSON.stringify(text)}`);
  return n;
}

function parseDurationFlag(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDurationMs(text);
  if (ms === undefined || ms < 1000 || ms > 3_600_000) {
    fail(
      "BadParameter",
      `--duration must be a duration from 1s to 60m like 20s or 2m, got ${JSON.stringify(text)}`,
    );
  }
  return ms;
}

/** Prints a harness error the way a compiler would (scenario problems: one `file:line: message` each). */
function reportHarnessError(e: unknown): void {
  if (isHsmPoolError(e)) {
    const lines = e.message.split("\n");
    const located = lines.every((l) => /^.+:\d+: /.test(l));
    for (const l of lines) process.stderr.write(located ? `${l}\n` : `hsmpool: ${l} [${e.code}]\n`);
  } else {
    process.stderr.write(
      `hsmpool: chaos harness error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
  }
  requestExitCode(HARNESS_ERROR);
}

export function registerChaosCommands(program: Command): void {
  const chaos = program
    .command("chaos")
    .description("run chaos scenarios (chaos/*.yaml) against a real pool and check what the clients saw");

  registerChaosListCommand(chaos);
  registerChaosRunCommand(chaos);
}

function registerChaosListCommand(chaos: Command): void {
  chaos
    .command("list")
    .description("list the shipped scenarios and whether each can run here")
    .option("--dir <dir>", "scenario directory", SHIPPED_SCENARIO_DIR)
    .action(async (opts: { dir: string }) => {
      const rows = await listScenarios(opts.dir);
      if (rows.length === 0) {
        out(`no scenarios in ${opts.dir}`);
        return;
      }
      const width = Math.max(...rows.map((r) => r.name.length));
      for (const r of rows) {
        out(`${r.name.padEnd(width)}  ${r.problem ? `(${r.problem})` : r.description}`);
      }
    });
}

function registerChaosRunCommand(chaos: Command): void {
  chaos
    .command("run")
    .description(
      "bring up a fresh pool in its own run dir, run the scenario's workload and faults, heal everything, " +
        "check linearizability, durability, availability, healing, leaks and node invariants, write " +
        "history.jsonl, results.json and report.html, and tear the pool down. Exit 0 valid, 1 invalid, " +
        "2 unknown or harness error.",
    )
    .argument("<scenario>", "a scenario file, or the name of a shipped one (see `hsmpool chaos list`)")
    .option("--seed <n>", "seed for the workload and nemesis choices (default: the scenario's)")
    .option("--duration <time>", "workload duration, e.g. 20s or 2m (default: the scenario's)")
    .option("--out <dir>", "parent directory for the run directory", DEFAULT_CHAOS_OUT)
    .option("--json", "print results.json on stdout instead of the summary")
    .action(async (arg: string, opts: { seed?: string; duration?: string; out: string; json?: boolean }) => {
      const abort = new AbortController();
      const onSigint = () => {
        progress("interrupted: stopping the workload, healing, checking and tearing the pool down");
        abort.abort();
      };
      process.once("SIGINT", onSigint);
      try {
        const seed = parseSeed(opts.seed);
        const durationMs = parseDurationFlag(opts.duration);
        const file = resolveScenarioFile(arg);
        const scenario = await loadScenario(file);
        const outcome = await runScenario({
          scenario,
          scenarioText: await readFile(file, "utf8"),
          ...(seed !== undefined ? { seed } : {}),
          ...(durationMs !== undefined ? { durationMs } : {}),
          outDir: opts.out,
          driver: cliPoolDriver,
          onProgress: progress,
          signal: abort.signal,
        });
        if (opts.json) out(JSON.stringify(outcome.results, null, 2));
        else out(summaryLines(outcome.results).join("\n"));
        requestExitCode(outcome.exitCode);
      } catch (e) {
        reportHarnessError(e);
      } finally {
        process.off("SIGINT", onSigint);
      }
    });
}
