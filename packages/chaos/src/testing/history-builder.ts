/**
 * Hand-built histories for checker tests: invoke/complete by process, times
 * advancing by 100 ms per event unless given, nemesis events by fault id.
 */
import { type ClientEvent, type HistoryEvent, HistoryRecorder, type OpValue } from "../history.js";
import type { FaultKind, OpName } from "../scenario/schema.js";

export class HistoryBuilder {
  private clockMs = 0;
  private readonly recorder = new HistoryRecorder(() => this.clockMs);
  private readonly open = new Map<number, ClientEvent>();

  get events(): HistoryEvent[] {
    return this.recorder.events;
  }

  /** Sets the time of the next event (default: +100 ms per event). */
  at(ms: number): this {
    this.clockMs = ms;
    this.explicit = true;
    return this;
  }

  private explicit = false;

  private tick(): void {
    if (!this.explicit) this.clockMs += 100;
    this.explicit = false;
  }

  invoke(process: number, f: OpName, key?: string, value?: OpValue): this {
    this.tick();
    const e = this.recorder.client({
      process,
      type: "invoke",
      f,
      ...(key !== undefined ? { key } : {}),
      ...(value ? { value } : {}),
    });
    this.open.set(process, e);
    return this;
  }

  private complete(process: number, type: "ok" | "fail" | "unknown", extra: Partial<ClientEvent>): this {
    this.tick();
    const inv = this.open.get(process);
    if (!inv) throw new Error(`process ${process} has nothing to complete`);
    this.open.delete(process);
    this.recorder.client({
      process,
      type,
      f: inv.f,
      ...(inv.key !== undefined ? { key: inv.key } : {}),
      latencyMs: this.clockMs - inv.timeMs,
      ...extra,
    });
    return this;
  }

  ok(process: number, value: OpValue = {}, extra: Partial<ClientEvent> = {}): this {
    return this.complete(process, "ok", { value, ...extra });
  }

  fail(process: number, code: string, extra: Partial<ClientEvent> = {}): this {
    return this.complete(process, "fail", { error: { code, message: code }, ...extra });
  }

  unknown(process: number, code = "Timeout"): this {
    return this.complete(process, "unknown", { error: { code, message: code } });
  }

  notFound(process: number, extra: Partial<ClientEvent> = {}): this {
    return this.fail(process, "KeyNotFound", extra);
  }

  fault(type: "start" | "heal" | "error", f: FaultKind, faultId: number, targets: string[] = ["n1"]): this {
    this.tick();
    this.recorder.nemesis({ type, f, faultId, targets, detail: `${f} ${targets.join(",")}` });
    return this;
  }
}
