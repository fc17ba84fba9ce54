/**
 * The HFC's healing loop. Every observation becomes a HealingInput on one queue,
 * processed one at a time: step the pure healing controller, persist its state
 * (so a fence or a joiner is on disk before anything acts on it), then perform the
 * actions through the supervisor. Follow-up observations (a process launched, a
 * fence confirmed) come back on the queue.
 */

import type { HealingAction, HealingInput, HealingState } from "@hsmpool/healing";
import { healingStep } from "@hsmpool/healing";
import type { ControllerContext } from "./controller-context.js";
import { poolSpecOf } from "./controller-context.js";
import type { HealingStore } from "./healing-store.js";

interface QueuedInput {
  input: HealingInput;
  done: () => void;
}

export class HealingLoop {
  private readonly inbox: QueuedInput[] = [];
  private draining = false;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly store: HealingStore,
    private readonly perform: (action: HealingAction) => Promise<void>,
    /** Called after a step that acted or changed the members (logs pool status changes). */
    private readonly afterChange: () => void,
  ) {}

  /** Queues an observation for the healing controller; resolves once it has been processed. */
  enqueue(input: HealingInput): Promise<void> {
    return new Promise((done) => {
      this.inbox.push({ input, done });
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let item = this.inbox.shift(); item; item = this.inbox.shift()) {
        try {
          if (!this.ctx.stopping) await this.process(item.input);
        } catch (e) {
          this.ctx.log.error(
            { err: e instanceof Error ? e.stack : String(e), input: item.input.type },
            "healing step failed",
          );
        } finally {
          item.done();
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async process(input: HealingInput): Promise<void> {
    const { ctx } = this;
    const before = ctx.healing;
    const { state, actions } = healingStep(ctx.healingConfig, before, input);
    this.logHealingChanges(before, state);
    // Persist first: a fence or a joiner is on disk before anything acts on it, and status never shows a state
    // that pool.json does not hold yet (a reader of the run dir after "ready" must find the member active).
    await this.store.save(poolSpecOf(ctx), state, ctx.controlPort);
    ctx.healing = state;
    for (const action of actions) await this.perform(action);
    if (actions.length > 0 || before.members !== state.members) this.afterChange();
  }

  private logHealingChanges(before: HealingState, after: HealingState): void {
    const old = new Map(before.healings.map((r) => [r.id, r.phases.length]));
    for (const r of after.healings) {
      const seen = old.get(r.id) ?? 0;
      for (const [i, mark] of r.phases.entries()) {
        if (i < seen) continue;
        this.ctx.metrics.healingPhase(r, mark, r.phases[i - 1]);
        const level = mark.phase === "failed" ? "warn" : "info";
        this.ctx.log[level](
          {
            healing: r.id,
            kind: r.kind,
            nodeId: r.memberId,
            replacement: r.replacementId || undefined,
            phase: mark.phase,
            reason: r.reason || undefined,
          },
          "healing phase",
        );
      }
    }
  }
}
