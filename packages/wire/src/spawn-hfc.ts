/**
 * Starting the HFC in the background (what `hsmpool up` does): a detached process
 * whose stdout/stderr go to <run>/hfc.log, then a wait for its hfc.json. The HFC
 * keeps running after the caller exits.
 */
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { fail } from "@hsmpool/errors";
import { isProcessAlive, readHfcInfo, runPaths } from "./run-dir.js";
import type { HfcInfo } from "./types.js";

/** `<repo>/packages/hfc/dist/main.js`: the HFC process entry (this module sits in wire/src and wire/dist alike). */
export const HFC_MAIN = fileURLToPath(new URL("../../hfc/dist/main.js", import.meta.url));

/** How the HFC runs nodes (its `--launcher` flag). */
export const LAUNCHER_KINDS = ["process", "docker"] as const;
export type LauncherKind = (typeof LAUNCHER_KINDS)[number];

export interface SpawnHfcOptions {
  runDir: string;
  fabricDir: string;
  poolId?: string;
  /** A new pool in recovery mode (`hsmpool up --recover`). */
  recover?: boolean;
  bundleDir?: string;
  nodeMain?: string;
  /** How the HFC runs nodes (default: child processes). */
  launcher?: LauncherKind;
  /** With the docker launcher: the node image (default hsmpool-node:latest). */
  nodeImage?: string;
  healthIntervalMs?: number;
  failureThreshold?: number;
  /** Missed health checks for this long (process running) = the member's server is lost. */
  serverLostAfterMs?: number;
  /** How long a joiner may take to become a pool member before the HFC gives up on it. */
  joinTimeoutMs?: number;
  /** Default: `<repo>/packages/hfc/dist/main.js`. */
  hfcMain?: string;
}

export function spawnHfc(opts: SpawnHfcOptions): number {
  const paths = runPaths(opts.runDir);
  mkdirSync(paths.runDir, { recursive: true, mode: 0o700 });
  const args = [opts.hfcMain ?? HFC_MAIN, "--run-dir", paths.runDir, "--fabric-dir", resolve(opts.fabricDir)];
  if (opts.poolId !== undefined) args.push("--pool-id", opts.poolId);
  if (opts.recover) args.push("--recover");
  if (opts.bundleDir !== undefined) args.push("--bundle-dir", resolve(opts.bundleDir));
  if (opts.nodeMain !== undefined) args.push("--node-main", resolve(opts.nodeMain));
  if (opts.launcher !== undefined) args.push("--launcher", opts.launcher);
  if (opts.nodeImage !== undefined) args.push("--node-image", opts.nodeImage);
  if (opts.healthIntervalMs !== undefined) args.push("--health-interval-ms", String(opts.healthIntervalMs));
  if (opts.failureThreshold !== undefined) args.push("--failure-threshold", String(opts.failureThreshold));
  if (opts.serverLostAfterMs !== undefined)
    args.push("--server-lost-after-ms", String(opts.serverLostAfterMs));
  if (opts.joinTimeoutMs !== undefined) args.push("--join-timeout-ms", String(opts.joinTimeoutMs));
  const logFd = openSync(paths.hfcLog, "a", 0o644);
  try {
    const child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", logFd, logFd] });
    if (child.pid === undefined) fail("LaunchRefused", `could not start the HFC (${args[0]})`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(logFd);
  }
}

/** The last line the HFC wrote that says why it stopped (for a one-line error). */
async function lastHfcError(runDir: string): Promise<string> {
  const text = await readFile(runPaths(runDir).hfcLog, "utf8").catch(() => "");
  const lines = text.split("\n").filter((l) => l.startsWith("hfc: "));
  return lines.at(-1)?.slice("hfc: ".length) ?? `see ${runPaths(runDir).hfcLog}`;
}

/** Waits until the HFC with `pid` has written hfc.json; fails with its own error if it exits first. */
export async function waitForHfc(runDir: string, pid: number, timeoutMs: number): Promise<HfcInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await readHfcInfo(runDir).catch(() => undefined);
    if (info?.pid === pid) return info;
    if (!isProcessAlive(pid)) {
      fail("LaunchRefused", `the HFC exited during start-up: ${await lastHfcError(runDir)}`, { pid });
    }
    if (Date.now() > deadline)
      fail(
        "Timeout",
        `the HFC (pid ${pid}) did not come up within ${timeoutMs} ms; see ${runPaths(runDir).hfcLog}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}
