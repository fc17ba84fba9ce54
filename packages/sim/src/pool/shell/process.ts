/**
 * One simulated node process and its clock. Everything that reaches the process —
 * timer callbacks, I/O completions, HSM answers, messages — goes through deliver():
 * it runs at once while the process is up, waits while it is paused (SIGSTOP), and
 * is dropped once it crashed. Timers live in the world's event queue, so the order of
 * every callback is a function of the run's seed.
 */
import type { Clock, TimerId } from "@hsmpool/node";

/** What the shell seams need from the simulated world. */
export interface ShellWorld {
  nowUs(): number;
  /** The simulated wall clock, in ms since the epoch. */
  wallMs(): number;
  /**
   * Run `fn` at `atUs` as a traced event of `kind` on `member`. When `dropped()` says so by
   * then (a cleared timer, a dead process's), the event is skipped unseen: no trace, no turn.
   */
  at(atUs: number, kind: ShellEventKind, member: string, fn: () => void, dropped?: () => boolean): void;
}

export type ShellEventKind = "timer" | "io" | "hsm" | "net";

export type ProcessState = "up" | "paused" | "down";

export class SimProcess {
  state: ProcessState = "up";
  private held: (() => void)[] = [];
  private readonly heldKeys = new Set<unknown>();
  /** Who hears of this process's death (its supervisor's exit watch). */
  private readonly exitWatchers: (() => void)[] = [];

  constructor(
    readonly memberId: string,
    readonly incarnation: number,
  ) {}

  get alive(): boolean {
    return this.state !== "down";
  }

  /** Run `fn` in the process now, after it resumes, or never (crashed). */
  deliver(fn: () => void): void {
    if (this.state === "down") return;
    if (this.state === "paused") this.held.push(fn);
    else fn();
  }

  /** As deliver, but while paused at most one pending run per `key` (an overdue interval fires once). */
  deliverOnce(key: unknown, fn: () => void): void {
    if (this.state !== "paused") {
      this.deliver(fn);
      return;
    }
    if (this.heldKeys.has(key)) return;
    this.heldKeys.add(key);
    this.held.push(() => {
      this.heldKeys.delete(key);
      fn();
    });
  }

  pause(): boolean {
    if (this.state !== "up") return false;
    this.state = "paused";
    return true;
  }

  resume(): void {
    if (this.state !== "paused") return;
    this.state = "up";
    const held = this.held;
    this.held = [];
    for (const fn of held) this.deliver(fn);
  }

  kill(): void {
    if (this.state === "down") return;
    this.state = "down";
    this.held = [];
    this.heldKeys.clear();
    for (const watch of this.exitWatchers.splice(0)) watch();
  }

  /** Calls `fn` once this process dies (at once if it has). */
  onExit(fn: () => void): void {
    if (this.state === "down") fn();
    else this.exitWatchers.push(fn);
  }
}

/** The process's Clock seam: virtual time, with a small per-process rate drift. */
export class SimClock implements Clock {
  private next = 0;

  constructor(
    private readonly world: ShellWorld,
    private readonly proc: SimProcess,
    /** Timer durations are stretched by this factor (e.g. 0.99..1.01). */
    private readonly drift: number,
  ) {}

  now(): number {
    return this.world.wallMs();
  }

  private dueUs(ms: number): number {
    return this.world.nowUs() + Math.max(1, Math.round(ms * 1000 * this.drift));
  }

  /** A timer's queued firing is dropped once the timer is cleared (or spent) or its process died. */
  private timer(): { timer: number; off: boolean; dropped: () => boolean } {
    const proc = this.proc;
    const t = { timer: this.next++, off: false, dropped: () => t.off || !proc.alive };
    return t;
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    const t = this.timer();
    this.world.at(
      this.dueUs(ms),
      "timer",
      this.proc.memberId,
      () => {
        t.off = true;
        this.proc.deliver(fn);
      },
      t.dropped,
    );
    return t;
  }

  setInterval(fn: () => void, ms: number): TimerId {
    const t = this.timer();
    const fire = () => {
      this.world.at(this.dueUs(ms), "timer", this.proc.memberId, fire, t.dropped);
      this.proc.deliverOnce(t, fn);
    };
    this.world.at(this.dueUs(ms), "timer", this.proc.memberId, fire, t.dropped);
    return t;
  }

  /** The next simulated microsecond: other deliveries due now run first, as I/O does before setImmediate. */
  afterTurn(fn: () => void): void {
    this.setTimeout(fn, 0);
  }

  clear(timer: TimerId | null | undefined): void {
    if (timer && "off" in timer) (timer as { off: boolean }).off = true;
  }
}
