/**
 * Pure decisions of the Docker launcher: which host directories a node container mounts, what a container exit
 * means as a process exit, and which Docker API call stands for a signal. No I/O here.
 */
import type { NodeExit } from "./launcher.js";

/** A bind mount of the HFC's own container (when the HFC runs in one), as the Docker API reports it. */
export interface BindMount {
  source: string;
  destination: string;
  readWrite: boolean;
}

export interface NeededPath {
  /** The path as the HFC sees it (and writes into node configs). */
  path: string;
  readWrite: boolean;
}

/**
 * `HostConfig.Binds` for a node container, so that every path in its config means the same file inside the
 * container as it does to the HFC. An HFC on the host: each path is mounted at itself. An HFC in a container: the
 * host directory behind the HFC's mount that holds the path, at the same destination; a path under no mount is part
 * of the image (e.g. the node bundle at /app/packages/node/dist) and needs none.
 */
export function planBinds(
  needed: readonly NeededPath[],
  hfcMounts: readonly BindMount[] | undefined,
): string[] {
  const binds = new Set<string>();
  for (const n of needed) {
    if (hfcMounts === undefined) {
      binds.add(`${n.path}:${n.path}:${n.readWrite ? "rw" : "ro"}`);
      continue;
    }
    const holder = hfcMounts
      .filter((m) => n.path === m.destination || n.path.startsWith(`${m.destination.replace(/\/$/, "")}/`))
      .sort((a, b) => b.destination.length - a.destination.length)[0];
    if (holder)
      binds.add(`${holder.source}:${holder.destination}:${holder.readWrite && n.readWrite ? "rw" : "ro"}`);
  }
  return [...binds];
}

const SIGNAL_NUMBERS: Record<number, NodeJS.Signals> = {
  1: "SIGHUP",
  2: "SIGINT",
  6: "SIGABRT",
  9: "SIGKILL",
  15: "SIGTERM",
};

/** A container's exit status as a process exit: 128+n is "killed by signal n" (what `docker kill` gives: 137). */
export function exitFromStatusCode(statusCode: number | undefined): NodeExit {
  if (statusCode === undefined || !Number.isSafeInteger(statusCode) || statusCode < 0)
    return { code: null, signal: null };
  const signal = statusCode > 128 ? SIGNAL_NUMBERS[statusCode - 128] : undefined;
  return signal ? { code: null, signal } : { code: statusCode, signal: null };
}

export type ContainerAction = "kill" | "terminate" | "pause" | "unpause";

/** The Docker call that does to a container what `signal` does to a process (a stopped container is a paused one). */
export function containerActionFor(signal: NodeJS.Signals): ContainerAction | undefined {
  switch (signal) {
    case "SIGKILL":
      return "kill";
    case "SIGTERM":
      return "terminate";
    case "SIGSTOP":
      return "pause";
    case "SIGCONT":
      return "unpause";
    default:
      return undefined;
  }
}

/** The name of a container the launcher creates: one per pool member, so a second one cannot start by mistake. */
export function containerName(poolId: string, nodeId: string): string {
  return `hsmpool-${poolId}-${nodeId}`.replace(/[^A-Za-z0-9_.-]/g, "_");
}
