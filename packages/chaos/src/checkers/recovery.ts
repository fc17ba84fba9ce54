/**
 * Recovery after a region loss: the pool is rebuilt from its security domain and the
 * latest successful full backup, so what the backup holds comes back and nothing else
 * does. With B the history index where that backup started and E where it ended:
 * - an acknowledged present-making write that returned before B, and that no delete or
 *   purge invoked before E can follow, must be restored (version >= the acknowledged one),
 *   and the key must sign; an acknowledged delete/purge likewise keeps the key absent;
 * - a signature the pool made before B with a version that must be restored must verify;
 * - a restored key or version no write invoked before E can explain is a phantom;
 * - writes acknowledged after B that the restore does not reflect are the expected loss of
 *   a region failure: listed, never a failure — and never silent.
 * Pure: over the history (final reads, signs and verifies made after the recovery carry
 * `final`) and the backups the harness ran.
 */
import { type ClientEvent, type HistoryEvent, type Operation, pairOperations } from "../history.js";
import type { OpName } from "../scenario/schema.js";
import {
  finalObservation,
  keyWrites,
  MAKES_ABSENT,
  MAKES_PRESENT,
  mayHaveApplied,
  returnOf,
} from "./durability.js";
import type { CheckerResult } from "./result.js";

/** A full backup the harness ran during the workload (history indexes: events before/after it). */
export interface FullBackupRecord {
  jobId: string;
  status: string;
  folder: string;
  /** history.length when the backup was started: every event with a smaller index came before it. */
  fromIndex: number;
  /** history.length when the job was seen ended. */
  toIndex: number;
  error?: string;
}

export interface RecoveryInput {
  events: readonly HistoryEvent[];
  keys: readonly string[];
  /** The backup the recovery restored (the latest successful one before the loss); undefined: none succeeded. */
  restored: FullBackupRecord | undefined;
  /** The restore job's end: "Succeeded", or what went wrong (the pool refused or broke its own backup). */
  restoreOutcome: { status: string; error?: string } | undefined;
}

export interface RecoveryFinding {
  key: string;
  op: OpName;
  /** History index of the acknowledgement (or of the final observation for phantoms). */
  index: number;
  why: string;
}

const VERSION_MAKING: ReadonlySet<string> = new Set(["create", "rotate"]);

function finalsOf(ops: readonly Operation[], f: OpName): Map<string, ClientEvent> {
  const out = new Map<string, ClientEvent>();
  for (const o of ops)
    if (o.invoke.final && o.invoke.f === f && o.invoke.key && o.complete) out.set(o.invoke.key, o.complete);
  return out;
}

export function checkRecovery(input: RecoveryInput): CheckerResult {
  const name = "recovery";
  const { restored } = input;
  if (!restored)
    return {
      name,
      valid: "unknown",
      summary: "no full backup succeeded before the region loss: nothing could be restored",
      details: { restored: null },
    };
  if (input.restoreOutcome?.status !== "Succeeded")
    return {
      name,
      valid: false,
      summary: `the restore of ${restored.folder} did not succeed: ${input.restoreOutcome?.error ?? input.restoreOutcome?.status ?? "never ran"}`,
      details: { restored, restoreOutcome: input.restoreOutcome ?? null },
    };
  const B = restored.fromIndex;
  const E = restored.toIndex;
  const ops = pairOperations(input.events);
  const gets = finalsOf(ops, "get");
  const signs = finalsOf(ops, "sign");
  const lost: RecoveryFinding[] = [];
  const phantoms: RecoveryFinding[] = [];
  const expectedLoss: RecoveryFinding[] = [];
  const unread: string[] = [];
  let mustRestore = 0;

  for (const key of input.keys) {
    const writes = keyWrites(ops, key);
    const acked = writes.filter((o) => o.complete?.type === "ok");
    const final = gets.get(key);
    const { seen } = finalObservation(final);
    if (seen === "unread") {
      if (acked.length > 0) unread.push(key);
      continue;
    }
    // What may have reached the backup's snapshot: writes invoked before it ended.
    const beforeEnd = writes.filter((o) => o.invoke.index < E && mayHaveApplied(o));
    const deletes = beforeEnd.filter((o) => MAKES_ABSENT.has(o.invoke.f));
    const creates = beforeEnd.filter((o) => MAKES_PRESENT.has(o.invoke.f));
    let mustBePresent = false;
    for (const w of acked) {
      const done = w.complete as ClientEvent;
      const f = w.invoke.f;
      const version = done.value?.version ?? 0;
      if (done.index >= B) {
        const reflected = MAKES_PRESENT.has(f) ? seen !== "absent" && seen >= version : seen === "absent";
        if (!reflected)
          expectedLoss.push({
            key,
            op: f,
            index: done.index,
            why: `${f} of ${key}${MAKES_PRESENT.has(f) ? ` (version ${version})` : ""} was acknowledged after the last successful backup started`,
          });
        continue;
      }
      if (MAKES_PRESENT.has(f)) {
        if (deletes.some((d) => returnOf(d) > w.invoke.index)) continue;
        mustRestore++;
        mustBePresent = true;
        if (seen === "absent" || seen < version)
          lost.push({
            key,
            op: f,
            index: done.index,
            why: `${f} of ${key} acknowledged version ${version} before the last successful backup, but after the recovery ${seen === "absent" ? "the key is missing" : `it is at version ${seen}`}`,
          });
      } else {
        if (creates.some((x) => returnOf(x) > w.invoke.index)) continue;
        mustRestore++;
        if (seen !== "absent")
          lost.push({
            key,
            op: f,
            index: done.index,
            why: `${f} of ${key} was acknowledged before the last successful backup, but after the recovery the key is back at version ${seen}`,
          });
      }
    }
    if (seen !== "absent") {
      const bound = beforeEnd.filter((o) => VERSION_MAKING.has(o.invoke.f)).length;
      if (creates.length === 0 || seen > bound)
        phantoms.push({
          key,
          op: "get",
          index: final?.index ?? -1,
          why: `${key} is at version ${seen} after the recovery, but the writes invoked before the backup ended can make at most version ${bound}`,
        });
      const sign = signs.get(key);
      if (mustBePresent && sign?.type !== "ok")
        lost.push({
          key,
          op: "sign",
          index: sign?.index ?? -1,
          why: `${key} was restored but does not sign (${sign?.error?.code ?? "no sign was made"})`,
        });
    }
  }

  // Signatures made before the backup with a version that must be restored verify after it.
  let signaturesChecked = 0;
  const byCompletion = new Map(ops.filter((o) => o.complete).map((o) => [o.complete?.index, o]));
  for (const o of ops) {
    if (!o.invoke.final || o.invoke.f !== "verify") continue;
    const signIndex = o.invoke.value?.signIndex ?? Number.POSITIVE_INFINITY;
    const sign = byCompletion.get(signIndex);
    if (!sign || signIndex >= B) continue;
    const deletable = ops.some(
      (d) =>
        !d.invoke.final &&
        d.invoke.key === o.invoke.key &&
        MAKES_ABSENT.has(d.invoke.f) &&
        d.invoke.index < E &&
        mayHaveApplied(d) &&
        returnOf(d) > sign.invoke.index,
    );
    if (deletable) continue;
    signaturesChecked++;
    if (o.complete?.type === "ok" && o.complete.value?.valid === true) continue;
    if (o.complete?.type !== "ok" && o.complete?.error?.code !== "KeyNotFound") {
      unread.push(o.invoke.key ?? "");
      continue;
    }
    lost.push({
      key: o.invoke.key ?? "",
      op: "verify",
      index: o.complete?.index ?? -1,
      why: `a signature made with ${o.invoke.key} version ${o.invoke.value?.signedVersion} before the last successful backup does not verify after the recovery (${o.complete?.error?.code ?? "invalid"})`,
    });
  }

  const failures = [...lost, ...phantoms];
  const valid = failures.length > 0 ? false : unread.length > 0 ? "unknown" : true;
  const summary =
    valid === false
      ? `${lost.length} lost silently, ${phantoms.length} phantoms: ${failures[0]?.why}`
      : valid === "unknown"
        ? `final reads after the recovery failed for ${unread.join(", ")}: cannot tell`
        : `${mustRestore} writes acknowledged before backup ${restored.folder} restored, ${signaturesChecked} old signatures verify; expected loss: ${expectedLoss.length} writes acknowledged after it`;
  return {
    name,
    valid,
    summary,
    details: { restored, mustRestore, signaturesChecked, lost, phantoms, expectedLoss, unreadKeys: unread },
  };
}
