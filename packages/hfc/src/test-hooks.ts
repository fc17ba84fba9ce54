/**
 * The HFC's side of the nodes' TEST-ONLY hooks file (`<run>/nodes/<id>/chaos.json`,
 * packages/node/src/chaos-hooks.ts): for a pool launched from a DEBUG-signed bundle
 * (`hsmpool up --test-hooks`, chaos runs) the HFC lays down a no-fault file before each
 * launch, so the control API can later partition a member from its peers and heal it
 * again, on loopback, with no proxy in the data path. A production enclave ignores
 * the file (the node logs "IGNORED"), so the HFC refuses to pretend it partitioned one.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeJsonAtomic } from "@hsmpool/files";
import { PUBLIC_FILE_MODE } from "@hsmpool/wire";

export const TEST_HOOKS_FILE = "chaos.json";

export const testHooksPath = (nodeDir: string): string => join(nodeDir, TEST_HOOKS_FILE);

/** Writes a no-fault hooks file unless one exists (a chaos harness may have written its own). */
export async function ensureTestHooksFile(nodeDir: string): Promise<void> {
  const path = testHooksPath(nodeDir);
  if (existsSync(path)) return;
  await writeJsonAtomic(path, { unsafeAckBeforeCommit: false, peerDial: {}, faults: {} }, PUBLIC_FILE_MODE);
}

/** Is the member cut off from its peers right now (as its hooks file says)? */
export async function isIsolated(nodeDir: string): Promise<boolean> {
  const body = await readHooks(nodeDir);
  return (body?.faults as { network?: { isolated?: unknown } } | undefined)?.network?.isolated === true;
}

/** Cuts the member off from its peers, or reconnects it; keeps every other fault in the file. */
export async function setIsolated(nodeDir: string, isolated: boolean): Promise<boolean> {
  const body = await readHooks(nodeDir);
  if (body === undefined) return false;
  const faults = (body.faults ?? {}) as Record<string, unknown>;
  const next = { ...body, faults: { ...faults, network: { isolated } } };
  await writeJsonAtomic(testHooksPath(nodeDir), next, PUBLIC_FILE_MODE);
  return true;
}

async function readHooks(nodeDir: string): Promise<Record<string, unknown> | undefined> {
  return readFile(testHooksPath(nodeDir), "utf8")
    .then((t) => JSON.parse(t) as Record<string, unknown>)
    .catch(() => undefined);
}
