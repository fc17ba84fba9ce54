/**
 * What the HFC reads from a code bundle: its SIGSTRUCT's public fields and whether it would launch
 * (measured with the node runtime closure the node's launch measures: this installation's packages/node).
 */
import { resolve } from "node:path";
import type { BundleFacts } from "@hsmpool/healing";
import { inspectBundle, readSigstruct } from "@hsmpool/platform";
import { nodeRuntimeClosure } from "@hsmpool/wire";

export async function readBundleFacts(bundleDir: string): Promise<BundleFacts> {
  const dir = resolve(bundleDir);
  const r = await inspectBundle(dir, nodeRuntimeClosure());
  return {
    bundleDir: dir,
    svn: r.sigstruct?.svn ?? null,
    mrsigner: r.sigstruct?.mrsigner ?? null,
    debug: r.sigstruct?.debug ?? false,
    signatureValid: r.signatureValid,
    measurementMatches: r.measurementMatches,
    problem: r.sigstructError,
  };
}

/**
 * Whether a bundle's SIGSTRUCT says debug (it then honours the TEST-ONLY hooks file). The flag
 * alone, as the node's main reads it: measuring the runtime closure for it would block the HFC's
 * loop for up to a second, and the node's launch measures and refuses a forged SIGSTRUCT anyway.
 */
export function isDebugSigned(bundleDir: string): Promise<boolean> {
  return readSigstruct(resolve(bundleDir)).then(
    (s) => s.debug,
    () => false,
  );
}
