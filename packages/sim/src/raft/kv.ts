import { ByteReader, ByteWriter } from "@hsmpool/codec";
import type { Entry } from "@hsmpool/raft";
import { chainDigest, type Digest, EMPTY_DIGEST } from "./digest.js";

/**
 * The replicated application: a tiny key/value store whose values are write ids.
 * Normal entry data (written by the workload):  'W' key:u8 writeId:u32 LE.
 * Empty entries (a new leader's no-op) and conf changes change no key.
 * The state also carries the digest of every applied entry, so comparing two
 * replicas' digests at one index is the state-machine-safety check.
 *
 * Snapshot data: applied index, digest (2 × u32 as varints), key count, (key, writeId)*.
 */

const WRITE_TAG = 0x57; // 'W'
export const READ_TAG = 0x52; // 'R'

export interface KvWrite {
  key: number;
  writeId: number;
}

export function encodeWrite(w: KvWrite): Uint8Array {
  const b = new Uint8Array(6);
  b[0] = WRITE_TAG;
  b[1] = w.key;
  new DataView(b.buffer).setUint32(2, w.writeId, true);
  return b;
}

export function decodeWrite(data: Uint8Array): KvWrite | null {
  if (data.length !== 6 || data[0] !== WRITE_TAG) return null;
  return { key: data[1] as number, writeId: new DataView(data.buffer, data.byteOffset).getUint32(2, true) };
}

export function encodeReadCtx(readId: number): Uint8Array {
  const b = new Uint8Array(5);
  b[0] = READ_TAG;
  new DataView(b.buffer).setUint32(1, readId, true);
  return b;
}

export function decodeReadCtx(ctx: Uint8Array): number | null {
  if (ctx.length !== 5 || ctx[0] !== READ_TAG) return null;
  return new DataView(ctx.buffer, ctx.byteOffset).getUint32(1, true);
}

export class KvStateMachine {
  private values = new Map<number, number>();
  applied = 0;
  digest: Digest = EMPTY_DIGEST;

  /** Apply the next committed entry; returns the write it performed, if any. */
  apply(e: Entry): KvWrite | null {
    if (e.index !== this.applied + 1) {
      throw new Error(`state machine applies index ${e.index} after ${this.applied}: gap or repeat`);
    }
    this.applied = e.index;
    this.digest = chainDigest(this.digest, e);
    if (e.type !== "normal") return null;
    const w = decodeWrite(e.data);
    if (w) this.values.set(w.key, w.writeId);
    return w;
  }

  get(key: number): number | undefined {
    return this.values.get(key);
  }

  snapshotData(): Uint8Array {
    const w = new ByteWriter()
      .varint(this.applied)
      .varint(this.digest.a >>> 0)
      .varint(this.digest.b >>> 0);
    const keys = [...this.values.keys()].sort((x, y) => x - y);
    w.varint(keys.length);
    for (const k of keys) w.varint(k).varint(this.values.get(k) as number);
    return w.finish();
  }

  /**
   * Replace the state with a snapshot's. Empty `data` is the initial, empty state at
   * `index` (the Raft core bootstraps founding members with such a snapshot at index 1).
   */
  restore(data: Uint8Array, index: number): void {
    this.values = new Map();
    if (data.length === 0) {
      this.applied = index;
      this.digest = EMPTY_DIGEST;
      return;
    }
    const r = new ByteReader(data, "kv snapshot");
    this.applied = r.varint("applied index");
    this.digest = { a: r.varint("digest") | 0, b: r.varint("digest") | 0 };
    for (let n = r.varint("key count"); n > 0; n--) this.values.set(r.varint("key"), r.varint("write id"));
  }
}

/** The applied index and digest a snapshot at `index` claims (for the checkers). */
export function snapshotDigest(data: Uint8Array, index: number): { applied: number; digest: Digest } {
  if (data.length === 0) return { applied: index, digest: EMPTY_DIGEST };
  const r = new ByteReader(data, "kv snapshot");
  const applied = r.varint("applied index");
  return { applied, digest: { a: r.varint("digest") | 0, b: r.varint("digest") | 0 } };
}
