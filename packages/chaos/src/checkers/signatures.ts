/**
 * Signatures: a verify of a signature the pool made with version v of a key, asking
 * for exactly version v, must say valid unless the key may have been deleted (and
 * recreated) between the sign's call and the verify's return. Pure.
 */
import { type HistoryEvent, pairOperations } from "../history.js";
import { DEFINITE_WRITE_FAILURES } from "./linearizability.js";
import type { CheckerResult } from "./result.js";

export interface BadVerify {
  key: string;
  verifyIndex: number;
  signIndex: number;
  signedVersion: number;
}

export function checkSignatures(events: readonly HistoryEvent[]): CheckerResult {
  const ops = pairOperations(events);
  const bad: BadVerify[] = [];
  let checked = 0;
  for (const o of ops) {
    const c = o.complete;
    if (o.invoke.f !== "verify" || c?.type !== "ok" || c.value?.valid === undefined) continue;
    checked++;
    if (c.value.valid) continue;
    const signIndex = o.invoke.value?.signIndex ?? -1;
    const deletedBetween = ops.some(
      (d) =>
        d.invoke.f === "delete" &&
        d.invoke.key === o.invoke.key &&
        d.invoke.index < c.index &&
        (d.complete === undefined || d.complete.index > signIndex) &&
        !(d.complete?.type === "fail" && DEFINITE_WRITE_FAILURES.has(d.complete.error?.code ?? "")),
    );
    if (!deletedBetween) {
      bad.push({
        key: o.invoke.key ?? "",
        verifyIndex: c.index,
        signIndex,
        signedVersion: o.invoke.value?.signedVersion ?? 0,
      });
    }
  }
  return {
    name: "signatures",
    valid: bad.length === 0,
    summary:
      bad.length === 0
        ? `${checked} verifies of the pool's own signatures agreed with them`
        : `${bad.length} signatures the pool made did not verify (first: ${bad[0]?.key} version ${bad[0]?.signedVersion}, history #${bad[0]?.verifyIndex})`,
    details: { checked, bad },
  };
}
