/**
 * Healing records (pure helpers): open one, move it forward through its kind's
 * phases (a phase that was skipped gets the same timestamp, so the list always
 * reads in order), fail it, and keep the history bounded.
 */
import {
  type HealingKind,
  type HealingRecord,
  type HealingState,
  PHASES_OF,
  type ProgressPhase,
} from "./model.js";

export function isOpen(r: HealingRecord): boolean {
  return r.phase !== "ready" && r.phase !== "failed";
}

export function openRecord(
  state: HealingState,
  kind: HealingKind,
  memberId: string,
  atMs: number,
  reason: string,
): HealingRecord {
  const record: HealingRecord = {
    id: `h${state.nextHealingNumber}`,
    kind,
    memberId,
    replacementId: "",
    phase: "detected",
    phases: [{ phase: "detected", atMs }],
    reason,
  };
  state.nextHealingNumber += 1;
  state.healings.push(record);
  return record;
}

/** The open record of `kind` about `memberId`, if any. */
export function findOpen(
  state: HealingState,
  kind: HealingKind,
  memberId: string,
): HealingRecord | undefined {
  return state.healings.find((r) => r.kind === kind && r.memberId === memberId && isOpen(r));
}

/** The open record whose replacement is `joinerId`, if any. */
export function findOpenForJoiner(state: HealingState, joinerId: string): HealingRecord | undefined {
  return state.healings.find((r) => r.replacementId === joinerId && isOpen(r));
}

/** The latest record (open or not) of `kind` about `memberId`. */
export function findLatest(
  state: HealingState,
  kind: HealingKind,
  memberId: string,
): HealingRecord | undefined {
  return state.healings.findLast((r) => r.kind === kind && r.memberId === memberId);
}

/**
 * Moves `record` forward to `phase`, marking every phase of its kind in between at
 * `atMs`. Moving backwards, or moving a finished record, does nothing; returns
 * whether anything changed.
 */
export function advance(record: HealingRecord, phase: ProgressPhase, atMs: number): boolean {
  if (!isOpen(record)) return false;
  const order = PHASES_OF[record.kind];
  const target = order.indexOf(phase);
  const current = order.indexOf(record.phase as ProgressPhase);
  if (target < 0 || target <= current) return false;
  for (const p of order.slice(current + 1, target + 1)) record.phases.push({ phase: p, atMs });
  record.phase = phase;
  return true;
}

export function failRecord(record: HealingRecord, reason: string, atMs: number): void {
  if (!isOpen(record)) return;
  record.phases.push({ phase: "failed", atMs });
  record.phase = "failed";
  record.reason = reason;
}

/** Keeps every open record and the latest `limit` finished ones. */
export function trimHistory(state: HealingState, limit: number): void {
  const finished = state.healings.filter((r) => !isOpen(r));
  if (finished.length <= limit) return;
  const drop = new Set(finished.slice(0, finished.length - limit));
  state.healings = state.healings.filter((r) => !drop.has(r));
}
