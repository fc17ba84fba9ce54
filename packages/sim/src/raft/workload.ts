import type { Prng } from "@hsmpool/faults";

/**
 * The client workload: a stream of writes (set key := fresh write id) and
 * linearizable reads (ReadIndex) against random running nodes, with exponential
 * gaps. Write ids are unique per run, so a read's answer names the write it saw.
 */

export interface WorkloadConfig {
  meanGapUs: number;
  readFraction: number;
  keys: number;
}

export const DEFAULT_WORKLOAD: WorkloadConfig = { meanGapUs: 100_000, readFraction: 0.25, keys: 4 };

export type ClientOp =
  | { kind: "write"; key: number; writeId: number }
  | { kind: "read"; key: number; readId: number };

export class Workload {
  private nextWrite = 1;
  private nextRead = 1;
  readonly proposedAtUs = new Map<number, number>();

  constructor(
    private readonly prng: Prng,
    readonly config: WorkloadConfig = DEFAULT_WORKLOAD,
  ) {}

  gapUs(): number {
    return Math.max(1, Math.round(this.prng.exponential(this.config.meanGapUs)));
  }

  next(nowUs: number): ClientOp {
    const key = this.prng.int(this.config.keys);
    if (this.prng.chance(this.config.readFraction)) return { kind: "read", key, readId: this.nextRead++ };
    const writeId = this.nextWrite++;
    this.proposedAtUs.set(writeId, nowUs);
    return { kind: "write", key, writeId };
  }

  /** Which of `candidates` the client connects to. */
  pickNode<T>(candidates: readonly T[]): T {
    return this.prng.pick(candidates);
  }

  get writesIssued(): number {
    return this.nextWrite - 1;
  }

  get readsIssued(): number {
    return this.nextRead - 1;
  }
}
