/**
 * Helpers for the healing e2e tests: one real pool per test (temp dirs, `hsmpool up`,
 * the HFC's control client, a data-plane client), conditions on the pool status,
 * a background writer that records acknowledged creates, and teardown.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { PoolClient } from "@hsmpool/client";
import { FabricControllerClient, type PoolStatus, readHfcInfo } from "@hsmpool/wire";
import { cli, type PoolDirs, removeDirs, stopEverything, tempPoolDirs, waitFor } from "./pool-harness.js";

export interface TestPool {
  dirs: PoolDirs;
  hfc: FabricControllerClient;
  client: PoolClient;
  /** `hsmpool <args> --run-dir <run>`. */
  run(...args: string[]): ReturnType<typeof cli>;
  /** Re-reads hfc.json (after an HFC restart). */
  reconnectHfc(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a pool (optionally on a fabric of `racks` racks) and connects to it. */
export async function startTestPool(prefix: string, opts: { racks?: number } = {}): Promise<TestPool> {
  const dirs = await tempPoolDirs(prefix);
  try {
    if (opts.racks !== undefined) {
      const init = await cli(["fabric", "init", "--dir", dirs.fabricDir, "--racks", String(opts.racks)]);
      if (init.code !== 0) throw new Error(`fabric init failed:\n${init.stderr}`);
    }
    const up = await cli(
      ["up", "--run-dir", dirs.runDir, "--fabric-dir", dirs.fabricDir, "--timeout-ms", "120000", "--json"],
      { timeoutMs: 180_000 },
    );
    if (up.code !== 0)
      throw new Error(`hsmpool up failed (${up.code}):\n${up.stderr}\n${await logsTail(dirs)}`);
    const info = await readHfcInfo(dirs.runDir);
    const pool: TestPool = {
      dirs,
      hfc: new FabricControllerClient(info?.controlAddress ?? ""),
      client: await PoolClient.connect({ runDir: dirs.runDir }),
      run: (...args) => cli([...args, "--run-dir", dirs.runDir], { timeoutMs: 180_000 }),
      async reconnectHfc() {
        pool.hfc.close();
        pool.hfc = new FabricControllerClient((await readHfcInfo(dirs.runDir))?.controlAddress ?? "");
      },
      async close() {
        pool.client.close();
        pool.hfc.close();
        await stopEverything(dirs);
        await removeDirs(dirs);
      },
    };
    return pool;
  } catch (e) {
    await stopEverything(dirs);
    await removeDirs(dirs);
    throw e;
  }
}

/** The last lines of the HFC's and every node's log, for a failure message. */
export async function logsTail(dirs: PoolDirs, lines = 12): Promise<string> {
  const pool = JSON.parse(
    await readFile(join(dirs.runDir, "pool.json"), "utf8").catch(() => '{"members":[]}'),
  ) as {
    members: { id: string }[];
  };
  const files = ["hfc.log", ...pool.members.map((m) => join("nodes", m.id, "node.log"))];
  const parts: string[] = [];
  for (const f of files) {
    const text = await readFile(join(dirs.runDir, f), "utf8").catch(() => "");
    parts.push(`--- ${f}\n${text.trimEnd().split("\n").slice(-lines).join("\n")}`);
  }
  return parts.join("\n");
}

const isOpen = (h: PoolStatus["healing"][number]) => h.phase !== "ready" && h.phase !== "failed";

/** The acceptance condition: three members up and synced in three racks, a primary, nothing healing. */
export function healedAndHealthy(s: PoolStatus): boolean {
  return (
    s.state === "healthy" &&
    s.primary !== "" &&
    s.members.length === 3 &&
    s.members.every((m) => m.health === "up" && m.ownership === "synced") &&
    new Set(s.members.map((m) => m.rack)).size === 3 &&
    !s.healing.some(isOpen)
  );
}

export async function waitForHealed(pool: TestPool, what: string, timeoutMs = 90_000): Promise<PoolStatus> {
  try {
    return await waitFor(
      what,
      async () => {
        const s = await pool.hfc.status(2000);
        return healedAndHealthy(s) ? s : undefined;
      },
      timeoutMs,
    );
  } catch (e) {
    const last = await pool.hfc.status(2000).catch(() => undefined);
    throw new Error(
      `${(e as Error).message}\nlast status: ${JSON.stringify(last)}\n${await logsTail(pool.dirs)}`,
    );
  }
}

/** Creates keys `<prefix>-<n>` until stopped; remembers which creates were acknowledged. */
export class Writer {
  readonly acked: string[] = [];
  readonly failures: string[] = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(client: PoolClient, prefix: string, maxKeys = 2000) {
    this.done = (async () => {
      for (let i = 0; i < maxKeys && !this.stopped; i++) {
        const name = `${prefix}-${i}`;
        try {
          await client.createKey({ name, kty: "EC", crv: "P-256" });
          this.acked.push(name);
        } catch (e) {
          // Not acknowledged: it may or may not exist; only acknowledged ones are promised.
          this.failures.push(`${name}: ${(e as Error).message}`);
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}
