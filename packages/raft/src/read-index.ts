import { quorumMatchIndex } from "./quorum.js";
import type { NodeId } from "./types.js";

/** A ReadIndex request waiting for the leader to confirm it is still leader. */
export interface PendingRead {
  /** Who asked (the leader itself or a follower that forwarded the request). */
  from: NodeId;
  requestCtx: Uint8Array;
  /** The leader's commit index when the request arrived: the read index. */
  index: number;
  /** Position in the request sequence; a heartbeat round carrying seq >= this confirms it. */
  seq: number;
}

/**
 * Leader-side bookkeeping for linearizable reads (etcd's readOnly, ReadOnlySafe).
 * Each request gets a sequence number; heartbeats carry the highest sequence so
 * far in their context, followers echo it, and once a majority of voters has
 * echoed seq >= s every request up to s is confirmed: nobody else could have been
 * leader with a newer commit when those heartbeats were answered.
 */
export class ReadIndexTracker {
  private pending: PendingRead[] = [];
  private lastSeq = 0;
  /** The highest sequence a heartbeat round carried, and the highest a majority confirmed. */
  private sentSeq = 0;
  private confirmedSeq = 0;
  private readonly acks = new Map<NodeId, number>();

  add(from: NodeId, requestCtx: Uint8Array, index: number): PendingRead {
    const r = { from, requestCtx, index, seq: ++this.lastSeq };
    this.pending.push(r);
    return r;
  }

  /** Who asked the reads waiting now (the leader itself among them, if it did). */
  askers(): Set<NodeId> {
    return new Set(this.pending.map((r) => r.from));
  }

  /** Context for the next heartbeat round, or undefined if no read is waiting. */
  heartbeatContext(): Uint8Array | undefined {
    if (this.pending.length === 0) return undefined;
    this.sentSeq = this.lastSeq;
    return encodeSeq(this.lastSeq);
  }

  /**
   * Whether reads wait that no heartbeat round in flight carries: a new round is due.
   * While a round is out, reads arriving meanwhile wait and go together in the next
   * round (sent once this one is confirmed, or with the next periodic heartbeat), as
   * each member's reads do in its driver: one round per round trip, not one per read.
   */
  needsRound(): boolean {
    return this.pending.length > 0 && this.sentSeq <= this.confirmedSeq;
  }

  recvAck(from: NodeId, ctx: Uint8Array | undefined): void {
    const seq = decodeSeq(ctx);
    if (seq === undefined) return;
    this.acks.set(from, Math.max(this.acks.get(from) ?? 0, seq));
  }

  /** Requests now confirmed by a majority of `voters` (the leader acks its own rounds). */
  confirmed(self: NodeId, voters: readonly NodeId[]): PendingRead[] {
    this.acks.set(self, this.lastSeq);
    const seq = quorumMatchIndex(voters.map((id) => this.acks.get(id) ?? 0));
    this.confirmedSeq = Math.max(this.confirmedSeq, seq);
    const n = this.pending.findIndex((r) => r.seq > seq);
    const done = n === -1 ? this.pending : this.pending.slice(0, n);
    this.pending = n === -1 ? [] : this.pending.slice(n);
    return done;
  }
}

function encodeSeq(seq: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(seq));
  return b;
}

function decodeSeq(ctx: Uint8Array | undefined): number | undefined {
  if (ctx === undefined || ctx.byteLength !== 8) return undefined;
  return Number(new DataView(ctx.buffer, ctx.byteOffset, 8).getBigUint64(0));
}
