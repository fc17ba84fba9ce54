/**
 * Seeded, splittable pseudo-random numbers for the simulator.
 *
 * Generator: xoshiro128** (Blackman & Vigna) for the stream — 32-bit words, so it
 * runs on plain JS numbers with Math.imul — seeded through SplitMix64, the seeding
 * function its authors recommend. SplitMix64 needs 64-bit arithmetic, so it uses
 * BigInt; it only runs when a generator is created or split, never per draw.
 *
 * `split(label)` derives a child from the parent's *seed key* and the label, not from
 * the parent's current state: drawing from one subsystem's stream (or adding a new
 * subsystem) never shifts another's. The same label always gives the same child.
 */

const MASK64 = (1n << 64n) - 1n;
const GOLDEN_GAMMA = 0x9e3779b97f4a7c15n;

/** One SplitMix64 output for the state `x` (already advanced by the caller). */
function splitmix64Mix(x: bigint): bigint {
  let z = x & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** The SplitMix64 sequence from a 64-bit seed (exported for its known-answer test). */
export function splitmix64(seed: bigint, count: number): bigint[] {
  const out: bigint[] = [];
  let x = seed & MASK64;
  for (let i = 0; i < count; i++) {
    x = (x + GOLDEN_GAMMA) & MASK64;
    out.push(splitmix64Mix(x));
  }
  return out;
}

/** FNV-1a 64 over the label's UTF-16 code units: a stable label → 64-bit key. */
function labelKey(label: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < label.length; i++) {
    h ^= BigInt(label.charCodeAt(i));
    h = (h * 0x100000001b3n) & MASK64;
  }
  return h;
}

function rotl32(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** `seedKey` identifies this stream; children are derived from it (see split). */
  private constructor(
    readonly seedKey: bigint,
    readonly path: string,
  ) {
    const [a, b] = splitmix64(seedKey, 2) as [bigint, bigint];
    this.s0 = Number(a & 0xffffffffn) | 0;
    this.s1 = Number(a >> 32n) | 0;
    this.s2 = Number(b & 0xffffffffn) | 0;
    this.s3 = Number(b >> 32n) | 0;
    // xoshiro's all-zero state is a fixed point; SplitMix64 cannot produce two zero
    // outputs in a row, but keep the guarantee explicit.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A generator for a run seed (any safe integer, including 0 and negatives). */
  static fromSeed(seed: number | bigint): Prng {
    if (typeof seed === "number" && !Number.isSafeInteger(seed)) {
      throw new RangeError(`PRNG seed must be a safe integer, got ${seed}`);
    }
    return new Prng(BigInt(seed) & MASK64, "root");
  }

  /** A generator with an explicit xoshiro128** state (known-answer tests only). */
  static fromState(s0: number, s1: number, s2: number, s3: number): Prng {
    const p = new Prng(0n, "state");
    p.s0 = s0 | 0;
    p.s1 = s1 | 0;
    p.s2 = s2 | 0;
    p.s3 = s3 | 0;
    return p;
  }

  /** An independent child stream named `label` (same parent + label → same stream). */
  split(label: string): Prng {
    const [key] = splitmix64(this.seedKey ^ labelKey(label), 1) as [bigint];
    return new Prng(key, `${this.path}/${label}`);
  }

  /** Next 32-bit output as an unsigned integer in [0, 2^32). */
  nextU32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl32(Math.imul(s1, 5), 7), 9);
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl32(this.s3, 11);
    return result >>> 0;
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  float(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n) for 1 <= n <= 2^32, without modulo bias (rejection). */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 0x100000000)
      throw new RangeError(`int(n) needs 1..2^32, got ${n}`);
    if (n === 1) return 0;
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  between(lo: number, hi: number): number {
    if (hi < lo) throw new RangeError(`between(${lo}, ${hi}): empty range`);
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p (p <= 0 never draws, so a disabled knob costs no randomness). */
  chance(p: number): boolean {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return this.float() < p;
  }

  /** Exponentially distributed value with the given mean (for delays and inter-arrival times). */
  exponential(mean: number): number {
    if (mean <= 0) return 0;
    return -mean * Math.log(1 - this.float());
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from an empty list");
    return items[this.int(items.length)] as T;
  }

  /** A shuffled copy (Fisher–Yates). */
  shuffled<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = out[i] as T;
      out[i] = out[j] as T;
      out[j] = tmp;
    }
    return out;
  }
}
