/**
 * Cost of making one Raft Ready durable (one 512-byte entry + hard state, append +
 * fdatasync) through the node's WAL layers, against the floor measured in the same
 * run: a plain append of the same number of bytes + fdatasync on the same disk.
 *   framed   RecordLog (length + SHA-256 checksum), no sealing
 *   cpu      RaftStore, payload sealed with the enclave's sealing key
 *   pool     RaftStore, payload sealed with the pool key (AES-256-GCM in the HSM)
 * Rounds alternate so background load hits every variant alike. Goal: sealed
 * persists within 1.5x of the plain fsync floor (fsync dominates).
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HsmDevice } from "@hsmpool/hsm";
import { initFabric, launchEnclave, openFabric, signBundle } from "@hsmpool/platform";
import type { Ready } from "@hsmpool/raft";
import { RaftStore } from "../storage/raft-store.js";
import { RecordLog } from "../storage/record-log.js";
import { cpuSealer, poolKeySealer, Sealers } from "../storage/sealer.js";

const ROUNDS = 4;
const ROUND_MS = 400;
const ENTRY_BYTES = 512;
const GOAL_RATIO = 1.5;

async function runFor(
  op: () => Promise<void>,
  budgetMs: number,
): Promise<{ count: number; elapsedMs: number }> {
  const start = performance.now();
  let count = 0;
  while (performance.now() - start < budgetMs) {
    await op();
    count++;
  }
  return { count, elapsedMs: performance.now() - start };
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "hsmpool-bench-wal-"));
  try {
    await initFabric(join(root, "fabric"), { racks: 1, serversPerRack: 1 });
    const server = (await openFabric(join(root, "fabric"))).servers()[0]!;
    const device = await HsmDevice.create(server.hsmDir, { partitionCount: 1 });
    const session = await device.partition(0).login(await device.partition(0).initialize());
    const poolKey = await session.generateKey({ kty: "oct", size: 256, ops: ["encrypt", "decrypt"] });
    const bundle = join(root, "bundle");
    await mkdir(bundle);
    await writeFile(join(bundle, "main.js"), "// bench bundle\n");
    await signBundle(bundle, generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey, {
      productId: 1,
      svn: 1,
      debug: false,
    });
    const enclave = await launchEnclave(server, bundle);

    const conf = { voters: ["n1", "n2", "n3"], learners: [] };
    const stores: Record<string, RaftStore> = {};
    for (const kind of ["cpu", "pool"] as const) {
      const dir = join(root, kind);
      await mkdir(dir);
      const sealers = new Sealers(cpuSealer(enclave));
      if (kind === "pool") sealers.usePoolKey(poolKeySealer(session, poolKey.id));
      stores[kind] = (
        await RaftStore.open({ dir, sealers, bootstrap: { conf, data: new Uint8Array() } })
      ).store;
    }
    const framed = (await RecordLog.open(join(root, "framed.log"))).log;
    const plain = await open(join(root, "plain.bin"), "w");
    let plainSize = 0;
    const payload = randomBytes(ENTRY_BYTES);

    const readyFor = (store: RaftStore): Ready => {
      const index = store.storage.lastIndex() + 1;
      return {
        entries: [{ index, term: 2, type: "normal", data: payload }],
        hardState: { term: 2, vote: "n1", commit: index },
        committedEntries: [],
        messages: [],
        readStates: [],
        mustSync: true,
      };
    };
    const variants: Record<string, () => Promise<void>> = {
      plain: async () => {
        await plain.write(payload, 0, payload.length, plainSize);
        plainSize += payload.length;
        await plain.datasync();
      },
      framed: async () => {
        await framed.append([payload]);
        await framed.sync();
      },
      cpu: () => stores.cpu!.persist(readyFor(stores.cpu!)),
      pool: () => stores.pool!.persist(readyFor(stores.pool!)),
    };
    const totals = Object.fromEntries(Object.keys(variants).map((k) => [k, { count: 0, elapsedMs: 0 }]));
    for (const op of Object.values(variants)) await runFor(op, 100);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, op] of Object.entries(variants)) {
        const r = await runFor(op, ROUND_MS);
        totals[name]!.count += r.count;
        totals[name]!.elapsedMs += r.elapsedMs;
      }
    }
    const perSec = (name: string) => (totals[name]!.count / totals[name]!.elapsedMs) * 1000;
    const floor = perSec("plain");
    console.log(
      `durable persists of one ${ENTRY_BYTES}-byte entry (append + fdatasync), ${ROUNDS} alternating rounds:`,
    );
    let ok = true;
    for (const name of Object.keys(variants)) {
      const rate = perSec(name);
      const slowdown = floor / rate;
      if (name !== "plain" && slowdown > GOAL_RATIO) ok = false;
      console.log(
        `  ${name.padEnd(7)} ${rate.toFixed(0).padStart(7)} /s   ${(1000 / rate).toFixed(3)} ms each   ` +
          `${slowdown.toFixed(2)}x the plain fsync floor`,
      );
    }
    console.log(`goal: sealed persists within ${GOAL_RATIO}x of the floor — ${ok ? "met" : "NOT met"}`);
    await plain.close();
    await framed.close();
    for (const s of Object.values(stores)) await s.close();
    await device.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
