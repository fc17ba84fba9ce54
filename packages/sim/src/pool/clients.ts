import type { Prng } from "@hsmpool/faults";
import type { SingleKeyResult } from "@hsmpool/pool";
import { type ClientOp, describeOp, describeResult, type KeyOpKind, PoolWorkload } from "./workload.js";

/**
 * The clients, as an actor of the pool harness: they see the world only through
 * ClientWorld (who is reachable, who they believe is primary, send a request, a
 * timer), and members answer through settle(). A later actor — the HSM fabric
 * controller that heals the pool — plugs in the same way, with its own narrow world.
 */

export type ClientEvent = { k: "client"; client: number } | { k: "client-timeout"; op: ClientOp };

export interface ClientWorld {
  nowUs(): number;
  after(delayUs: number, event: ClientEvent): void;
  /** Members a client can connect to now. */
  reachable(): string[];
  /** The primary a client would be redirected to, if any. */
  leader(): string | null;
  /** Hand `op` to its member (which answers through ClientActor.settle). */
  send(op: ClientOp): void;
  trace(n: number): void;
  log(make: () => string): void;
}

export interface ClientCounters {
  opsIssued: number;
  /** Creates and deletes acknowledged. */
  writesAcked: number;
  /** Gets and signs answered. */
  readsChecked: number;
  opsRefused: number;
  /** Refused with OwnershipPending: the member did not hold the pool's ownership yet. */
  refusedOwnershipPending: number;
  opsUnknown: number;
}

const OP_CODES: Record<KeyOpKind, number> = { create: 1, delete: 2, get: 3, sign: 4 };

export class ClientActor {
  readonly workload: PoolWorkload;
  private stopped = false;

  constructor(
    private readonly world: ClientWorld,
    prng: Prng,
    private readonly counters: ClientCounters,
  ) {
    this.workload = new PoolWorkload(prng);
  }

  /** Every operation issued so far, as the clients saw it. */
  get ops(): readonly ClientOp[] {
    return this.workload.ops;
  }

  start(): void {
    for (let c = 1; c <= this.workload.config.clients; c++) {
      this.world.after(this.workload.thinkUs(), { k: "client", client: c });
    }
  }

  /** No new operations from now on (those in flight still finish). */
  stop(): void {
    this.stopped = true;
    this.world.log(() => "clients stop issuing operations");
  }

  handle(ev: ClientEvent): void {
    if (ev.k === "client") this.issue(ev.client);
    else if (ev.op.status === "pending") this.settle(ev.op, "unknown", null, "timed out");
  }

  private issue(client: number): void {
    if (this.stopped) return;
    const w = this.world;
    const reachable = w.reachable();
    if (reachable.length === 0) {
      w.after(this.workload.thinkUs(), { k: "client", client });
      return;
    }
    const op = this.workload.next(client, w.nowUs(), reachable, w.leader());
    this.counters.opsIssued++;
    w.trace(op.id);
    w.trace(OP_CODES[op.kind]);
    w.log(() => `client -> ${op.member} ${describeOp(op)}`);
    w.after(this.workload.config.timeoutUs, { k: "client-timeout", op });
    w.send(op);
  }

  /** The client learns the outcome of `op` (first outcome wins), then thinks and issues its next one. */
  settle(
    op: ClientOp,
    status: "ok" | "refused" | "unknown",
    result: SingleKeyResult | null,
    why: string | null,
  ): void {
    if (op.status !== "pending") return;
    const w = this.world;
    op.status = status;
    op.result = result;
    op.refusal = why;
    op.returnUs = status === "ok" ? w.nowUs() : null;
    w.trace(op.id);
    w.trace(status === "ok" ? 1 : status === "refused" ? 2 : 3);
    if (typeof result === "number") w.trace(result);
    const c = this.counters;
    if (status === "ok") {
      if (op.kind === "create" || op.kind === "delete") c.writesAcked++;
      else c.readsChecked++;
    } else if (status === "refused") {
      c.opsRefused++;
      if (why?.startsWith("OwnershipPending")) c.refusedOwnershipPending++;
    } else c.opsUnknown++;
    w.log(
      () =>
        `client <- ${op.member} ${describeOp(op)}: ${status === "ok" ? describeResult(result) : `${status} (${why})`}`,
    );
    w.after(this.workload.thinkUs(), { k: "client", client: op.client });
  }

  /** When the first create called at or after `sinceUs` was acknowledged, if one was. */
  firstCreateAckedSince(sinceUs: number): number | undefined {
    let first: number | undefined;
    for (const op of this.workload.ops) {
      if (op.kind !== "create" || op.status !== "ok" || op.callUs < sinceUs || op.returnUs === null) continue;
      if (first === undefined || op.returnUs < first) first = op.returnUs;
    }
    return first;
  }
}
