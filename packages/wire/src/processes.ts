/**
 * Finding and stopping processes this run directory launched. A pid can be reused
 * by an unrelated process once ours is gone, so before signalling a recorded pid we
 * check (on Linux, via /proc) that its command line still names our file.
 */
import { readdirSync, readFileSync } from "node:fs";
import { isProcessAlive } from "./run-dir.js";

/** The process's argv, or undefined when it cannot be read (gone, or no /proc). */
export function commandLineOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8")
      .split("\0")
      .filter((s) => s.length > 0);
  } catch {
    return undefined;
  }
}

/** Whether `pid` is alive and its command line mentions `marker` (a config path, the HFC's run dir). */
export function isOurProcess(pid: number, marker: string): boolean {
  if (!isProcessAlive(pid)) return false;
  const argv = commandLineOf(pid);
  return argv?.some((arg) => arg.includes(marker)) ?? false;
}

/** Polls until `pid` is gone or `timeoutMs` passed; true when gone. */
export async function waitForExit(pid: number, timeoutMs: number, pollMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isRunning(pid)) return true;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return !isRunning(pid);
}

/** Sends `signal`, ignoring "no such process". */
export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether `pid` runs (not gone, not a zombie). A process whose parent died is
 * reaped by whoever adopted it; until then it shows as a zombie, which is as good
 * as gone.
 */
export function isRunning(pid: number): boolean {
  if (!isProcessAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "<pid> (<comm>) <state> ...": comm may contain spaces and parentheses.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc: trust signal 0
  }
}

/**
 * Running processes whose command line names one of `configPaths` (Linux /proc): how
 * a restarted HFC finds a node the previous one launched but had not recorded yet.
 * Returns config path → pid; empty where /proc cannot be read.
 */
export function findProcessesByConfig(configPaths: readonly string[]): Map<string, number> {
  const wanted = new Set(configPaths);
  const found = new Map<string, number>();
  let entries: string[];
  try {
    entries = readdirSync("/proc").filter((e) => /^\d+$/.test(e));
  } catch {
    return found;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const argv = commandLineOf(pid);
    const config = argv?.find((a) => wanted.has(a));
    if (config !== undefined && isRunning(pid)) found.set(config, pid);
  }
  return found;
}
