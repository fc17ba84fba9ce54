/**
 * Fills a pool with EC P-256 keys through the SDK for the benchmarks (healing-keys,
 * backup-restore): `inFlight` creates at a time, named `<prefix><i>` for i in
 * [from, keys), stopping at the time budget even when short of the count (a create
 * that fails — e.g. a leader change under load — is skipped). Returns how many it made.
 */
import type { PoolClient } from "../sdk/pool-client.js";

export interface FillOptions {
  keys: number;
  from?: number;
  prefix?: string;
  inFlight: number;
  budgetMs: number;
  say: (line: string) => void;
}

export async function fillKeys(client: PoolClient, o: FillOptions): Promise<number> {
  let next = o.from ?? 0;
  let created = 0;
  let failed = 0;
  const t0 = performance.now();
  const inBudget = () => performance.now() - t0 < o.budgetMs;
  await Promise.all(
    Array.from({ length: o.inFlight }, async () => {
      for (let i = next++; i < o.keys && inBudget(); i = next++) {
        try {
          await client.createKey({ name: `${o.prefix ?? "k"}${i}`, kty: "EC", crv: "P-256" });
          created++;
        } catch {
          failed++;
        }
        if (created > 0 && created % 2000 === 0)
          o.say(`  ${created} keys (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
      }
    }),
  );
  o.say(
    `filled ${created} of ${o.keys - (o.from ?? 0)} keys in ${((performance.now() - t0) / 1000).toFixed(1)} s (${failed} creates failed)`,
  );
  return created;
}
