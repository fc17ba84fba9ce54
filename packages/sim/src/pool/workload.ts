import type { Prng } from "@hsmpool/faults";
import type { SingleKeyResult } from "@hsmpool/pool";

/**
 * The client side of the pool simulation: a few closed-loop clients, each with one
 * operation in flight at a time, issuing create / delete / get / sign on a small set
 * of key names (so histories per key overlap and the checker has work to do).
 * Writes go to the primary the client believes in (most of the time), reads and
 * signs to any member. Every operation is recorded as the client saw it: call time,
 * and either a result, a definite refusal (nothing happened), or "unknown".
 */

export type KeyOpKind = "create" | "delete" | "get" | "sign";

export type OpStatus =
  /** Sent, no answer yet. */
  | "pending"
  | "ok"
  /** Refused before anything reached the log or the key store: it had no effect. */
  | "refused"
  /** The client never learned the outcome (timeout, connection lost). */
  | "unknown";

export interface ClientOp {
  readonly id: number;
  readonly client: number;
  readonly kind: KeyOpKind;
  readonly name: string;
  /** Writes: the idempotency key carried in the log entry. */
  readonly requestId: string | null;
  readonly member: string;
  readonly callUs: number;
  status: OpStatus;
  returnUs: number | null;
  /** create: the version; get/sign: latest version or "notFound"; delete: "ok" or "notFound". */
  result: SingleKeyResult | null;
  /** Why it was refused (error code), for transcripts. */
  refusal: string | null;
}

export interface PoolWorkloadConfig {
  clients: number;
  names: number;
  meanThinkUs: number;
  /** The client gives up (outcome unknown) after this long. */
  timeoutUs: number;
  /** Probability a write goes to the current primary rather than a random member. */
  leaderHintProbability: number;
  weights: Readonly<Record<KeyOpKind, number>>;
}

export const DEFAULT_POOL_WORKLOAD: PoolWorkloadConfig = {
  clients: 3,
  names: 4,
  meanThinkUs: 150_000,
  timeoutUs: 2_000_000,
  leaderHintProbability: 0.85,
  weights: { create: 3, delete: 1, get: 3, sign: 3 },
};

export class PoolWorkload {
  readonly ops: ClientOp[] = [];
  private readonly kinds: KeyOpKind[];
  private readonly totalWeight: number;

  constructor(
    private readonly prng: Prng,
    readonly config: PoolWorkloadConfig = DEFAULT_POOL_WORKLOAD,
  ) {
    this.kinds = Object.keys(config.weights) as KeyOpKind[];
    this.totalWeight = this.kinds.reduce((s, k) => s + config.weights[k], 0);
  }

  thinkUs(): number {
    return Math.max(1, Math.round(this.prng.exponential(this.config.meanThinkUs)));
  }

  nameOf(i: number): string {
    return `key-${i}`;
  }

  /** The next operation of `client`, sent to one of `members` (leader first for writes, if hinted). */
  next(client: number, nowUs: number, members: readonly string[], leader: string | null): ClientOp {
    let x = this.prng.float() * this.totalWeight;
    let kind = this.kinds[this.kinds.length - 1] as KeyOpKind;
    for (const k of this.kinds) {
      x -= this.config.weights[k];
      if (x < 0) {
        kind = k;
        break;
      }
    }
    const name = this.nameOf(this.prng.int(this.config.names));
    const write = kind === "create" || kind === "delete";
    const hinted = write && leader !== null && this.prng.chance(this.config.leaderHintProbability);
    const member = hinted ? (leader as string) : this.prng.pick(members);
    const id = this.ops.length + 1;
    const op: ClientOp = {
      id,
      client,
      kind,
      name,
      requestId: write ? `req-${id}` : null,
      member,
      callUs: nowUs,
      status: "pending",
      returnUs: null,
      result: null,
      refusal: null,
    };
    this.ops.push(op);
    return op;
  }
}

export function describeOp(op: ClientOp): string {
  return `op ${op.id} (c${op.client}) ${op.kind} ${op.name}`;
}

export function describeResult(r: SingleKeyResult | null): string {
  return r === null ? "?" : typeof r === "number" ? `v${r}` : r;
}
