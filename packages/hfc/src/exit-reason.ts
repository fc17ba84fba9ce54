/**
 * Why a node process exited, from its exit status and its own log (the node writes
 * JSON lines with its pid; docs/node-hfc-contract.md). Only exits that a relaunch cannot
 * fix count as a refusal: the platform refused the enclave (exit code 3), the pool
 * refused the joiner at the attested handshake ("join refused", exit code 4), or the
 * config is bad (exit code 2). Anything else (a crash, a kill) is worth a restart.
 */
import { open } from "node:fs/promises";

/** The exit codes of packages/node/src/main.ts. */
export const NODE_EXIT_BAD_CONFIG = 2;
export const NODE_EXIT_LAUNCH_REFUSED = 3;
export const NODE_EXIT_JOIN_REFUSED = 4;

/** Log messages that mean "launching this again will not help". */
const REFUSAL_MESSAGES = new Set(["enclave launch refused", "join refused", "bad config"]);

const TAIL_BYTES = 64 * 1024;

export interface ExitFacts {
  pid: number;
  code: number | null;
  signal: string | null;
}

interface LogLine {
  level?: unknown;
  pid?: unknown;
  msg?: unknown;
  error?: unknown;
  reason?: unknown;
  check?: unknown;
  code?: unknown;
}

/** The last 64 KiB of a node's log ("" when there is none). */
export async function readLogTail(path: string): Promise<string> {
  const handle = await open(path, "r").catch(() => undefined);
  if (!handle) return "";
  try {
    const { size } = await handle.stat();
    const start = Math.max(0, size - TAIL_BYTES);
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    return buffer.toString("utf8");
  } finally {
    await handle.close();
  }
}

function parseLine(line: string): LogLine | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    return JSON.parse(line) as LogLine;
  } catch {
    return undefined;
  }
}

/** "join refused: attestation, check signer" from the line's message and whatever explains it. */
export function describeRefusal(line: LogLine): string {
  const parts = [line.error, line.reason, typeof line.check === "string" ? `check ${line.check}` : undefined]
    .filter((p): p is string => typeof p === "string" && p !== "")
    .map((p) => p.replace(/\s+/g, " ").slice(0, 300));
  return parts.length > 0 ? `${String(line.msg)}: ${parts.join(", ")}` : String(line.msg);
}

const EXIT_MEANING = new Map([
  [NODE_EXIT_BAD_CONFIG, "bad config"],
  [NODE_EXIT_LAUNCH_REFUSED, "enclave launch refused"],
  [NODE_EXIT_JOIN_REFUSED, "join refused"],
]);

/**
 * The refusal that explains this exit, or null when the exit is a plain crash. The
 * log is shared by every launch of the node, so only lines of this pid count.
 */
export async function refusalOf(
  logPath: string,
  exit: ExitFacts,
  tail: (path: string) => Promise<string> = readLogTail,
): Promise<string | null> {
  const lines = linesOf(await tail(logPath), exit.pid);
  const refusal = lines.findLast((l) => REFUSAL_MESSAGES.has(l.msg as string));
  if (refusal) return describeRefusal(refusal);
  const what = EXIT_MEANING.get(exit.code ?? -1);
  if (what === undefined) return null;
  // The node's last error line says why (e.g. a minPeerSvn above its own security version).
  const lastError = lastErrorLine(lines);
  return lastError ? `${what}: ${describeRefusal(lastError)}` : `${what} (exit code ${exit.code})`;
}

/** The last error (or fatal) line this process logged, described in one line; null when none. */
export async function lastErrorOf(
  logPath: string,
  pid: number,
  tail: (path: string) => Promise<string> = readLogTail,
): Promise<string | null> {
  const line = lastErrorLine(linesOf(await tail(logPath), pid));
  return line ? describeRefusal(line) : null;
}

/** The log is shared by every launch of the node, so only lines of this pid count. */
function linesOf(text: string, pid: number): LogLine[] {
  return text
    .split("\n")
    .map(parseLine)
    .filter((l): l is LogLine => l !== undefined && l.pid === pid && typeof l.msg === "string");
}

const lastErrorLine = (lines: LogLine[]) =>
  lines.findLast((l) => typeof l.level === "number" && l.level >= 50);
