/**
 * Samples the pool's status from the HFC every `intervalMs` into the timeline (the
 * primary, membership and health over time, which the healing checker and the
 * report use). An HFC that does not answer is a sample too ("unreachable").
 */
import type { PoolStatus } from "@hsmpool/wire";
import type { StatusSample } from "./timeline.js";

export interface StatusSource {
  status(deadlineMs?: number): Promise<PoolStatus>;
}

export function toSample(timeMs: number, s: PoolStatus): StatusSample {
  return {
    timeMs,
    state: s.state,
    primary: s.primary,
    term: Number(s.term),
    members: s.members.map((m) => ({
      id: m.id,
      server: m.server,
      rack: m.rack,
      role: m.role,
      health: m.health,
      ownership: m.ownership,
    })),
  };
}

export class StatusSampler {
  readonly samples: StatusSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly source: StatusSource,
    private readonly nowMs: () => number,
    private readonly intervalMs: number,
    private readonly sink: (s: StatusSample) => void,
  ) {}

  get latest(): StatusSample | undefined {
    return this.samples.at(-1);
  }

  start(): void {
    const tick = () => {
      this.running = this.sampleOnce().finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(tick, this.intervalMs);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  async sampleOnce(): Promise<StatusSample> {
    let sample: StatusSample;
    try {
      sample = toSample(
        Math.round(this.nowMs()),
        await this.source.status(Math.max(500, this.intervalMs * 4)),
      );
    } catch {
      sample = { timeMs: Math.round(this.nowMs()), state: "unreachable", primary: "", term: 0, members: [] };
    }
    this.samples.push(sample);
    this.sink(sample);
    return sample;
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
