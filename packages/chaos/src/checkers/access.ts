/**
 * The `access` checker: during the faults the harness keeps making unauthorised attempts
 * (no token, an expired token, a foreign tenant's token, a principal without the role,
 * the HFC-issued certificate alone). Each must be refused with Unauthenticated or
 * Forbidden; any other answer means the request got past authorisation, and fails the
 * run. Transient answers (no primary, no quorum, timeouts) prove nothing either way and
 * are counted apart.
 */
import type { CheckerResult } from "./result.js";

export interface AccessAttempt {
  /** Which intruder: "no token", "expired token", ... */
  name: string;
  atMs: number;
  /** "OK" when it succeeded, else the error code. */
  result: string;
}

const REFUSED = new Set(["Unauthenticated", "Forbidden"]);
const INCONCLUSIVE = new Set([
  "NotLeader",
  "NoQuorum",
  "ServiceUnavailable",
  "OwnershipPending",
  "Timeout",
  "Internal",
]);

export function checkAccess(attempts: readonly AccessAttempt[]): CheckerResult {
  const accepted = attempts.filter((a) => !REFUSED.has(a.result) && !INCONCLUSIVE.has(a.result));
  const refused = attempts.filter((a) => REFUSED.has(a.result));
  const byName = (list: readonly AccessAttempt[]) => {
    const counts: Record<string, number> = {};
    for (const a of list) counts[a.name] = (counts[a.name] ?? 0) + 1;
    return counts;
  };
  const details = {
    attempts: attempts.length,
    refused: byName(refused),
    inconclusive: attempts.length - refused.length - accepted.length,
    accepted: accepted.slice(0, 20),
  };
  if (accepted.length > 0) {
    return {
      name: "access",
      valid: false,
      summary: `${accepted.length} unauthorised attempt(s) got past authorisation: ${[...new Set(accepted.map((a) => `${a.name} (${a.result})`))].join(", ")}`,
      details,
    };
  }
  if (refused.length === 0) {
    return { name: "access", valid: "unknown", summary: "no unauthorised attempt got an answer", details };
  }
  return {
    name: "access",
    valid: true,
    summary: `${refused.length} unauthorised attempts refused (${Object.keys(details.refused).join(", ")}), none accepted`,
    details,
  };
}
