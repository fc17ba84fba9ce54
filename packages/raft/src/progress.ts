import { invariant } from "./assert.js";
import type { ProgressState } from "./types.js";

/**
 * Bounded window of MsgApp sent but not yet acknowledged, tracked by the last
 * index of each message (etcd's Inflights). Full => the leader stops sending.
 */
export class Inflights {
  private readonly lastIndexes: number[] = [];
  constructor(readonly capacity: number) {}

  full(): boolean {
    return this.lastIndexes.length >= this.capacity;
  }

  add(lastIndex: number): void {
    invariant(!this.full(), "inflights: add to a full window");
    const tail = this.lastIndexes[this.lastIndexes.length - 1];
    invariant(tail === undefined || lastIndex > tail, "inflights: indexes must increase");
    this.lastIndexes.push(lastIndex);
  }

  /** Acknowledge every message whose last index is <= `index`. */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.lastIndexes.length && this.lastIndexes[n]! <= index) n++;
    this.lastIndexes.splice(0, n);
  }

  reset(): void {
    this.lastIndexes.length = 0;
  }
}

/**
 * The leader's view of one follower (etcd's tracker.Progress):
 *  - probe: send one MsgApp at a time until we learn where the logs match;
 *  - replicate: stream optimistically, bounded by Inflights;
 *  - snapshot: a snapshot is on its way; send nothing until it is reported.
 */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** Index of the snapshot in flight (snapshot state only). */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Probe: one message in flight; replicate: inflights full. */
  paused = false;
  /** Ticks since the snapshot was sent (snapshot state only), to detect a lost MsgSnap. */
  snapshotElapsedTicks = 0;
  /** Highest commit index sent to this follower (to know when a commit-only MsgApp helps). */
  sentCommit = 0;
  readonly inflights: Inflights;

  constructor(
    next: number,
    maxInflightMsgs: number,
    public isLearner: boolean,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs);
  }

  private resetState(state: ProgressState): void {
    this.paused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.resetState("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState("probe");
      this.next = this.match + 1;
    }
    this.sentCommit = Math.min(this.sentCommit, this.next - 1);
  }

  becomeReplicate(): void {
    this.resetState("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
    this.snapshotElapsedTicks = 0;
    this.next = snapshotIndex + 1;
    this.sentCommit = snapshotIndex;
  }

  /** Record a MsgApp carrying `entryCount` entries just sent. */
  sentEntries(entryCount: number): void {
    if (this.state === "replicate") {
      if (entryCount > 0) {
        this.next += entryCount;
        this.inflights.add(this.next - 1);
      }
      this.paused = this.inflights.full();
    } else {
      invariant(this.state === "probe", () => `sent entries in ${this.state} state`);
      if (entryCount > 0) this.paused = true;
    }
  }

  canBumpCommit(commit: number): boolean {
    return commit > this.sentCommit && this.sentCommit < this.next - 1;
  }

  /** A successful MsgAppResp for `index`; false if it tells us nothing new. */
  maybeUpdate(index: number): boolean {
    if (index <= this.match) return false;
    this.match = index;
    this.next = Math.max(this.next, index + 1);
    this.paused = false;
    return true;
  }

  /**
   * A rejected MsgApp whose prev index was `rejected`; `matchHint` is the best
   * guess (from the follower's hint) of the last index that may match. False if
   * the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      this.sentCommit = Math.min(this.sentCommit, this.next - 1);
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.sentCommit = Math.min(this.sentCommit, this.next - 1);
    this.paused = false;
    return true;
  }

  isPaused(): boolean {
    return this.state === "snapshot" || this.paused;
  }
}
