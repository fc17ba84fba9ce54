/** `hsmpool up|status|down|logs|kill|restart`: the pool's lifecycle, through the HFC. */
import { createReadStream } from "node:fs";
import { readFile, rm, stat } from "node:fs/promises";
import { fail } from "@hsmpool/errors";
import { type PoolStatus, readPoolSpec, runPaths } from "@hsmpool/hfc";
import type { Command } from "commander";
import { hfcForRunDir } from "../sdk/pool-client.js";
import { out, progress, RUN_DIR_HELP, resolveRunDir } from "./context.js";
import { parseWholeNumber } from "./inputs.js";
import { DEFAULT_FABRIC_DIR, DEFAULT_UP_TIMEOUT_MS, startPool, stopPool } from "./lifecycle.js";
import { statusJson, statusTable } from "./status-format.js";

const KILL_SIGNALS = ["SIGKILL", "SIGTERM", "SIGSTOP", "SIGCONT"];

function resolveFabricDir(flag: string | undefined): string {
  if (flag !== undefined && flag !== "") return flag;
  const env = process.env.HSMPOOL_FABRIC_DIR;
  return env !== undefined && env !== "" ? env : DEFAULT_FABRIC_DIR;
}

async function currentStatus(runDir: string): Promise<PoolStatus> {
  const hfc = await hfcForRunDir(runDir);
  try {
    return await hfc.status();
  } finally {
    hfc.close();
  }
}

function statusKey(s: PoolStatus): string {
  return JSON.stringify({ ...statusJson(s) });
}

async function watchStatus(
  runDir: string,
  json: boolean,
  intervalMs: number,
  maxUpdates: number,
): Promise<void> {
  const hfc = await hfcForRunDir(runDir);
  let shown = "";
  let updates = 0;
  try {
    while (updates < maxUpdates) {
      const s = await hfc.status();
      const key = statusKey(s);
      if (key !== shown) {
        out(
          json ? JSON.stringify(statusJson(s)) : `${new Date(s.observedMs).toISOString()}\n${statusTable(s)}`,
        );
        shown = key;
        updates++;
      }
      if (updates < maxUpdates) await new Promise((r) => setTimeout(r, intervalMs));
    }
  } finally {
    hfc.close();
  }
}

/** Prints the last `lines` lines of `path`, then (with follow) what is appended, until interrupted. */
async function printLog(path: string, lines: number, follow: boolean): Promise<void> {
  const text = await readFile(path, "utf8").catch(() => fail("NotFound", `no log at ${path} yet`, { path }));
  const all = text.split("\n");
  if (all.at(-1) === "") all.pop();
  const tail = all.slice(Math.max(0, all.length - lines));
  if (tail.length > 0) out(tail.join("\n"));
  if (!follow) return;
  let offset = Buffer.byteLength(text);
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    const size = (await stat(path).catch(() => ({ size: offset }))).size;
    if (size < offset) offset = 0; // truncated or replaced: start over
    if (size === offset) continue;
    const stream = createReadStream(path, { start: offset, end: size - 1 });
    for await (const chunk of stream) process.stdout.write(chunk as Buffer);
    offset = size;
  }
}

export function registerPoolCommands(program: Command): void {
  program
    .command("up")
    .description(
      "start a pool: create the fabric if there is none, start the HFC in the background (it places three " +
        "nodes in three racks and launches them), wait until the pool is healthy and print its members. " +
        "A run directory that holds a stopped pool resumes it.",
    )
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .option("--fabric-dir <dir>", `fabric directory (default: $HSMPOOL_FABRIC_DIR or ${DEFAULT_FABRIC_DIR})`)
    .option("--pool-id <id>", "pool id for a new pool (default: pool-<random hex>)")
    .option("--bundle-dir <dir>", "signed enclave bundle the nodes launch (default: packages/node/dist)")
    .option("--node-main <file>", "node entry script (default: packages/node/dist/main.js)")
    .option("--health-interval-ms <n>", "how often the HFC polls each node's status", "250")
    .option("--failure-threshold <n>", "missed polls before a node counts as down", "3")
    .option("--timeout-ms <n>", "how long to wait for a healthy pool", String(DEFAULT_UP_TIMEOUT_MS))
    .option("--json", "print the final status as JSON (the `status --json` shape)")
    .action(
      async (opts: {
        runDir?: string;
        fabricDir?: string;
        poolId?: string;
        bundleDir?: string;
        nodeMain?: string;
        healthIntervalMs: string;
        failureThreshold: string;
        timeoutMs: string;
        json?: boolean;
      }) => {
        const runDir = resolveRunDir(opts.runDir);
        const status = await startPool({
          runDir,
          fabricDir: resolveFabricDir(opts.fabricDir),
          ...(opts.poolId !== undefined ? { poolId: opts.poolId } : {}),
          ...(opts.bundleDir !== undefined ? { bundleDir: opts.bundleDir } : {}),
          ...(opts.nodeMain !== undefined ? { nodeMain: opts.nodeMain } : {}),
          healthIntervalMs: parseWholeNumber("--health-interval-ms", opts.healthIntervalMs, 20, 60_000),
          failureThreshold: parseWholeNumber("--failure-threshold", opts.failureThreshold, 1, 100),
          timeoutMs: parseWholeNumber("--timeout-ms", opts.timeoutMs, 1000, 3_600_000),
          onProgress: progress,
        });
        out(
          opts.json
            ? JSON.stringify(statusJson(status))
            : `pool ${status.poolId} is healthy\n${statusTable(status)}`,
        );
      },
    );

  program
    .command("status")
    .description("show the pool: state (healthy|degraded|unavailable), term, primary and every member")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .option(
      "--json",
      "print { poolId, state, term, primary, members: [{ id, role, server, rack, pid, health, measurement, ownership, peerAddress, dataAddress }] }",
    )
    .option("--watch", "keep printing whenever the status changes (Ctrl-C stops)")
    .option("--interval-ms <n>", "poll interval for --watch", "500")
    .option("--max-updates <n>", "with --watch: stop after this many updates")
    .action(
      async (opts: {
        runDir?: string;
        json?: boolean;
        watch?: boolean;
        intervalMs: string;
        maxUpdates?: string;
      }) => {
        const runDir = resolveRunDir(opts.runDir);
        if (opts.watch) {
          const intervalMs = parseWholeNumber("--interval-ms", opts.intervalMs, 50, 60_000);
          const maxUpdates =
            opts.maxUpdates === undefined
              ? Number.POSITIVE_INFINITY
              : parseWholeNumber("--max-updates", opts.maxUpdates, 1, 1e9);
          await watchStatus(runDir, opts.json === true, intervalMs, maxUpdates);
          return;
        }
        if (opts.maxUpdates !== undefined) fail("BadParameter", "--max-updates only applies with --watch");
        const s = await currentStatus(runDir);
        out(opts.json ? JSON.stringify(statusJson(s)) : statusTable(s));
      },
    );

  program
    .command("down")
    .description(
      "stop the pool: the HFC sends SIGTERM to every node (SIGKILL after a grace period) and exits",
    )
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .option("--purge", "then delete the run directory (the pool's state and keys are gone for good)")
    .action(async (opts: { runDir?: string; purge?: boolean }) => {
      const runDir = resolveRunDir(opts.runDir);
      const result = await stopPool(runDir, progress);
      if (result.forced.length > 0) progress(`killed leftover processes: ${result.forced.join(", ")}`);
      if (opts.purge) await rm(runPaths(runDir).runDir, { recursive: true, force: true });
      out(`pool ${result.poolId ?? "(unknown)"} stopped${opts.purge ? `; ${runDir} deleted` : ""}`);
    });

  program
    .command("logs")
    .description("print a node's log (JSON lines) from the run directory; `hfc` prints the HFC's own log")
    .argument("<node>", "a member id (n1, n2, ...) or hfc")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .option("-n, --lines <n>", "how many trailing lines", "100")
    .option("-f, --follow", "keep printing new lines (Ctrl-C stops)")
    .action(async (node: string, opts: { runDir?: string; lines: string; follow?: boolean }) => {
      const runDir = resolveRunDir(opts.runDir);
      const lines = parseWholeNumber("--lines", opts.lines, 1, 1_000_000);
      const paths = runPaths(runDir);
      if (node === "hfc") return printLog(paths.hfcLog, lines, opts.follow === true);
      const pool = await readPoolSpec(runDir);
      if (!pool) fail("NotFound", `no pool in ${runDir} (start one with \`hsmpool up\`)`, { runDir });
      if (!pool.members.some((m) => m.id === node)) {
        fail(
          "NotFound",
          `pool ${pool.poolId} has no member ${JSON.stringify(node)} (members: ${pool.members.map((m) => m.id).join(", ")}, or hfc)`,
        );
      }
      return printLog(paths.nodeLog(node), lines, opts.follow === true);
    });

  program
    .command("restart")
    .description(
      "start a stopped or killed member again with its old config and state (it recovers from its WAL)",
    )
    .argument("<node>", "a member id")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (node: string, opts: { runDir?: string }) => {
      const hfc = await hfcForRunDir(resolveRunDir(opts.runDir));
      try {
        await hfc.restart(node);
        out(`restarted ${node}`);
      } finally {
        hfc.close();
      }
    });

  program
    .command("kill")
    .description("send a node a signal through the HFC (SIGKILL by default), to watch the pool cope")
    .argument("<target>", "primary, secondary, or a member id")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .option("-s, --signal <name>", `one of ${KILL_SIGNALS.join(", ")}`, "SIGKILL")
    .action(async (target: string, opts: { runDir?: string; signal: string }) => {
      const signal = opts.signal.toUpperCase();
      if (!KILL_SIGNALS.includes(signal)) {
        fail("BadParameter", `--signal must be one of ${KILL_SIGNALS.join(", ")}, got "${opts.signal}"`);
      }
      const hfc = await hfcForRunDir(resolveRunDir(opts.runDir));
      try {
        const r = await hfc.kill(target, signal);
        out(`sent ${signal} to ${r.nodeId} (pid ${r.pid})`);
      } finally {
        hfc.close();
      }
    });
}
