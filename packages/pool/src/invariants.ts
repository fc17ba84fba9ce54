/**
 * Invariant helpers for the simulator, the chaos checker and tests. Each returns the
 * facts and a matching assert* throws Internal with a message naming the violation.
 */
import { fail } from "@hsmpool/errors";
import { certificateFingerprint } from "./certificate.js";
import type { OwnershipPhase, OwnershipState } from "./ownership-types.js";

/** pool id → the distinct owner root certificate fingerprints held by synced members. */
export function ownerRootsOf(states: readonly OwnershipState[]): Map<string, string[]> {
  const roots = new Map<string, Set<string>>();
  for (const s of states) {
    const cert = s.material.ownerRootCert;
    if (s.phase !== "synced" || !cert) continue;
    const set = roots.get(s.config.poolId) ?? new Set<string>();
    set.add(certificateFingerprint(cert));
    roots.set(s.config.poolId, set);
  }
  return new Map([...roots].map(([pool, set]) => [pool, [...set].sort()]));
}

/** Exactly one owner root per pool among its synced members. */
export function assertOneOwnerRootPerPool(states: readonly OwnershipState[]): void {
  for (const [pool, roots] of ownerRootsOf(states)) {
    if (roots.length !== 1)
      fail("Internal", `pool ${pool} has ${roots.length} owner roots among synced members`);
  }
}

/** The distinct DEK fingerprints held by synced members (all equal: one entry). */
export function dekFingerprintsOfSynced(states: readonly OwnershipState[]): string[] {
  const fingerprints = new Set<string>();
  for (const s of states) {
    if (s.phase === "synced" && s.material.dek) fingerprints.add(s.material.dek.fingerprint);
  }
  return [...fingerprints].sort();
}

export function assertOneDekAmongSynced(states: readonly OwnershipState[]): void {
  const fingerprints = dekFingerprintsOfSynced(states);
  if (fingerprints.length > 1) fail("Internal", `synced members hold ${fingerprints.length} different DEKs`);
}

/** A key operation a member served, with that member's ownership phase at the time. */
export interface ServedOperation {
  member: string;
  phase: OwnershipPhase;
  op: string;
}

/** No key operation was served by a member that did not hold the pool's ownership. */
export function assertNoOpWithoutOwnership(served: readonly ServedOperation[]): void {
  const bad = served.find((s) => s.phase !== "synced");
  if (bad) fail("Internal", `${bad.member} served ${bad.op} while in phase ${bad.phase} (no ownership)`);
}
