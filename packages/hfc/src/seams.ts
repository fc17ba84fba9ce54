/**
 * The HFC shell's seams: everything its supervision loop (supervisor, health poller,
 * healing loop, healing store) needs from the outside world. Production uses the real
 * ones below; the simulator (packages/sim) passes its own, so the shipped loop runs in
 * virtual time against simulated node processes, run-dir files and Status probes.
 */
import { mkdir, readFile } from "node:fs/promises";
import type * as grpc from "@grpc/grpc-js";
import { writeJsonAtomic } from "@hsmpool/files";
import {
  allocateLoopbackPorts,
  type Clock,
  findProcessesByConfig,
  isOurProcess,
  isRunning,
  type NodeStatus,
  NodeStatusClient,
  readJson,
  signalProcess,
  systemClock,
  waitForExit,
} from "@hsmpool/wire";
import { isDebugSigned } from "./bundle-facts.js";
import { readLogTail } from "./exit-reason.js";
import { type NodeLauncher, processLauncher } from "./launcher.js";

/** The run dir's files as the HFC reads and writes them. */
export interface RunDirFiles {
  /** Atomic replace (the file holds the old or the new value after a crash, never a mix). */
  writeJson(path: string, value: unknown, mode: number): Promise<void>;
  /** The parsed file; undefined when it does not exist. */
  readJson(path: string): Promise<unknown>;
  readText(path: string): Promise<string | undefined>;
  /** The last part of a node's log ("" when there is none). */
  logTail(path: string): Promise<string>;
  mkdir(path: string): Promise<void>;
}

/** The processes of this host as the HFC signals and finds them. */
export interface ProcessControl {
  isRunning(pid: number): boolean;
  /** Whether `pid` is a node process started with `configPath` (not a recycled pid). */
  isOurProcess(pid: number, configPath: string): boolean;
  /** Running node processes by the config path on their command line. */
  findByConfig(configPaths: readonly string[]): Map<string, number>;
  signal(pid: number, signal: NodeJS.Signals): void;
  /** Resolves true once `pid` is gone, false after `timeoutMs`. */
  waitForExit(pid: number, timeoutMs: number): Promise<boolean>;
}

/** One member's Status channel (NodeControl.Status on its data plane). */
export interface StatusProbe {
  status(deadlineMs: number): Promise<NodeStatus>;
  close(): void;
}

export interface HfcSeams {
  clock: Clock;
  files: RunDirFiles;
  processes: ProcessControl;
  launcher: NodeLauncher;
  statusProbe(address: string, credentials: grpc.ChannelCredentials): StatusProbe;
  /** Fresh peer and data addresses for a joiner. */
  nodeAddresses(memberId: string): Promise<{ peerAddress: string; dataAddress: string }>;
  /** Whether a bundle is debug-signed (it then honours the TEST-ONLY hooks file). */
  isDebugBundle(bundleDir: string): Promise<boolean>;
}

export const hostFiles: RunDirFiles = {
  writeJson: (path, value, mode) => writeJsonAtomic(path, value, mode),
  readJson: (path) => readJson(path),
  readText: (path) => readFile(path, "utf8").catch(() => undefined),
  logTail: readLogTail,
  mkdir: async (path) => {
    await mkdir(path, { recursive: true, mode: 0o700 });
  },
};

export const hostProcesses: ProcessControl = {
  isRunning,
  isOurProcess,
  findByConfig: findProcessesByConfig,
  signal: (pid, signal) => void signalProcess(pid, signal),
  waitForExit: (pid, timeoutMs) => waitForExit(pid, timeoutMs),
};

/** The real seams (the launcher: child processes unless the options name another). */
export function hostSeams(launcher: NodeLauncher = processLauncher): HfcSeams {
  return {
    clock: systemClock,
    files: hostFiles,
    processes: hostProcesses,
    launcher,
    statusProbe: (address, credentials) => new NodeStatusClient(address, credentials),
    nodeAddresses: async () => {
      const [peerPort, dataPort] = await allocateLoopbackPorts(2);
      return { peerAddress: `127.0.0.1:${peerPort}`, dataAddress: `127.0.0.1:${dataPort}` };
    },
    isDebugBundle: isDebugSigned,
  };
}
