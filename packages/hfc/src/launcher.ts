/**
 * Starts node processes (contract-node-hfc.md "Launch"): `node <node main> --config
 * <config.json>`, detached (its own process group, so stopping it is always an
 * explicit signal), stdout and stderr appended to the node's log file.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { fail } from "@hsmpool/errors";

export interface NodeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LaunchedNode {
  nodeId: string;
  pid: number;
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<NodeExit>;
}

export interface LaunchRequest {
  nodeId: string;
  /** The node's entry script, e.g. `<repo>/packages/node/dist/main.js`. */
  nodeMain: string;
  configPath: string;
  logPath: string;
}

export function launchNode(req: LaunchRequest): LaunchedNode {
  mkdirSync(dirname(req.logPath), { recursive: true });
  const logFd = openSync(req.logPath, "a", 0o644);
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [req.nodeMain, "--config", req.configPath], {
      detached: true,
      stdio: ["ignore", logFd, logFd],
      env: process.env,
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
  return { nodeId: req.nodeId, pid: child.pid, child, exited };
}
