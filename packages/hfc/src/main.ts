#!/usr/bin/env node
/**
 * The HFC process: `node packages/hfc/dist/main.js --run-dir <dir> --fabric-dir <dir>
 * [--pool-id <id>] [--launcher process|docker]`. Normally started in the background by `hsmpool up`; logs JSON
 * lines to <run>/hfc.log; stops on the control API's Shutdown, SIGTERM or SIGINT.
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { isHsmPoolError } from "@hsmpool/errors";
import {
  DEFAULT_HEALING_TIMING,
  DEFAULT_HEALTH_CONFIG,
  type HealthConfig,
  validateHealthConfig,
} from "@hsmpool/healing";
import { LAUNCHER_KINDS, type LauncherKind } from "@hsmpool/wire";
import pino from "pino";
import { FabricController } from "./controller.js";
import type { NodeLauncher } from "./launcher.js";
import { DEFAULT_RAFT_TIMING } from "./node-config.js";
import { DEFAULT_BUNDLE_DIR, DEFAULT_NODE_MAIN } from "./options.js";

const USAGE =
  "usage: node packages/hfc/dist/main.js --run-dir <dir> --fabric-dir <dir> [--pool-id <id>] " +
  "[--node-main <file>] [--bundle-dir <dir>] [--health-interval-ms <n>] [--failure-threshold <n>] [--server-lost-after-ms <n>] " +
  "[--control-port <n>] [--election-tick-ms <n>] [--join-timeout-ms <n>] [--launcher process|docker] " +
  "[--node-image <image>] [--recover]";

function integer(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new Error(`--${name} must be a whole number, got "${value}"`);
  return Number(value);
}

interface HfcArgs {
  runDir: string;
  fabricDir: string;
  poolId: string | undefined;
  recover: boolean;
  nodeMain: string;
  bundleDir: string;
  health: HealthConfig;
  controlPort: number;
  electionTickMs: number;
  joinTimeoutMs: number;
  launcher: LauncherKind;
  nodeImage: string | undefined;
}

/** Parses and checks the command line; throws an Error with a one-line message. */
function parseHfcArgs(argv: string[]): HfcArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      "run-dir": { type: "string" },
      "fabric-dir": { type: "string" },
      "pool-id": { type: "string" },
      "node-main": { type: "string" },
      "bundle-dir": { type: "string" },
      "health-interval-ms": { type: "string" },
      "failure-threshold": { type: "string" },
      "server-lost-after-ms": { type: "string" },
      "control-port": { type: "string" },
      "election-tick-ms": { type: "string" },
      "join-timeout-ms": { type: "string" },
      launcher: { type: "string" },
      "node-image": { type: "string" },
      recover: { type: "boolean" },
    },
    strict: true,
  });
  if (!values["run-dir"] || !values["fabric-dir"]) throw new Error("--run-dir and --fabric-dir are required");
  const joinTimeoutMs = integer(
    "join-timeout-ms",
    values["join-timeout-ms"],
    DEFAULT_HEALING_TIMING.joinTimeoutMs,
  );
  if (joinTimeoutMs < 1000 || joinTimeoutMs > 3_600_000) {
    throw new Error(`--join-timeout-ms must be from 1000 to 3600000, got ${joinTimeoutMs}`);
  }
  const launcher = values.launcher ?? "process";
  if (!(LAUNCHER_KINDS as readonly string[]).includes(launcher)) {
    throw new Error(`--launcher must be one of ${LAUNCHER_KINDS.join(", ")}, got "${launcher}"`);
  }
  if (values["node-image"] !== undefined && launcher !== "docker") {
    throw new Error("--node-image needs --launcher docker");
  }
  return {
    launcher: launcher as LauncherKind,
    nodeImage: values["node-image"],
    runDir: resolve(values["run-dir"]),
    fabricDir: resolve(values["fabric-dir"]),
    poolId: values["pool-id"],
    recover: values.recover === true,
    nodeMain: resolve(values["node-main"] ?? DEFAULT_NODE_MAIN),
    bundleDir: resolve(values["bundle-dir"] ?? DEFAULT_BUNDLE_DIR),
    health: validateHealthConfig({
      healthIntervalMs: integer(
        "health-interval-ms",
        values["health-interval-ms"],
        DEFAULT_HEALTH_CONFIG.healthIntervalMs,
      ),
      failureThreshold: integer(
        "failure-threshold",
        values["failure-threshold"],
        DEFAULT_HEALTH_CONFIG.failureThreshold,
      ),
      serverLostAfterMs: integer(
        "server-lost-after-ms",
        values["server-lost-after-ms"],
        DEFAULT_HEALTH_CONFIG.serverLostAfterMs,
      ),
    }),
    controlPort: integer("control-port", values["control-port"], 0),
    electionTickMs: integer(
      "election-tick-ms",
      values["election-tick-ms"],
      DEFAULT_RAFT_TIMING.electionTickMs,
    ),
    joinTimeoutMs: integer(
      "join-timeout-ms",
      values["join-timeout-ms"],
      DEFAULT_HEALING_TIMING.joinTimeoutMs,
    ),
  };
}

/** Loaded only when asked for: the Docker client is not needed to run nodes as child processes. */
async function dockerLauncher(image: string | undefined): Promise<NodeLauncher> {
  const { DockerNodeLauncher } = await import("./docker-launcher.js");
  return new DockerNodeLauncher(image !== undefined ? { image } : {});
}

async function run(): Promise<number> {
  let args: HfcArgs;
  try {
    args = parseHfcArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`hfc: ${e instanceof Error ? e.message : String(e)}\n${USAGE}\n`);
    return 2;
  }
  const { runDir } = args;
  const logger = pino(
    { base: { component: "hfc", pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: join(runDir, "hfc.log"), append: true, mkdir: true, sync: true }),
  );
  let controller: FabricController;
  try {
    controller = await FabricController.start({
      runDir,
      fabricDir: args.fabricDir,
      ...(args.poolId !== undefined ? { poolId: args.poolId } : {}),
      ...(args.recover ? { recover: true } : {}),
      nodeMain: args.nodeMain,
      ...(args.launcher === "docker" ? { launcher: await dockerLauncher(args.nodeImage) } : {}),
      bundleDir: args.bundleDir,
      health: args.health,
      timing: { ...DEFAULT_RAFT_TIMING, electionTickMs: args.electionTickMs },
      logger,
      controlPort: args.controlPort,
      healing: { joinTimeoutMs: args.joinTimeoutMs },
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
