import { invariant } from "./assert.js";
import { limitSize, StorageError } from "./storage.js";
import type { Entry, Snapshot, Storage } from "./types.js";

/**
 * The Raft log as the core sees it: the durable prefix in Storage plus an
 * "unstable" tail (entries and/or a snapshot handed to the application in a Ready
 * but not yet reported persisted). Tracks the commit and applied indexes.
 *
 * Invariants: applied <= committed <= lastIndex(); committed never decreases;
 * entries at or below `committed` are never overwritten.
 */
export class RaftLog {
  committed: number;
  applied: number;
  private unstableSnapshot: Snapshot | undefined;
  private unstableEntries: Entry[] = [];
  /** Index of unstableEntries[0] (= storage last index + 1 when nothing is unstable). */
  private unstableOffset: number;

  constructor(private readonly storage: Storage) {
    this.unstableOffset = storage.lastIndex() + 1;
    this.committed = storage.firstIndex() - 1;
    this.applied = storage.firstIndex() - 1;
  }

  firstIndex(): number {
    if (this.unstableSnapshot) return this.unstableSnapshot.meta.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstableEntries.length > 0) return this.unstableOffset + this.unstableEntries.length - 1;
    if (this.unstableSnapshot) return this.unstableSnapshot.meta.index;
    return this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Term of entry `index`, valid from firstIndex()-1 to lastIndex(); throws StorageError otherwise. */
  term(index: number): number {
    const t = this.termIfKnown(index);
    if (t !== undefined) return t;
    if (index > this.lastIndex()) {
      throw new StorageError("unavailable", `term(${index}): beyond last index ${this.lastIndex()}`);
    }
    throw new StorageError("compacted", `term(${index}): compacted up to ${this.firstIndex() - 1}`);
  }

  /**
   * Term of `index`, or undefined if it is compacted or beyond the end. Checks the
   * bounds first: the hot paths (matching new entries) must not pay for exceptions.
   */
  private termIfKnown(index: number): number | undefined {
    if (index < this.firstIndex() - 1 || index > this.lastIndex()) return undefined;
    if (this.unstableSnapshot && index === this.unstableSnapshot.meta.index) {
      return this.unstableSnapshot.meta.term;
    }
    if (index >= this.unstableOffset) return this.unstableEntries[index - this.unstableOffset]!.term;
    return this.storage.term(index);
  }

  /** Term of `index`, or 0 if it is compacted or beyond the end (etcd's zeroTermOnOutOfBounds). */
  termOrZero(index: number): number {
    return this.termIfKnown(index) ?? 0;
  }

  matchTerm(index: number, term: number): boolean {
    return this.termIfKnown(index) === term;
  }

  /** Raft's voting rule: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Entries [lo, hi) (hi defaults to lastIndex()+1), size-limited; throws StorageError("compacted") below firstIndex. */
  entries(lo: number, hi = this.lastIndex() + 1, maxSizeBytes?: number): Entry[] {
    invariant(lo <= hi, () => `entries: lo ${lo} > hi ${hi}`);
    if (lo < this.firstIndex()) {
      throw new StorageError("compacted", `entries(${lo}): compacted, first index is ${this.firstIndex()}`);
    }
    invariant(hi <= this.lastIndex() + 1, () => `entries: hi ${hi} beyond last index ${this.lastIndex()}`);
    if (lo === hi) return [];
    let out: Entry[] = [];
    if (lo < this.unstableOffset) {
      const stableHi = Math.min(hi, this.unstableOffset);
      out = this.storage.entries(lo, stableHi, maxSizeBytes);
      // Storage stopped early because of the size limit: do not add the unstable part.
      if (out.length < stableHi - lo) return out;
    }
    if (hi > this.unstableOffset) {
      const from = Math.max(lo, this.unstableOffset);
      out = out.concat(this.unstableEntries.slice(from - this.unstableOffset, hi - this.unstableOffset));
    }
    return limitSize(out, maxSizeBytes);
  }

  /**
   * Follower side of MsgApp: if our log has (prevIndex, prevTerm), append `ents`
   * (dropping what already matches, truncating a conflicting suffix), advance the
   * commit index and return the index of the last new entry; otherwise null.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, ents: Entry[]): number | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = prevIndex + ents.length;
    const conflict = this.findConflict(ents);
    if (conflict !== 0) {
      invariant(
        conflict > this.committed,
        `entry ${conflict} conflicts with committed entry ${this.committed}`,
      );
      this.append(ents.slice(conflict - (prevIndex + 1)));
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /** Index of the first entry of `ents` that is new or has a different term than ours; 0 if all match. */
  findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast backtracking (etcd's findConflictByTerm): the largest index <= `index`
   * whose term is <= `term`, with that term. Every entry above it has a larger term,
   * so it cannot match a log whose entry at `index` has term `term`.
   * Returns [index, 0] if we hit the compacted prefix.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (let i = index; i > 0; i--) {
      const t = this.termIfKnown(i);
      if (t === undefined) return [i, 0];
      if (t <= term) return [i, t];
    }
    return [0, 0];
  }

  /** Append entries that directly follow (or overwrite an uncommitted suffix of) the log. */
  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index;
    invariant(
      after - 1 >= this.committed,
      () => `append at ${after} would overwrite committed ${this.committed}`,
    );
    invariant(
      after <= this.lastIndex() + 1,
      () => `append at ${after} leaves a gap after ${this.lastIndex()}`,
    );
    for (let i = 1; i < ents.length; i++) {
      invariant(ents[i]!.index === after + i, "appended entries must have consecutive indexes");
    }
    const end = this.unstableOffset + this.unstableEntries.length;
    if (after === end) {
      this.unstableEntries.push(...ents);
    } else if (after <= this.unstableOffset) {
      // Replaces (part of) the stable log: the application's append truncates storage.
      this.unstableOffset = after;
      this.unstableEntries = [...ents];
    } else {
      this.unstableEntries = this.unstableEntries.slice(0, after - this.unstableOffset).concat(ents);
    }
    return this.lastIndex();
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    invariant(index <= this.lastIndex(), () => `commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  appliedTo(index: number): void {
    if (index <= this.applied) return;
    invariant(index <= this.committed, () => `applied ${index} beyond commit ${this.committed}`);
    this.applied = index;
  }

  /** Committed entries not yet handed out for applying. */
  nextCommittedEntries(maxSizeBytes?: number): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (lo > this.committed) return [];
    return this.entries(lo, this.committed + 1, maxSizeBytes);
  }

  hasNextCommittedEntries(): boolean {
    return Math.max(this.applied + 1, this.firstIndex()) <= this.committed;
  }

  unstable(): { snapshot: Snapshot | undefined; entries: Entry[] } {
    return { snapshot: this.unstableSnapshot, entries: [...this.unstableEntries] };
  }

  hasUnstableEntries(): boolean {
    return this.unstableEntries.length > 0;
  }

  hasPendingSnapshot(): boolean {
    return this.unstableSnapshot !== undefined;
  }

  /** The application persisted entries up to (index, term). */
  stableTo(index: number, term: number): void {
    if (index < this.unstableOffset) return;
    const e = this.unstableEntries[index - this.unstableOffset];
    // A different term means the entry was overwritten after the Ready was taken: keep it unstable.
    if (e === undefined || e.term !== term) return;
    this.unstableEntries = this.unstableEntries.slice(index + 1 - this.unstableOffset);
    this.unstableOffset = index + 1;
  }

  stableSnapTo(index: number): void {
    if (this.unstableSnapshot && this.unstableSnapshot.meta.index === index)
      this.unstableSnapshot = undefined;
  }

  /** Replace the log with a snapshot (follower receiving MsgSnap). */
  restore(snap: Snapshot): void {
    invariant(
      snap.meta.index > this.committed,
      `restore snapshot ${snap.meta.index} <= commit ${this.committed}`,
    );
    this.committed = snap.meta.index;
    this.unstableSnapshot = snap;
    this.unstableEntries = [];
    this.unstableOffset = snap.meta.index + 1;
  }

  /** The snapshot a leader sends: the pending one if any, else the application's latest. */
  snapshot(): Snapshot {
    return this.unstableSnapshot ?? this.storage.snapshot();
  }
}
