/** A debug-signed copy of the node bundle: the only kind of enclave that honours the TEST-ONLY hooks file (chaos runs, `up --test-hooks`). */
import { cp, mkdir, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadOrCreateSigningKey, signBundle } from "@hsmpool/platform";
import { nodeRuntimeClosure } from "@hsmpool/wire";

/** The built, production-signed node bundle (`<repo>/packages/node/dist`; this module sits in client/src|dist/cli). */
export const NODE_BUNDLE_DIR = fileURLToPath(new URL("../../../node/dist", import.meta.url));

/** Copies the built node bundle to `<run>/debug-bundle` and signs it as a debug enclave (same key, product, SVN). */
export async function debugBundle(poolDir: string): Promise<string> {
  const dir = join(dirname(poolDir), "debug-bundle");
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await cp(NODE_BUNDLE_DIR, dir, { recursive: true });
  const { key } = await loadOrCreateSigningKey(
    resolve(NODE_BUNDLE_DIR, "../../../.hsmpool/dev-signing-key.pem"),
  );
  await signBundle(dir, key, { productId: 1, svn: 1, debug: true }, nodeRuntimeClosure());
  return dir;
}
