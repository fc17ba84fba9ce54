/**
 * What the pool commands share: where the run directory is, how to reach the pool,
 * and where output goes (results on stdout; progress on stderr).
 */
import { PoolClient } from "../sdk/pool-client.js";

export const DEFAULT_RUN_DIR = ".hsmpool/run";
export const RUN_DIR_HELP = `run directory of the pool (default: $HSMPOOL_RUN_DIR or ${DEFAULT_RUN_DIR})`;

/** `--run-dir`, else $HSMPOOL_RUN_DIR, else `.hsmpool/run`. */
export function resolveRunDir(flag: string | undefined): string {
  if (flag !== undefined && flag !== "") return flag;
  const env = process.env.HSMPOOL_RUN_DIR;
  return env !== undefined && env !== "" ? env : DEFAULT_RUN_DIR;
}

export function out(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

export function progress(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** Runs `fn` with a client for the pool of `runDir`, closing it afterwards. */
export async function withPool<T>(runDir: string, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await PoolClient.connect({ runDir });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
