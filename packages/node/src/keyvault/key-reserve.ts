/**
 * Keys made ahead of need. Generating a key in the HSM (and persisting it there),
 * wrapping it under the DEK and reading its public JWK took about a third of a
 * create's latency; the primary now keeps a few such keys ready per key spec and a
 * create takes one, so only the Raft commit is left on its critical path. The shelf is
 * topped up one key at a time once the reserve has been quiet (no take, no refill
 * request) for `quietMs` and no call is being answered: a refill right after a commit
 * ran between the response's message and its trailers (gRPC sends them a loop turn or
 * more apart) and delayed the answer by the refill's CPU work, several milliseconds on
 * a loaded machine.
 *
 * A reserved key is an ordinary partition key no log entry names yet: if the process
 * dies, it stays behind unused (as a key of a create that never committed does); it is
 * never served. Keys prepared under another DEK key id (the partition was re-synced)
 * are discarded, never used.
 */
import type { JsonWebKey } from "node:crypto";
import type { KeyHandle, KeySpec } from "@hsmpool/hsm";
import type { Clock, TimerId } from "../seams/clock.js";

export interface PreparedKey {
  handle: KeyHandle;
  /** The key wrapped under the pool DEK, as the CreateKey command carries it. */
  wrappedMaterial: Uint8Array;
  /** The public JWK (null for oct keys). */
  publicJwk: JsonWebKey | null;
}

export interface KeyReserveOptions {
  /** Keys kept ready per key spec. */
  depth: number;
  /** Key specs remembered; the least recently used one beyond this is emptied. */
  maxSpecs: number;
  prepare(spec: KeySpec, dekKeyId: string): Promise<PreparedKey>;
  /** Deletes keys that will not be used (another DEK, a forgotten spec, shutdown). */
  discard(keyIds: string[]): Promise<void>;
  onError(error: unknown): void;
  /** A refill waits until no key of the shelf was taken or asked for during this long, */
  quietMs: number;
  /** and until this says no call is being answered (default: never busy). */
  busy?: () => boolean;
  clock: Clock;
}

interface Shelf {
  spec: KeySpec;
  dekKeyId: string;
  ready: PreparedKey[];
  filling: boolean;
  /** When a key was last taken or a refill asked for (clock ms). */
  lastUseMs: number;
  timer: TimerId | null;
}

/** One shelf per (key type, size or curve, operations). */
export function specId(spec: KeySpec): string {
  return JSON.stringify([spec.kty, spec.crv ?? "", spec.size ?? 0, [...spec.ops].sort()]);
}

export class KeyReserve {
  private readonly shelves = new Map<string, Shelf>();
  private closed = false;

  constructor(private readonly opts: KeyReserveOptions) {}

  /** A ready key of `spec` under `dekKeyId`, or one prepared now when the shelf is empty. */
  async take(spec: KeySpec, dekKeyId: string): Promise<PreparedKey> {
    const shelf = this.shelf(spec, dekKeyId);
    shelf.lastUseMs = this.opts.clock.now();
    return shelf.ready.shift() ?? this.opts.prepare(spec, dekKeyId);
  }

  /** Tops the shelf of `spec` up to the depth in the background, once the shelf is quiet (one filler per shelf). */
  refill(spec: KeySpec, dekKeyId: string): void {
    const shelf = this.shelf(spec, dekKeyId);
    shelf.lastUseMs = this.opts.clock.now();
    this.arm(shelf, this.opts.quietMs);
  }

  private arm(shelf: Shelf, delayMs: number): void {
    if (shelf.timer !== null || shelf.filling || this.closed) return;
    shelf.timer = this.opts.clock.setTimeout(() => {
      shelf.timer = null;
      this.fillOne(shelf);
    }, delayMs);
  }

  /** Prepares one key if the shelf is still wanted, short and quiet; then waits for quiet again. */
  private fillOne(shelf: Shelf): void {
    if (this.closed || this.shelves.get(specId(shelf.spec)) !== shelf) return;
    if (shelf.ready.length >= this.opts.depth) return;
    const quietFor = this.opts.clock.now() - shelf.lastUseMs;
    if (quietFor < this.opts.quietMs || this.opts.busy?.()) {
      this.arm(shelf, Math.max(1, this.opts.quietMs - quietFor));
      return;
    }
    shelf.filling = true;
    this.opts.prepare(shelf.spec, shelf.dekKeyId).then(
      (key) => {
        shelf.filling = false;
        shelf.ready.push(key);
        if (this.shelves.get(specId(shelf.spec)) !== shelf || this.closed) this.empty(shelf);
        else this.arm(shelf, 0);
      },
      (e: unknown) => {
        // No retry loop: the next create asks again.
        shelf.filling = false;
        if (!this.closed) this.opts.onError(e);
      },
    );
  }

  /** Keys ready now, over all shelves. */
  get size(): number {
    let n = 0;
    for (const s of this.shelves.values()) n += s.ready.length;
    return n;
  }

  /** Stops refilling and deletes the keys on the shelves. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.shelves.values()) this.opts.clock.clear(s.timer);
    const ids = [...this.shelves.values()].flatMap((s) => s.ready.splice(0).map((k) => k.handle.id));
    this.shelves.clear();
    if (ids.length > 0) await this.opts.discard(ids);
  }

  private shelf(spec: KeySpec, dekKeyId: string): Shelf {
    const id = specId(spec);
    let shelf = this.shelves.get(id);
    if (shelf && shelf.dekKeyId !== dekKeyId) {
      this.shelves.delete(id);
      this.empty(shelf);
      shelf = undefined;
    }
    if (shelf) this.shelves.delete(id); // re-inserted below: most recently used last
    shelf ??= { spec, dekKeyId, ready: [], filling: false, lastUseMs: 0, timer: null };
    this.shelves.set(id, shelf);
    for (const [oldId, old] of this.shelves) {
      if (this.shelves.size <= this.opts.maxSpecs) break;
      this.shelves.delete(oldId);
      this.empty(old);
    }
    return shelf;
  }

  private empty(shelf: Shelf): void {
    this.opts.clock.clear(shelf.timer);
    shelf.timer = null;
    const ids = shelf.ready.splice(0).map((k) => k.handle.id);
    if (ids.length > 0) this.opts.discard(ids).catch((e: unknown) => this.opts.onError(e));
  }
}
