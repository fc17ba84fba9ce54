/**
 * Durability: every acknowledged write that makes a key present (create, rotate,
 * recover, restore) or absent (delete, purge) is reflected in the final reads the
 * harness makes after healing everything. Per key, with `call`/`return` the history
 * indexes (an unknown write returns at +infinity, it may land any time):
 * - an acknowledged present-making write C that no delete or purge can follow (every one
 *   returned before C was called) means the key must exist at the end with a version >= C's;
 * - an acknowledged delete or purge D that no present-making write can follow means the
 *   key must be absent.
 * Pure. Linearizability checks the same reads more strictly; this checker names the
 * lost write in words.
 */
import { type ClientEvent, type HistoryEvent, type Operation, pairOperations } from "../history.js";
import type { OpName } from "../scenario/schema.js";
import { DEFINITE_WRITE_FAILURES } from "./linearizability.js";
import type { CheckerResult } from "./result.js";

/** Writes after which the key is present (with at least the acknowledged version), and after which it is absent. */
export const MAKES_PRESENT: ReadonlySet<string> = new Set(["create", "rotate", "recover", "restore"]);
export const MAKES_ABSENT: ReadonlySet<string> = new Set(["delete", "purge"]);

export interface LostWrite {
  key: string;
  op: OpName;
  /** History index of the acknowledgement. */
  index: number;
  timeMs: number;
  /** What the final read saw. */
  finalSeen: string;
  why: string;
}

/** Where a write's effect is known to have landed by (history index); +infinity when it may land any time. */
export const returnOf = (o: Operation): number => {
  const c = o.complete;
  if (!c || c.type === "unknown") return Number.POSITIVE_INFINITY;
  if (c.type === "fail" && !DEFINITE_WRITE_FAILURES.has(c.error?.code ?? "")) return Number.POSITIVE_INFINITY;
  return c.index;
};

/** A write that may have taken effect: acknowledged, or its outcome unknown. */
export const mayHaveApplied = (o: Operation): boolean => {
  const c = o.complete;
  if (!c || c.type === "ok" || c.type === "unknown") return true;
  return c.type === "fail" && !DEFINITE_WRITE_FAILURES.has(c.error?.code ?? "");
};

/** The workload's (not final) writes of `key` that make it present or absent. */
export function keyWrites(ops: readonly Operation[], key: string): Operation[] {
  return ops.filter(
    (o) =>
      !o.invoke.final &&
      o.invoke.key === key &&
      (MAKES_PRESENT.has(o.invoke.f) || MAKES_ABSENT.has(o.invoke.f)),
  );
}

export function finalObservation(final: ClientEvent | undefined): { seen: "absent" | number | "unread" } {
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
    const writes = keyWrites(ops, key);
    const acked = writes.filter((o) => o.complete?.type === "ok");
    acknowledged += acked.length;
    if (acked.length === 0) continue;
    const { seen } = finalObservation(finals.get(key));
    if (seen === "unread") {
      unread.push(key);
      continue;
    }
    const deletes = writes.filter((o) => MAKES_ABSENT.has(o.invoke.f) && mayHaveApplied(o));
    const creates = writes.filter((o) => MAKES_PRESENT.has(o.invoke.f) && mayHaveApplied(o));
    for (const c of acked) {
      const done = c.complete as ClientEvent;
      const f = c.invoke.f;
      if (MAKES_PRESENT.has(f)) {
        const deletable = deletes.some((d) => returnOf(d) > c.invoke.index);
        if (deletable) continue;
        const version = done.value?.version ?? 0;
        if (seen === "absent" || seen < version) {
          lost.push({
            key,
            op: f,
            index: done.index,
            timeMs: done.timeMs,
            finalSeen: seen === "absent" ? "absent" : `version ${seen}`,
            why: `${f} of ${key} acknowledged version ${version} and no delete or purge could follow it, but the final read saw ${seen === "absent" ? "no key" : `version ${seen}`}`,
          });
        }
      } else {
        const recreatable = creates.some((x) => returnOf(x) > c.invoke.index);
        if (recreatable || seen === "absent") continue;
        lost.push({
          key,
          op: f,
          index: done.index,
          timeMs: done.timeMs,
          finalSeen: `version ${seen}`,
          why: `${f} of ${key} was acknowledged and no create, recover or restore could follow it, but the final read saw version ${seen}`,
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
