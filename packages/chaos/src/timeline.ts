/**
 * What the harness saw of the pool over time (timeline.jsonl): the HFC's pool status
 * sampled every few hundred milliseconds, and the faults the nemesis injected, paired
 * from the history. Pure.
 */
import { type HistoryEvent, isNemesisEvent } from "./history.js";
import type { FaultKind } from "./scenario/schema.js";

export interface MemberSample {
  id: string;
  server: string;
  rack: string;
  role: string;
  health: string;
  ownership: string;
}

export interface StatusSample {
  timeMs: number;
  /** healthy | degraded | unavailable from the HFC, or "unreachable" when the HFC did not answer. */
  state: string;
  primary: string;
  term: number;
  members: MemberSample[];
}

/** Three members, all up and synced, and a primary: what "healed" means. */
export function isFullyHealthy(s: StatusSample): boolean {
  return (
    s.state === "healthy" &&
    s.primary !== "" &&
    s.members.filter((m) => m.health === "up" && m.ownership === "synced").length >= 3
  );
}

export interface Fault {
  id: number;
  kind: FaultKind;
  targets: string[];
  detail: string;
  startMs: number;
  /** When the harness undid it (absent: never, or it failed to inject). */
  healMs?: number;
  /** The nemesis could not inject it (it did not happen). */
  error?: string;
}

/** Faults from the nemesis events of a history, in start order. */
export function faultsOf(events: readonly HistoryEvent[]): Fault[] {
  const byId = new Map<number, Fault>();
  for (const e of events) {
    if (!isNemesisEvent(e)) continue;
    let f = byId.get(e.faultId);
    if (!f) {
      f = { id: e.faultId, kind: e.f, targets: e.targets, detail: e.detail, startMs: e.timeMs };
      byId.set(e.faultId, f);
    }
    if (e.type === "heal") f.healMs = e.timeMs;
    if (e.type === "error") f.error = e.detail;
  }
  return [...byId.values()].sort((a, b) => a.startMs - b.startMs);
}
