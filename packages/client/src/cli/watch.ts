/**
 * `hsmpool status --watch`: print the pool status whenever it changes, including
 * healing phases as they happen. Bounded: Ctrl-C stops it (exit 0), `--until
 * healthy` stops once the pool is healthy with nothing healing, `--timeout-ms`
 * stops after that long (a Timeout error when `--until` was not reached), and
 * `--max-updates` after that many prints. An HFC that restarts meanwhile is found
 * again through the run directory.
 */
import { fail } from "@hsmpool/errors";
import type { FabricControllerClient, PoolStatus } from "@hsmpool/wire";
import { hfcForRunDir } from "../sdk/pool-client.js";
import { out, progress } from "./context.js";
import { isSettledHealthy, statusJson, statusTable } from "./status-format.js";

export interface WatchOptions {
  runDir: string;
  json: boolean;
  intervalMs: number;
  maxUpdates: number;
  until: "healthy" | null;
  timeoutMs: number | null;
  /** Stops the watch (Ctrl-C); default: SIGINT of this process. */
  signal?: AbortSignal;
}

export type WatchEnd = "until" | "timeout" | "max-updates" | "interrupted";

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/** What changes count: everything but the observation time. */
const changeKey = (s: PoolStatus) => JSON.stringify(statusJson(s));

function describe(s: PoolStatus | undefined): string {
  if (!s) return "the HFC did not answer";
  const open = s.healing
    .filter((h) => h.phase !== "ready" && h.phase !== "failed")
    .map((h) => `${h.id} ${h.phase}`);
  return `state ${s.state}${open.length > 0 ? `, healing ${open.join(", ")}` : ""}`;
}

export async function watchStatus(opts: WatchOptions): Promise<WatchEnd> {
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  if (opts.signal) opts.signal.addEventListener("abort", onSigint, { once: true });
  else process.once("SIGINT", onSigint);
  const signal = controller.signal;
  const deadline = opts.timeoutMs === null ? Number.POSITIVE_INFINITY : Date.now() + opts.timeoutMs;
  let hfc: FabricControllerClient | undefined = await hfcForRunDir(opts.runDir);
  let shown = "";
  let updates = 0;
  let last: PoolStatus | undefined;
  let silent = false;
  try {
    for (;;) {
      if (signal.aborted) return "interrupted";
      try {
        hfc ??= await hfcForRunDir(opts.runDir);
        last = await hfc.status(2000);
        if (silent) progress("the HFC answers again");
        silent = false;
      } catch (e) {
        if (!silent) progress(`waiting for the HFC: ${e instanceof Error ? e.message : String(e)}`);
        silent = true;
        hfc?.close();
        hfc = undefined; // re-read hfc.json: a restarted HFC may listen elsewhere
        last = undefined;
      }
      if (last) {
        const key = changeKey(last);
        if (key !== shown) {
          out(
            opts.json
              ? JSON.stringify(statusJson(last))
              : `${new Date(last.observedMs).toISOString()}\n${statusTable(last)}`,
          );
          shown = key;
          updates++;
        }
        if (opts.until === "healthy" && isSettledHealthy(last)) return "until";
        if (updates >= opts.maxUpdates) return "max-updates";
      }
      if (Date.now() >= deadline) {
        if (opts.until !== null) {
          fail(
            "Timeout",
            `the pool did not become ${opts.until} within ${Math.round((opts.timeoutMs ?? 0) / 1000)} s (${describe(last)})`,
          );
        }
        return "timeout";
      }
      await sleep(Math.min(opts.intervalMs, Math.max(0, deadline - Date.now())), signal);
    }
  } finally {
    hfc?.close();
    if (!opts.signal) process.removeListener("SIGINT", onSigint);
  }
}
