/**
 * The nemesis role: fires the planned faults at their times, undoes each after its
 * healAfter, and at the end heals everything still active. How a fault is injected
 * is a `FaultInjector` per kind (process signals through the HFC today); this file
 * only keeps time and books, recording start / heal / error in the history.
 */
import type { Prng } from "@hsmpool/faults";
import type { HistoryRecorder } from "../history.js";
import type { FaultKind } from "../scenario/schema.js";
import type { StatusSample } from "../timeline.js";
import type { ConcreteFault, PlannedFault } from "./plan.js";

/** An injected fault: who it hit, and how to undo it. */
export interface Injected {
  targets: string[];
  detail: string;
  /** Undo; resolves to a sentence for the history. */
  heal(): Promise<string>;
}

export interface FaultInjector {
  inject(fault: ConcreteFault, status: StatusSample | undefined, prng: Prng): Promise<Injected>;
}

interface Active {
  id: number;
  kind: FaultKind;
  injected: Injected;
  healTimer?: NodeJS.Timeout;
}

export class NemesisRunner {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly active = new Map<number, Active>();
  private readonly inFlight = new Set<Promise<void>>();
  private nextId = 1;
  private stopped = false;

  constructor(
    private readonly plan: readonly PlannedFault[],
    private readonly injectors: Partial<Record<FaultKind, FaultInjector>>,
    private readonly history: HistoryRecorder,
    private readonly latestStatus: () => StatusSample | undefined,
    private readonly prng: Prng,
    private readonly onProgress: (line: string) => void,
  ) {}

  /** Schedules every planned fault relative to now. */
  start(): void {
    for (const p of this.plan) {
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.track(this.fire(p));
      }, p.atMs);
      this.timers.add(t);
    }
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async fire(p: PlannedFault): Promise<void> {
    if (this.stopped) return;
    const id = this.nextId++;
    const injector = this.injectors[p.fault.kind];
    const rng = this.prng.split(`fault-${id}`);
    if (!injector) {
      this.history.nemesis({
        type: "error",
        f: p.fault.kind,
        faultId: id,
        targets: [],
        detail: `no injector for ${p.fault.kind}`,
      });
      return;
    }
    try {
      const injected = await injector.inject(p.fault, this.latestStatus(), rng);
      this.history.nemesis({
        type: "start",
        f: p.fault.kind,
        faultId: id,
        targets: injected.targets,
        detail: injected.detail,
      });
      this.onProgress(`  fault #${id}: ${injected.detail}`);
      const a: Active = { id, kind: p.fault.kind, injected };
      this.active.set(id, a);
      if (p.healAfterMs !== undefined) {
        a.healTimer = setTimeout(() => this.track(this.heal(a)), p.healAfterMs);
      }
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      this.history.nemesis({ type: "error", f: p.fault.kind, faultId: id, targets: [], detail: why });
      this.onProgress(`  fault #${id} (${p.fault.kind}) not injected: ${why}`);
    }
  }

  private async heal(a: Active): Promise<void> {
    if (!this.active.delete(a.id)) return;
    clearTimeout(a.healTimer);
    let detail: string;
    try {
      detail = await a.injected.heal();
    } catch (e) {
      detail = `heal failed: ${e instanceof Error ? e.message : String(e)}`;
    }
    this.history.nemesis({ type: "heal", f: a.kind, faultId: a.id, targets: a.injected.targets, detail });
    this.onProgress(`  heal #${a.id}: ${detail}`);
  }

  /** No new faults; waits for injections under way; undoes every active fault (newest first). */
  async healEverything(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
    for (const a of [...this.active.values()].reverse()) await this.heal(a);
    await Promise.allSettled([...this.inFlight]);
  }

  get activeCount(): number {
    return this.active.size;
  }
}
