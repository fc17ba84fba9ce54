/**
 * Durability: every acknowledged create and delete is reflected in the final reads
 * the harness makes after healing everything. Per key, with `call`/`return` the
 * history indexes (an unknown write returns at +infinity, it may land any time):
 * - an acknowledged create C that no delete can follow (every delete returned before
 *   C was called) means the key must exist at the end with a version >= C's;
 * - an acknowledged delete D that no create can follow means the key must be absent.
 * Pure. Linearizability checks the same reads more strictly; this checker names the
 * lost write in words.
 */
import { type ClientEvent, type HistoryEvent, type Operation, pairOperations } from "../history.js";
import { DEFINITE_WRITE_FAILURES } from "./linearizability.js";
import type { CheckerResult } from "./result.js";

export interface LostWrite {
  key: string;
  op: "create" | "delete";
  /** History index of the acknowledgement. */
  index: number;
  timeMs: number;
  /** What the final read saw. */
  finalSeen: string;
  why: string;
}

const returnOf = (o: Operation): number => {
  const c = o.complete;
  if (!c || c.type === "unknown") return Number.POSITIVE_INFINITY;
  if (c.type === "fail" && !DEFINITE_WRITE_FAILURES.has(c.error?.code ?? "")) return Number.POSITIVE_INFINITY;
  return c.index;
};

/** A write that may have taken effect: acknowledged, or its outcome unknown. */
const mayHaveApplied = (o: Operation): boolean => {
  const c = o.complete;
  if (!c || c.type === "ok" || c.type === "unknown") return true;
  return c.type === "fail" && !DEFINITE_WRITE_FAILURES.has(c.error?.code ?? "");
};

function finalObservation(final: ClientEvent | undefined): { seen: "absent" | number | "unread" } {
  if (!final) return { seen: "unread" };
  if (final.type === "ok" && typeof final.value?.version === "number") return { seen: final.value.version };
  if (final.type === "fail" && final.error?.code === "KeyNotFound") return { seen: "absent" };
  return { seen: "unread" };
}

export function checkDurability(events: readonly HistoryEvent[], keys: readonly string[]): CheckerResult {
  const ops = pairOperations(events);
  const finals = new Map<string, ClientEvent>();
  for (const o of ops) {
    if (o.invoke.final && o.invoke.f === "get" && o.invoke.key && o.complete)
      finals.set(o.invoke.key, o.complete);
  }
  const lost: LostWrite[] = [];
  const unread: string[] = [];
  let acknowledged = 0;
  for (const key of keys) {
    const writes = ops.filter(
      (o) => !o.invoke.final && o.invoke.key === key && (o.invoke.f === "create" || o.invoke.f === "delete"),
    );
    const acked = writes.filter((o) => o.complete?.type === "ok");
    acknowledged += acked.length;
    if (acked.length === 0) continue;
    const { seen } = finalObservation(finals.get(key));
    if (seen === "unread") {
      unread.push(key);
      continue;
    }
    const deletes = writes.filter((o) => o.invoke.f === "delete" && mayHaveApplied(o));
    const creates = writes.filter((o) => o.invoke.f === "create" && mayHaveApplied(o));
    for (const c of acked) {
      const done = c.complete as ClientEvent;
      if (c.invoke.f === "create") {
        const deletable = deletes.some((d) => returnOf(d) > c.invoke.index);
        if (deletable) continue;
        const version = done.value?.version ?? 0;
        if (seen === "absent" || seen < version) {
          lost.push({
            key,
            op: "create",
            index: done.index,
            timeMs: done.timeMs,
            finalSeen: seen === "absent" ? "absent" : `version ${seen}`,
            why: `create of ${key} acknowledged version ${version} and no delete could follow it, but the final read saw ${seen === "absent" ? "no key" : `version ${seen}`}`,
          });
        }
      } else {
        const recreatable = creates.some((x) => returnOf(x) > c.invoke.index);
        if (recreatable || seen === "absent") continue;
        lost.push({
          key,
          op: "delete",
          index: done.index,
          timeMs: done.timeMs,
          finalSeen: `version ${seen}`,
          why: `delete of ${key} was acknowledged and no create could follow it, but the final read saw version ${seen}`,
        });
      }
    }
  }
  const valid = lost.length > 0 ? false : unread.length > 0 ? "unknown" : true;
  const summary =
    valid === true
      ? `${acknowledged} acknowledged writes, all reflected in the final reads`
      : valid === false
        ? `${lost.length} acknowledged writes lost: ${lost[0]?.why}`
        : `final reads failed for ${unread.length} keys (${unread.join(", ")}): cannot tell`;
  return { name: "durability", valid, summary, details: { acknowledged, lost, unreadKeys: unread } };
}
