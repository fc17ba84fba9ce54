import type { Entry } from "@hsmpool/raft";

/**
 * A rolling 64-bit digest over a log prefix: digest(i) = mix(digest(i-1), entry i).
 * Two logs with equal digests at index i agree on every entry up to i (up to hash
 * collisions, which can only hide a bug, never invent one). The checkers keep one
 * per node log and per applied state machine; snapshots carry the digest at their
 * index so a node restored from a snapshot can continue the chain.
 */

export interface Digest {
  a: number;
  b: number;
}

export const EMPTY_DIGEST: Readonly<Digest> = { a: 0x243f6a88 | 0, b: 0x85a308d3 | 0 };

function step(h: number, k: number, c: number): number {
  k = Math.imul(k, c);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fin(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

export function chainDigest(prev: Digest, e: Entry): Digest {
  let a = step(prev.a, e.term, 0xcc9e2d51);
  let b = step(prev.b, e.term, 0x9e3779b1);
  a = step(a, e.index, 0xcc9e2d51);
  b = step(b, e.index, 0x9e3779b1);
  const t = e.type === "confChange" ? 1 : 0;
  a = step(a, t ^ (e.data.length << 1), 0xcc9e2d51);
  b = step(b, t ^ (e.data.length << 1), 0x9e3779b1);
  const d = e.data;
  for (let i = 0; i < d.length; i++) {
    a = step(a, d[i] as number, 0xcc9e2d51);
    b = step(b, d[i] as number, 0x9e3779b1);
  }
  return { a: fin(a), b: fin(b) };
}

export function sameDigest(x: Digest, y: Digest): boolean {
  return x.a === y.a && x.b === y.b;
}

export function digestHex(d: Digest): string {
  return (d.a >>> 0).toString(16).padStart(8, "0") + (d.b >>> 0).toString(16).padStart(8, "0");
}
