#!/usr/bin/env node
/**
 * The HFC process: `node packages/hfc/dist/main.js --run-dir <dir> --fabric-dir <dir>
 * [--pool-id <id>]`. Normally started in the background by `hsmpool up`; logs JSON
 * lines to <run>/hfc.log; stops on the control API's Shutdown, SIGTERM or SIGINT.
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { isHsmPoolError } from "@hsmpool/errors";
import pino from "pino";
import { FabricController } from "./controller.js";
import { DEFAULT_HEALTH_CONFIG, validateHealthConfig } from "./health.js";
import { DEFAULT_RAFT_TIMING } from "./node-config.js";
import { DEFAULT_BUNDLE_DIR, DEFAULT_NODE_MAIN } from "./options.js";

const USAGE =
  "usage: node packages/hfc/dist/main.js --run-dir <dir> --fabric-dir <dir> [--pool-id <id>] " +
  "[--node-main <file>] [--bundle-dir <dir>] [--health-interval-ms <n>] [--failure-threshold <n>] " +
  "[--control-port <n>] [--election-tick-ms <n>]";

function integer(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new Error(`--${name} must be a whole number, got "${value}"`);
  return Number(value);
}

async function run(): Promise<number> {
  let args: ReturnType<typeof parse>;
  const parse = () =>
    parseArgs({
      options: {
        "run-dir": { type: "string" },
        "fabric-dir": { type: "string" },
        "pool-id": { type: "string" },
        "node-main": { type: "string" },
        "bundle-dir": { type: "string" },
        "health-interval-ms": { type: "string" },
        "failure-threshold": { type: "string" },
        "control-port": { type: "string" },
        "election-tick-ms": { type: "string" },
      },
      strict: true,
    });
  let health: ReturnType<typeof validateHealthConfig>;
  let controlPort: number;
  let electionTickMs: number;
  try {
    args = parse();
    if (!args.values["run-dir"] || !args.values["fabric-dir"])
      throw new Error("--run-dir and --fabric-dir are required");
    health = validateHealthConfig({
      healthIntervalMs: integer(
        "health-interval-ms",
        args.values["health-interval-ms"],
        DEFAULT_HEALTH_CONFIG.healthIntervalMs,
      ),
      failureThreshold: integer(
        "failure-threshold",
        args.values["failure-threshold"],
        DEFAULT_HEALTH_CONFIG.failureThreshold,
      ),
    });
    controlPort = integer("control-port", args.values["control-port"], 0);
    electionTickMs = integer(
      "election-tick-ms",
      args.values["election-tick-ms"],
      DEFAULT_RAFT_TIMING.electionTickMs,
    );
  } catch (e) {
    process.stderr.write(`hfc: ${e instanceof Error ? e.message : String(e)}\n${USAGE}\n`);
    return 2;
  }
  const runDir = resolve(args.values["run-dir"] as string);
  const logger = pino(
    { base: { component: "hfc", pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: join(runDir, "hfc.log"), append: true, mkdir: true, sync: true }),
  );
  let controller: FabricController;
  try {
    controller = await FabricController.start({
      runDir,
      fabricDir: resolve(args.values["fabric-dir"] as string),
      ...(args.values["pool-id"] ? { poolId: args.values["pool-id"] } : {}),
      nodeMain: resolve(args.values["node-main"] ?? DEFAULT_NODE_MAIN),
      bundleDir: resolve(args.values["bundle-dir"] ?? DEFAULT_BUNDLE_DIR),
      health,
      timing: { ...DEFAULT_RAFT_TIMING, electionTickMs },
      logger,
      controlPort,
    });
  } catch (e) {
    const line = isHsmPoolError(e)
      ? `${e.message} [${e.code}]`
      : e instanceof Error
        ? (e.stack ?? e.message)
        : String(e);
    logger.error({ err: isHsmPoolError(e) ? e.toJSON() : String(e) }, "HFC failed to start");
    process.stderr.write(`hfc: ${line}\n`);
    return 1;
  }
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, () => {
      logger.info({ signal }, "signal received");
      void controller.shutdown();
    });
  }
  await controller.done;
  return 0;
}

process.exit(await run());
