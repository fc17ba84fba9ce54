/**
 * Starts node processes (docs/node-hfc-contract.md "Launch"): `node <node main> --config
 * <config.json>`, detached (its own process group, so stopping it is always an
 * explicit signal), stdout and stderr appended to the node's log file.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { fail } from "@hsmpool/errors";
import type { LauncherKind } from "@hsmpool/wire";
import { isRunning } from "@hsmpool/wire";

export interface NodeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A node process the HFC watches: one it launched, or one a previous HFC launched and this one adopted. */
export interface NodeProcess {
  nodeId: string;
  pid: number;
  /** Resolves when the process has exited (for an adopted process the status is unknown: nulls). */
  exited: Promise<NodeExit>;
  adopted: boolean;
}

export interface LaunchedNode extends NodeProcess {
  child: ChildProcess;
}

/**
 * How the HFC runs nodes: as child processes ("process", the default) or each in its own container ("docker",
 * docker-launcher.ts). Either way a node is a host process with a pid the HFC can signal and watch, so health,
 * healing, fencing, adoption after an HFC crash and `hsmpool kill` work the same.
 */
export interface NodeLauncher {
  /** For the logs: "process", "docker", or the simulator's own. */
  readonly kind: LauncherKind | "sim";
  /** Starts the node; resolves once it runs (its pid is known). Throws LaunchRefused when it cannot start. */
  launch(req: LaunchRequest): Promise<NodeProcess>;
  /** Watches a node a previous HFC launched and that still runs. */
  adopt(req: LaunchRequest, pid: number): NodeProcess;
}

export const processLauncher: NodeLauncher = {
  kind: "process",
  launch: async (req) => launchNode(req),
  adopt: (req, pid) => adoptNode(req.nodeId, pid),
};

export interface LaunchRequest {
  nodeId: string;
  /** The node's entry script, e.g. `<repo>/packages/node/dist/main.js`. */
  nodeMain: string;
  configPath: string;
  logPath: string;
}

/**
 * Memory settings of a member process (issue 18, node RSS at 10k keys; both measured with
 * `npm run bench -- healing-keys`, the joiner's RSS once healed: ~155 -> ~135 -> ~115 MiB):
 * - a young generation of 2 MiB semi-spaces instead of V8's 16 (each semi-space is
 *   committed memory a member rarely needs: its request path allocates little that lives);
 * - glibc's mmap threshold fixed at its 128 KiB default: glibc otherwise raises it after a
 *   large buffer is freed, so later snapshot- and batch-sized buffers come from the brk
 *   heap and stay resident after they are freed; at a fixed threshold they are mapped and
 *   returned to the system when freed. Other C libraries ignore the variable.
 */
export const MEMBER_EXEC_ARGV: readonly string[] = ["--max-semi-space-size=2"];
export const MEMBER_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: "131072" };

export function launchNode(req: LaunchRequest): LaunchedNode {
  mkdirSync(dirname(req.logPath), { recursive: true });
  const logFd = openSync(req.logPath, "a", 0o644);
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...MEMBER_EXEC_ARGV, req.nodeMain, "--config", req.configPath], {
      detached: true,
      stdio: ["ignore", logFd, logFd],
      env: { ...process.env, ...MEMBER_ENV },
    });
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(logFd);
  }
  if (child.pid === undefined) {
    fail("LaunchRefused", `could not start node ${req.nodeId} (${req.nodeMain})`, { nodeId: req.nodeId });
  }
  const exited = new Promise<NodeExit>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
    child.once("error", () => resolve({ code: null, signal: null }));
  });
  return { nodeId: req.nodeId, pid: child.pid, child, exited, adopted: false };
}

/**
 * Watches a node process this HFC did not start (it survived a crash of the previous
 * HFC): not our child, so its exit is noticed by polling, and its status is unknown.
 */
export function adoptNode(nodeId: string, pid: number, pollMs = 100): NodeProcess {
  const exited = new Promise<NodeExit>((resolve) => {
    const timer = setInterval(() => {
      if (isRunning(pid)) return;
      clearInterval(timer);
      resolve({ code: null, signal: null });
    }, pollMs);
  });
  return { nodeId, pid, exited, adopted: true };
}
