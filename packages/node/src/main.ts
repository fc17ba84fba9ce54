#!/usr/bin/env node
/**
 * The node process: `node packages/node/dist/main.js --config <run>/nodes/<id>/config.json`
 * (docs/node-hfc-contract.md). Exit codes: 0 after a graceful SIGTERM/SIGINT stop,
 * 1 when the node cannot continue, 2 for a bad command line or config,
 * 3 when the platform refuses to launch the enclave (LaunchRefused), 4 when a joining
 * node is not admitted to the pool (after its "join refused" log line).
 */
import { randomInt } from "node:crypto";
import { isHsmPoolError } from "@hsmpool/errors";
import { readSigstruct } from "@hsmpool/platform";
import { CHAOS_FILE, ChaosHooks, hasChaosFile } from "./chaos-hooks.js";
import { loadConfig, type NodeConfig } from "./config.js";
import { createLogger } from "./logger.js";
import { PoolNode } from "./node.js";

export const EXIT_FATAL = 1;
export const EXIT_USAGE = 2;
export const EXIT_LAUNCH_REFUSED = 3;
export const EXIT_JOIN_REFUSED = 4;

function configPath(argv: readonly string[]): string | null {
  const i = argv.indexOf("--config");
  if (i >= 0 && argv[i + 1]) return argv[i + 1] as string;
  const inline = argv.find((a) => a.startsWith("--config="));
  return inline ? inline.slice("--config=".length) : null;
}

async function main(): Promise<void> {
  const path = configPath(process.argv.slice(2));
  if (!path) {
    process.stderr.write("usage: node packages/node/dist/main.js --config <config.json>\n");
    process.exit(EXIT_USAGE);
  }
  let config: NodeConfig;
  try {
    config = await loadConfig(path);
  } catch (e) {
    const logger = createLogger("unknown");
    logger.fatal(isHsmPoolError(e) ? { code: e.code, error: e.message } : { error: String(e) }, "bad config");
    process.exit(EXIT_USAGE);
  }
  const logger = createLogger(config.nodeId);
  // TEST-ONLY: a chaos harness run puts chaos.json next to the config (see chaos-hooks.ts).
  // Only a debug-signed bundle honours it: a production enclave ignores it and says so.
  let chaos: ChaosHooks | null = null;
  if (hasChaosFile(path)) {
    // The flag only: the launch below measures and verifies the bundle and refuses a forged SIGSTRUCT.
    const debug = await readSigstruct(config.bundleDir).then(
      (s) => s.debug,
      () => false,
    );
    if (!debug) {
      logger.warn(
        { file: CHAOS_FILE },
        "chaos.json IGNORED: this is a production (non-debug) enclave; test hooks are honoured only by debug-signed bundles",
      );
    } else {
      try {
        chaos = ChaosHooks.load(path, logger, () => randomInt(0, 2 ** 47) / 2 ** 47);
      } catch (e) {
        logger.fatal(
          isHsmPoolError(e) ? { code: e.code, error: e.message } : { error: String(e) },
          "bad config",
        );
        process.exit(EXIT_USAGE);
      }
    }
  }
  const exitFatal = () => process.exit(EXIT_FATAL);
  process.on("unhandledRejection", (e) => {
    logger.fatal({ error: String(e) }, "unhandled rejection");
    exitFatal();
  });
  // Signals may arrive while the node is still booting: remember them and stop once it is up.
  let node: PoolNode | null = null;
  let stopRequested: string | null = null;
  const shutdown = (signal: string) => {
    if (stopRequested !== null) return;
    stopRequested = signal;
    logger.info({ signal }, "signal received");
    if (node) stopAndExit(node);
  };
  const stopAndExit = (running: PoolNode, code = 0) =>
    running.stop().then(
      () => process.exit(code),
      (e: unknown) => {
        logger.fatal({ error: String(e) }, "shutdown failed");
        exitFatal();
      },
    );
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  try {
    node = await PoolNode.start(config, {
      logger,
      ...(chaos ? { chaos, now: () => chaos.now() } : {}),
      onFatal: exitFatal,
      onJoinFailed: () => {
        if (stopRequested !== null) return;
        stopRequested = "join refused";
        if (node) stopAndExit(node, EXIT_JOIN_REFUSED);
        else process.exit(EXIT_JOIN_REFUSED);
      },
    });
  } catch (e) {
    if (isHsmPoolError(e, "LaunchRefused")) {
      logger.fatal({ code: e.code, error: e.message, details: e.details }, "enclave launch refused");
      process.exit(EXIT_LAUNCH_REFUSED);
    }
    logger.fatal(
      isHsmPoolError(e) ? { code: e.code, error: e.message, details: e.details } : { error: String(e) },
      "node failed to start",
    );
    // A config value that only the launched enclave can judge (minPeerSvn) is still a bad config.
    process.exit(isHsmPoolError(e, "BadParameter") && e.details?.field ? EXIT_USAGE : EXIT_FATAL);
  }
  if (stopRequested !== null) stopAndExit(node, stopRequested === "join refused" ? EXIT_JOIN_REFUSED : 0);
}

void main();
