/**
 * Helpers for the healing e2e tests: signed copies of the node bundle (another signer,
 * another SVN), a node's JSON log lines by message, pool views from Status, and a
 * ledger of acknowledged creates to check that none went missing.
 */
import { generateKeyPairSync } from "node:crypto";
import { cp } from "node:fs/promises";
import { join } from "node:path";
import { loadOrCreateSigningKey, signBundle } from "@hsmpool/platform";
import { type NodeStatus, nodeRuntimeClosure } from "@hsmpool/wire";
import { BUNDLE_DIR, call, REPO_ROOT, type TestCluster, waitFor } from "./cluster.js";
import { tempDir } from "./fixtures.js";

/**
 * The built bundle, re-signed: same code (same MRENCLAVE), product id 1, the given SVN,
 * by the development key (same MRSIGNER as the pool) or by a fresh key (a foreign signer).
 */
export async function resignedBundle(opts: { svn: number; foreignSigner?: boolean }): Promise<string> {
  const dir = join(await tempDir("hsmpool-node-bundle-"), "bundle");
  await cp(BUNDLE_DIR, dir, { recursive: true });
  const key = opts.foreignSigner
    ? generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey
    : (await loadOrCreateSigningKey(join(REPO_ROOT, ".hsmpool", "dev-signing-key.pem"))).key;
  await signBundle(dir, key, { productId: 1, svn: opts.svn, debug: false }, nodeRuntimeClosure());
  return dir;
}

export type LogLine = Record<string, unknown> & { msg: string };

/** The node's log lines whose `msg` is `msg`, parsed, in order. */
export async function logLines(cluster: TestCluster, id: string, msg: string): Promise<LogLine[]> {
  return (await cluster.log(id))
    .split("\n")
    .filter((l) => l.includes(`"msg":${JSON.stringify(msg)}`))
    .map((l) => JSON.parse(l) as LogLine);
}

/** Status of every listed node, or null while one does not answer. */
export async function statusesOf(cluster: TestCluster, ids: readonly string[]): Promise<NodeStatus[] | null> {
  const all = await Promise.all(ids.map((id) => cluster.status(id)));
  return all.every((s) => s !== null) ? (all as NodeStatus[]) : null;
}

/**
 * Waits until exactly `ids` are the pool's voters (no learners), one of them is primary,
 * all are synced with one DEK and have applied the same log. Returns their statuses.
 */
export async function healthyPoolOf(
  cluster: TestCluster,
  ids: readonly string[],
  timeoutMs = 60_000,
): Promise<NodeStatus[]> {
  const want = [...ids].sort().join(",");
  return waitFor(
    `a healthy pool of exactly ${want}`,
    async () => {
      const all = await statusesOf(cluster, ids);
      if (!all) return null;
      const primary = all.find((s) => s.role === "primary");
      if (!primary || all.filter((s) => s.role === "primary").length !== 1) return null;
      const ok = all.every(
        (s) =>
          s.ownership === "synced" &&
          s.membership === "voter" &&
          s.primaryId === primary.nodeId &&
          s.dekFingerprint === primary.dekFingerprint &&
          s.appliedIndex === primary.appliedIndex &&
          s.members.every((m) => m.role === "voter") &&
          s.members
            .map((m) => m.id)
            .sort()
            .join(",") === want,
      );
      return ok ? all : null;
    },
    timeoutMs,
  );
}

/** Creates keys and remembers every name whose create was acknowledged. */
export class AckedCreates {
  readonly names: string[] = [];

  async create(cluster: TestCluster, primary: string, name: string): Promise<void> {
    await call(cluster.keyVault(primary), "CreateKey", {
      name,
      kty: "oct",
      size: 256,
      requestId: `req-${name}`,
    });
    this.names.push(name);
  }

  /** Names acknowledged but not listed by `id` (must be empty). */
  async missingOn(cluster: TestCluster, id: string): Promise<string[]> {
    const listed = await call<{ keys: { name: string }[] }>(cluster.keyVault(id), "ListKeys", {});
    const present = new Set(listed.keys.map((k) => k.name));
    return this.names.filter((n) => !present.has(n));
  }
}
