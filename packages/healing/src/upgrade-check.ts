/**
 * Whether a rolling upgrade may start (pure). The pool would refuse a bad bundle
 * anyway (platform launch check, attested handshake, SVN policy); the HFC checks
 * first so an operator's mistake is a clear error instead of a failed joiner.
 */
import { HsmPoolError } from "@hsmpool/errors";
import type { HealingState } from "./model.js";
import { isOpen } from "./records.js";

/** What the HFC learnt from the bundle's SIGSTRUCT (platform `inspectBundle`). */
export interface BundleFacts {
  bundleDir: string;
  /** null when the bundle carries no readable SIGSTRUCT. */
  svn: number | null;
  mrsigner: string | null;
  debug: boolean;
  signatureValid: boolean;
  measurementMatches: boolean;
  /** Why the SIGSTRUCT could not be read, when it could not. */
  problem: string | null;
}

const LIVE = new Set(["active", "joining"]);

/** The lowest security version among the live members (attested when seen): what joiners must accept. */
export function poolMinimumSvn(state: HealingState): number {
  const svns = state.members.filter((m) => LIVE.has(m.lifecycle)).map((m) => m.svn);
  return svns.length > 0 ? Math.min(...svns) : 0;
}

/**
 * Null when the upgrade may start, else the error to report. With `unchecked` only
 * the pool's own state is checked: the bundle is launched as it is, which is how
 * tests show that the pool, not the HFC, is what refuses a bad bundle.
 */
export function checkUpgrade(
  state: HealingState,
  bundle: BundleFacts,
  unchecked: boolean,
): HsmPoolError | null {
  if (state.upgrade?.state === "running") {
    return new HsmPoolError("Conflict", `an upgrade to ${state.upgrade.bundleDir} is already running`);
  }
  const busy = state.healings.find((r) => isOpen(r) && r.kind !== "restart");
  if (busy || state.members.some((m) => m.lifecycle === "joining")) {
    return new HsmPoolError(
      "Conflict",
      `the pool is healing (${busy ? `${busy.id}: ${busy.kind} of ${busy.memberId}` : "a member is joining"}); ` +
        "upgrade once `hsmpool status` shows it healthy",
    );
  }
  if (unchecked) return null;
  if (bundle.svn === null || bundle.mrsigner === null) {
    return new HsmPoolError(
      "LaunchRefused",
      `${bundle.bundleDir} is not a signed bundle (${bundle.problem ?? "no SIGSTRUCT"}); sign it with \`hsmpool bundle sign\``,
    );
  }
  if (!bundle.signatureValid || !bundle.measurementMatches) {
    return new HsmPoolError(
      "LaunchRefused",
      `${bundle.bundleDir} would not launch: ${bundle.signatureValid ? "its files changed after signing (measurement mismatch)" : "its SIGSTRUCT signature does not verify"}`,
    );
  }
  if (bundle.debug) {
    return new HsmPoolError(
      "Forbidden",
      `${bundle.bundleDir} is a debug enclave; pool members refuse debug peers`,
    );
  }
  const signers = new Set(
    state.members.filter((m) => m.lifecycle === "active" && m.mrsigner !== "").map((m) => m.mrsigner),
  );
  if (signers.size > 0 && !signers.has(bundle.mrsigner)) {
    return new HsmPoolError(
      "Forbidden",
      `${bundle.bundleDir} is signed by another key (MRSIGNER ${bundle.mrsigner.slice(0, 16)}…, the pool runs ` +
        `${[...signers].map((s) => `${s.slice(0, 16)}…`).join(", ")}); pool members would refuse it at the attested handshake`,
    );
  }
  const minimum = poolMinimumSvn(state);
  if (bundle.svn < minimum) {
    return new HsmPoolError(
      "Forbidden",
      `downgrade refused: ${bundle.bundleDir} has security version ${bundle.svn}, below the pool's minimum ${minimum}`,
      { svn: bundle.svn, poolMinimumSvn: minimum },
    );
  }
  return null;
}
