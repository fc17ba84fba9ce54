/**
 * Key lifecycle benchmark (`npm run bench -- key-lifecycle`): a real pool of three node
 * processes on loopback. Rotate throughput (16 keys rotated concurrently, one loop per
 * key, so no rotation races another for the same version), and the latency of each
 * lifecycle operation — rotate, update, delete, recover, delete + purge — as a ratio to
 * a plain create measured in the same run (every one a Raft commit through the
 * primary; creates and rotates also make a key in the primary's HSM).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reportFigure } from "@hsmpool/hfc/bench-support";
import { startPool, stopPool } from "../cli/lifecycle.js";
import { PoolClient } from "../sdk/pool-client.js";

const SAMPLES = 30;
const IN_FLIGHT = 16;
const MEASURE_MS = 3000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

async function timed(n: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await op(i);
    samples.push(performance.now() - t);
  }
  return median(samples);
}

async function bench(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "hsmpool-bench-lifecycle-"));
  const runDir = join(root, "run");
  try {
    await startPool({ runDir, fabricDir: join(root, "fabric"), timeoutMs: 60_000, onProgress: () => {} });
    const client = await PoolClient.connect({ runDir });
    try {
      const ec = { kty: "EC", crv: "P-256" } as const;
      for (let i = 0; i < 5; i++) await client.createKey({ name: `warm-${i}`, ...ec });
      const create = await timed(SAMPLES, (i) => client.createKey({ name: `c-${i}`, ...ec }));
      const rotate = await timed(SAMPLES, () => client.rotateKey("c-0"));
      const update = await timed(SAMPLES, (i) => client.updateKey({ name: "c-1", tags: { n: String(i) } }));
      const del = await timed(SAMPLES, (i) => client.deleteKey(`c-${i}`));
      const recover = await timed(SAMPLES, (i) => client.recoverDeletedKey(`c-${i}`));
      const purge = await timed(SAMPLES, async (i) => {
        await client.deleteKey(`c-${i}`);
        await client.purgeDeletedKey(`c-${i}`);
      });
      for (let k = 0; k < IN_FLIGHT; k++) await client.createKey({ name: `r-${k}`, ...ec });
      let rotations = 0;
      const end = Date.now() + MEASURE_MS;
      const started = Date.now();
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async (_, k) => {
          while (Date.now() < end) {
            await client.rotateKey(`r-${k}`);
            rotations++;
          }
        }),
      );
      const rotateRate = rotations / ((Date.now() - started) / 1000);
      console.log(
        `baseline: create-key median ${create.toFixed(1)} ms (${SAMPLES} sequential EC P-256 creates)`,
      );
      const ratio = (name: string, ms: number) => {
        console.log(
          `${name.padEnd(16)} median ${ms.toFixed(1).padStart(7)} ms = ${(ms / create).toFixed(2)} × create`,
        );
        reportFigure({
          name: `${name.replace(/[^a-z]+/g, "_")}_vs_create`,
          value: ms / create,
          unit: "ratio",
        });
      };
      ratio("rotate", rotate);
      ratio("update", update);
      ratio("delete", del);
      ratio("recover", recover);
      ratio("delete+purge", purge);
      console.log(`rotate throughput: ${rotateRate.toFixed(0)} rotations/s (${IN_FLIGHT} keys in flight)`);
      reportFigure({ name: "rotate_per_s", value: rotateRate, unit: "ops/s" });
      reportFigure({
        name: "rotate_per_s_vs_sequential_create",
        value: rotateRate / (1000 / create),
        unit: "ratio",
      });
    } finally {
      client.close();
    }
  } finally {
    await stopPool(runDir, () => {}).catch(() => {});
    await rm(root, { recursive: true, force: true });
  }
}

await bench();
