/** `hsmpool up|status|down|logs|kill|restart`: the pool's lifecycle, through the HFC. */
import { createReadStream } from "node:fs";
import { readFile, rm, stat } from "node:fs/promises";
import { fail } from "@hsmpool/errors";
import {
  LAUNCHER_KINDS,
  type LauncherKind,
  type PoolStatus,
  readHfcInfo,
  readPoolSpec,
  runPaths,
} from "@hsmpool/wire";
import type { Command } from "commander";
import { hfcForRunDir } from "../sdk/pool-client.js";
import { out, progress, RUN_DIR_HELP, resolveRunDir, selectedTenantDir } from "./context.js";
import { debugBundle } from "./debug-bundle.js";
import { parseWholeNumber } from "./inputs.js";
import {
  assertNoRunningPool,
  DEFAULT_FABRIC_DIR,
  DEFAULT_UP_TIMEOUT_MS,
  startPool,
  stopPool,
} from "./lifecycle.js";
import { statusJson, statusTable } from "./status-format.js";
import { watchStatus } from "./watch.js";

const KILL_SIGNALS = ["SIGKILL", "SIGTERM", "SIGSTOP", "SIGCONT"];

/**
 * `--fabric-dir`, else $HSMPOOL_FABRIC_DIR, else the fabric a crashed HFC of this run
 * dir used (its hfc.json is still there), else `.hsmpool/fabric`.
 */
async function resolveFabricDir(flag: string | undefined, runDir: string): Promise<string> {
  if (flag !== undefined && flag !== "") return flag;
  const env = process.env.HSMPOOL_FABRIC_DIR;
  if (env !== undefined && env !== "") return env;
  const stale = await readHfcInfo(runDir).catch(() => undefined);
  return stale?.fabricDir ?? DEFAULT_FABRIC_DIR;
}

async function currentStatus(runDir: string): Promise<PoolStatus> {
  const hfc = await hfcForRunDir(runDir);
  try {
    return await hfc.status();
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

function parseLauncher(kind: string, nodeImage: string | undefined): LauncherKind {
  if (!(LAUNCHER_KINDS as readonly string[]).includes(kind)) {
    fail(
      "BadParameter",
      `--launcher must be one of ${LAUNCHER_KINDS.join(", ")}, got ${JSON.stringify(kind)}`,
      {
        field: "launcher",
      },
    );
  }
  if (nodeImage !== undefined && kind !== "docker") {
    fail("BadParameter", "--node-image needs --launcher docker", { field: "node-image" });
  }
  return kind as LauncherKind;
}

export function registerPoolCommands(program: Command): void {
  registerUpCommand(program);
  registerStatusCommand(program);
  registerDownCommand(program);
  registerLogsCommand(program);
  registerRestartCommand(program);
  registerKillCommand(program);
}

function registerUpCommand(program: Command): void {
  program
    .command("up")
    .description(
      "start a pool: create the fabric if there is none, start the HFC in the background (it places three " +
        "nodes in three racks and launches them), wait until the pool is healthy and print its members. " +
        "A run directory that holds a stopped pool resumes it.",
    )
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .option(
      "--fabric-dir <dir>",
      `fabric directory (default: $HSMPOOL_FABRIC_DIR, else the one a crashed HFC of this run dir used, else ${DEFAULT_FABRIC_DIR})`,
    )
    .option("--pool-id <id>", "pool id for a new pool (default: pool-<random hex>)")
    .option("--bundle-dir <dir>", "signed enclave bundle the nodes launch (default: packages/node/dist)")
    .option("--node-main <file>", "node entry script (default: packages/node/dist/main.js)")
    .option(
      "--test-hooks",
      "launch a debug-signed copy of the node bundle, whose TEST-ONLY hooks let `hsmpool dashboard` partition " +
        "a member from its peers and heal it; a demo and test pool, never for real keys",
    )
    .option(
      "--launcher <kind>",
      "how the HFC runs nodes: process (child processes) or docker (a container each, from the image " +
        "`npm run docker:build` makes; needs a running Docker engine)",
      "process",
    )
    .option("--node-image <image>", "with --launcher docker: the node image (default: hsmpool-node:latest)")
    .option("--health-interval-ms <n>", "how often the HFC polls each node's status", "250")
    .option("--failure-threshold <n>", "missed polls before a node counts as down", "3")
    .option(
      "--server-lost-after-ms <n>",
      "a member whose process runs but misses every health check this long has lost its server: " +
        "the HFC fences it and replaces it in another rack",
      "30000", // the HFC's default (DEFAULT_HEALTH_CONFIG.serverLostAfterMs)
    )
    .option(
      "--join-timeout-ms <n>",
      "how long a replacement may take to join the pool before the HFC gives up on it",
      "60000",
    )
    .option("--timeout-ms <n>", "how long to wait for a healthy pool", String(DEFAULT_UP_TIMEOUT_MS))
    .option("--json", "print the final status as JSON (the `status --json` shape)")
    .option(
      "--no-activate",
      "leave a new pool provisioned (it refuses key operations until `hsmpool sd download`); by default up makes " +
        "three RSA key pairs in the customer directory ($HSMPOOL_CUSTOMER_DIR, else customer/ beside the run dir) " +
        "and downloads the security domain with quorum 2 there",
    )
    .option(
      "--recover",
      "start a blank pool in recovery mode (disaster recovery): it serves nothing until a security domain is " +
        "uploaded (hsmpool sd init-recovery, sd restore-blob, sd upload), then `hsmpool restore` brings the keys back",
    )
    .option(
      "--admin <names>",
      "comma-separated principals of --tenant who get Managed HSM Administrator at / (default: admin, with Administrator, Crypto User and Crypto Officer)",
    )
    .action(
      async (opts: {
        activate: boolean;
        recover?: boolean;
        admin?: string;
        runDir?: string;
        fabricDir?: string;
        poolId?: string;
        bundleDir?: string;
        testHooks?: boolean;
        nodeMain?: string;
        launcher: string;
        nodeImage?: string;
        healthIntervalMs: string;
        failureThreshold: string;
        serverLostAfterMs: string;
        joinTimeoutMs: string;
        timeoutMs: string;
        json?: boolean;
      }) => {
        const runDir = resolveRunDir(opts.runDir);
        if (opts.testHooks && opts.bundleDir !== undefined)
          fail("BadParameter", "--test-hooks signs its own debug copy of the node bundle; drop --bundle-dir");
        // Never re-sign the bundle under a running pool's feet.
        if (opts.testHooks) await assertNoRunningPool(runDir);
        const bundleDir = opts.testHooks ? await debugBundle(runDir) : opts.bundleDir;
        const status = await startPool({
          runDir,
          fabricDir: await resolveFabricDir(opts.fabricDir, runDir),
          ...(opts.poolId !== undefined ? { poolId: opts.poolId } : {}),
          ...(bundleDir !== undefined ? { bundleDir } : {}),
          ...(opts.nodeMain !== undefined ? { nodeMain: opts.nodeMain } : {}),
          launcher: parseLauncher(opts.launcher, opts.nodeImage),
          ...(opts.nodeImage !== undefined ? { nodeImage: opts.nodeImage } : {}),
          ...healthOptions(opts),
          joinTimeoutMs: parseWholeNumber("--join-timeout-ms", opts.joinTimeoutMs, 1000, 3_600_000),
          timeoutMs: parseWholeNumber("--timeout-ms", opts.timeoutMs, 1000, 3_600_000),
          activate: opts.activate,
          ...(opts.recover ? { recover: true } : {}),
          onProgress: progress,
          tenantDir: selectedTenantDir(),
          ...(opts.admin !== undefined ? { admins: parseAdmins(opts.admin) } : {}),
        });
        out(
          opts.json
            ? JSON.stringify(statusJson(status))
            : `pool ${status.poolId} is healthy\n${statusTable(status)}`,
        );
      },
    );
}

function registerStatusCommand(program: Command): void {
  program
    .command("status")
    .description(
      "show the pool: state (healthy|degraded|unavailable), term, primary, every member, and healing in " +
        "progress with the time of each phase (detected, fenced, launching, attesting, catching_up, " +
        "syncing_ownership, ready, or failed with the reason)",
    )
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .option(
      "--json",
      "print { poolId, state, term, primary, members: [{ id, role, server, rack, pid, health, measurement, " +
        "ownership, peerAddress, dataAddress }], healing: [{ id, kind, memberId, replacementId, phase, " +
        "phases: [{ phase, atMs }], reason }], healingPaused, lostServers, upgrade }",
    )
    .option("--watch", "keep printing whenever the status changes, healing phases included (Ctrl-C stops)")
    .option("--until <state>", "with --watch: stop once the pool is healthy and nothing is healing (healthy)")
    .option(
      "--timeout-ms <n>",
      "with --watch: stop after this long (with --until: fail if not reached by then)",
    )
    .option("--interval-ms <n>", "poll interval for --watch", "500")
    .option("--max-updates <n>", "with --watch: stop after this many updates")
    .action(
      async (opts: {
        runDir?: string;
        json?: boolean;
        watch?: boolean;
        until?: string;
        timeoutMs?: string;
        intervalMs: string;
        maxUpdates?: string;
      }) => {
        const runDir = resolveRunDir(opts.runDir);
        if (!opts.watch) {
          for (const [flag, value] of [
            ["--max-updates", opts.maxUpdates],
            ["--until", opts.until],
            ["--timeout-ms", opts.timeoutMs],
          ] as const) {
            if (value !== undefined) fail("BadParameter", `${flag} only applies with --watch`);
          }
          const s = await currentStatus(runDir);
          out(opts.json ? JSON.stringify(statusJson(s)) : statusTable(s));
          return;
        }
        if (opts.until !== undefined && opts.until !== "healthy") {
          fail("BadParameter", `--until must be "healthy", got ${JSON.stringify(opts.until)}`);
        }
        await watchStatus({
          runDir,
          json: opts.json === true,
          intervalMs: parseWholeNumber("--interval-ms", opts.intervalMs, 50, 60_000),
          maxUpdates:
            opts.maxUpdates === undefined
              ? Number.POSITIVE_INFINITY
              : parseWholeNumber("--max-updates", opts.maxUpdates, 1, 1e9),
          until: opts.until === "healthy" ? "healthy" : null,
          timeoutMs:
            opts.timeoutMs === undefined
              ? null
              : parseWholeNumber("--timeout-ms", opts.timeoutMs, 1, 86_400_000),
        });
      },
    );
}

function registerDownCommand(program: Command): void {
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
}

function registerLogsCommand(program: Command): void {
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
}

function registerRestartCommand(program: Command): void {
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
}

function registerKillCommand(program: Command): void {
  program
    .command("kill")
    .description(
      "send a node a signal through the HFC (SIGKILL by default), to watch the pool heal: the HFC restarts " +
        "a crashed process in place. With --server, mark a whole server lost instead: the HFC fences every " +
        "member on it (SIGKILL, never relaunched) and replaces it on a spare server in a rack no live member uses",
    )
    .argument("[target]", "primary, secondary, or a member id")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .option("-s, --signal <name>", `one of ${KILL_SIGNALS.join(", ")}`, "SIGKILL")
    .option(
      "--server <id>",
      "mark this server lost (e.g. r1-s1; `hsmpool status` shows each member's server)",
    )
    .action(
      async (target: string | undefined, opts: { runDir?: string; signal: string; server?: string }) => {
        if (opts.server !== undefined) {
          if (target !== undefined) fail("BadParameter", "give either a target or --server <id>, not both");
          const hfc = await hfcForRunDir(resolveRunDir(opts.runDir));
          try {
            const r = await hfc.loseServer(opts.server);
            out(
              `server ${r.serverId} marked lost; ` +
                (r.fenced.length > 0
                  ? `fenced ${r.fenced.join(", ")} (killed, never relaunched); the HFC replaces ${r.fenced.length > 1 ? "them" : "it"} on a spare server`
                  : "no member ran there"),
            );
          } finally {
            hfc.close();
          }
          return;
        }
        if (target === undefined)
          fail("BadParameter", "name a target (primary, secondary or a member id) or --server <id>");
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
      },
    );
}

/** The HFC's health settings from `up`'s flags, checked together (the lost-server window outlasts missed polls). */
function healthOptions(opts: {
  healthIntervalMs: string;
  failureThreshold: string;
  serverLostAfterMs: string;
}) {
  const healthIntervalMs = parseWholeNumber("--health-interval-ms", opts.healthIntervalMs, 20, 60_000);
  const failureThreshold = parseWholeNumber("--failure-threshold", opts.failureThreshold, 1, 100);
  const minLostMs = healthIntervalMs * failureThreshold;
  const serverLostAfterMs = parseWholeNumber("--server-lost-after-ms", opts.serverLostAfterMs, 1, 86_400_000);
  if (serverLostAfterMs < minLostMs) {
    fail(
      "BadParameter",
      `--server-lost-after-ms must be at least --health-interval-ms × --failure-threshold (${minLostMs}), got ${serverLostAfterMs}`,
      { field: "--server-lost-after-ms" },
    );
  }
  return { healthIntervalMs, failureThreshold, serverLostAfterMs };
}

function parseAdmins(value: string): string[] {
  const names = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length === 0)
    fail("BadParameter", "--admin must name at least one principal (e.g. --admin alice,bob)");
  return [...new Set(names)];
}
