import type { ConfState, Entry, HardState, Snapshot, Storage, StorageErrorKind } from "./types.js";

/**
 * A storage failure the core knows how to handle: `compacted` (the index was folded
 * into a snapshot; send a snapshot instead), `unavailable` (beyond the last index),
 * `snapshotTemporarilyUnavailable` (retry later). Anything else thrown by a Storage is a bug.
 */
export class StorageError extends Error {
  override readonly name = "StorageError";
  constructor(
    readonly kind: StorageErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export function isStorageError(e: unknown, kind?: StorageErrorKind): e is StorageError {
  return e instanceof StorageError && (kind === undefined || e.kind === kind);
}

/** Approximate wire size of an entry, for maxSizeBytes limits. */
function entrySizeBytes(e: Entry): number {
  return e.data.byteLength + 24;
}

/** Longest prefix of `ents` whose total size is <= maxSizeBytes, but never empty if ents is not. */
export function limitSize(ents: Entry[], maxSizeBytes: number | undefined): Entry[] {
  if (maxSizeBytes === undefined || ents.length === 0) return ents;
  let size = entrySizeBytes(ents[0]!);
  let n = 1;
  while (n < ents.length) {
    size += entrySizeBytes(ents[n]!);
    if (size > maxSizeBytes) break;
    n++;
  }
  return ents.slice(0, n);
}

function cloneConf(c: ConfState): ConfState {
  return { voters: [...c.voters], learners: [...c.learners] };
}

/**
 * In-memory Storage like etcd's MemoryStorage. `ents[0]` is a dummy entry holding
 * the index/term of the last compacted entry (the snapshot point), so term() works
 * for firstIndex()-1.
 *
 * `new MemoryStorage(conf)` bootstraps a founding member: a snapshot at index 1,
 * term 1 carrying the initial membership (and hard state term 1, commit 1). Because
 * index 1 only exists inside that snapshot, a member that joins later always receives
 * a snapshot first and so learns the full membership. `new MemoryStorage()` is an
 * empty node that waits to be added and caught up.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: null, commit: 0 };
  private snap: Snapshot;
  private ents: Entry[];

  constructor(initialConf?: ConfState) {
    const founding = initialConf !== undefined && initialConf.voters.length > 0;
    const at = founding ? 1 : 0;
    const conf = initialConf ? cloneConf(initialConf) : { voters: [], learners: [] };
    this.snap = { meta: { index: at, term: at, conf }, data: new Uint8Array() };
    this.ents = [{ index: at, term: at, type: "normal", data: new Uint8Array() }];
    if (founding) this.hardState = { term: 1, vote: null, commit: 1 };
  }

  initialState(): { hardState: HardState; conf: ConfState } {
    return { hardState: { ...this.hardState }, conf: cloneConf(this.snap.meta.conf) };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  private offset(): number {
    return this.ents[0]!.index;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }

  entries(lo: number, hi: number, maxSizeBytes?: number): Entry[] {
    const offset = this.offset();
    if (lo <= offset)
      throw new StorageError("compacted", `entries(${lo}) compacted (first index ${offset + 1})`);
    if (hi > this.lastIndex() + 1) {
      throw new StorageError("unavailable", `entries hi ${hi} beyond last index ${this.lastIndex()}`);
    }
    if (lo > hi) throw new Error(`raft invariant: entries lo ${lo} > hi ${hi}`);
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSizeBytes);
  }

  term(index: number): number {
    const offset = this.offset();
    if (index < offset)
      throw new StorageError("compacted", `term(${index}) compacted (snapshot at ${offset})`);
    const e = this.ents[index - offset];
    if (e === undefined) {
      throw new StorageError("unavailable", `term(${index}) beyond last index ${this.lastIndex()}`);
    }
    return e.term;
  }

  snapshot(): Snapshot {
    return { meta: { ...this.snap.meta, conf: cloneConf(this.snap.meta.conf) }, data: this.snap.data };
  }

  /** Replace the whole state with a snapshot received from the leader (Ready.snapshot). */
  applySnapshot(snap: Snapshot): void {
    if (snap.meta.index <= this.snap.meta.index && this.snap.meta.index !== 0) {
      throw new StorageError(
        "compacted",
        `snapshot ${snap.meta.index} is older than ${this.snap.meta.index}`,
      );
    }
    this.snap = { meta: { ...snap.meta, conf: cloneConf(snap.meta.conf) }, data: snap.data };
    this.ents = [{ index: snap.meta.index, term: snap.meta.term, type: "normal", data: new Uint8Array() }];
  }

  /** Record an application snapshot at `index` (<= applied) with the membership as of `index`. */
  createSnapshot(index: number, conf: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.meta.index) {
      throw new StorageError("compacted", `snapshot ${index} is not newer than ${this.snap.meta.index}`);
    }
    if (index > this.lastIndex()) {
      throw new Error(`raft invariant: snapshot index ${index} beyond last index ${this.lastIndex()}`);
    }
    this.snap = { meta: { index, term: this.term(index), conf: cloneConf(conf) }, data };
    return this.snapshot();
  }

  /** Drop entries up to and including `compactIndex` (which must be <= applied and <= snapshot index in practice). */
  compact(compactIndex: number): void {
    const offset = this.offset();
    if (compactIndex <= offset) throw new StorageError("compacted", `already compacted to ${offset}`);
    if (compactIndex > this.lastIndex()) {
      throw new Error(`raft invariant: compact ${compactIndex} beyond last index ${this.lastIndex()}`);
    }
    const i = compactIndex - offset;
    const head = this.ents[i]!;
    this.ents = [
      { index: head.index, term: head.term, type: "normal", data: new Uint8Array() },
      ...this.ents.slice(i + 1),
    ];
  }

  /** Append entries (Ready.entries); a conflicting suffix is overwritten. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return; // all already compacted
    const tail = first > entries[0]!.index ? entries.slice(first - entries[0]!.index) : entries;
    const at = tail[0]!.index - this.offset();
    if (at > this.ents.length) {
      throw new Error(
        `raft invariant: missing log entry (last ${this.lastIndex()}, append at ${tail[0]!.index})`,
      );
    }
    // Truncate a conflicting suffix in place, then append (no copy of the whole log).
    this.ents.length = at;
    for (const e of tail) this.ents.push(e);
  }
}
