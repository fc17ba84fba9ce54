/**
 * The ordered event log of a run, reduced to a 64-bit hash (two 32-bit lanes of a
 * murmur3-style mixer fed with the event's numeric fields), plus an optional
 * readable transcript. Two runs with the same hash executed the same events in the
 * same order at the same simulated times. Building transcript lines is skipped
 * unless asked for, so hashing stays cheap.
 */

function mixLane(h: number, k: number, c1: number, c2: number): number {
  k = Math.imul(k, c1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, c2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** murmur3's 32-bit finalizer: every input bit affects every output bit. */
export function finalize(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class TraceHash {
  private a = 0x9747b28c | 0;
  private b = 0x1b873593 | 0;
  private words = 0;

  /** Feed one number: integers up to 2^53 exactly, other values via their bit pattern. */
  add(n: number): void {
    if (Number.isInteger(n) && Math.abs(n) <= Number.MAX_SAFE_INTEGER) {
      this.word(n >>> 0);
      this.word(Math.floor(n / 0x100000000) | 0);
    } else {
      const f = new Float64Array([n]);
      const u = new Uint32Array(f.buffer);
      this.word(u[0] as number);
      this.word(u[1] as number);
    }
  }

  addString(s: string): void {
    this.word(s.length);
    for (let i = 0; i < s.length; i++) this.word(s.charCodeAt(i));
  }

  /** Feed bytes: their length, then one word per 4 bytes (little-endian; the last word zero-padded). */
  addBytes(bytes: Uint8Array): void {
    const n = bytes.length;
    this.word(n);
    let i = 0;
    for (; i + 4 <= n; i += 4)
      this.word(
        (bytes[i] as number) |
          ((bytes[i + 1] as number) << 8) |
          ((bytes[i + 2] as number) << 16) |
          ((bytes[i + 3] as number) << 24),
      );
    let last = 0;
    for (let j = 0; i + j < n; j++) last |= (bytes[i + j] as number) << (8 * j);
    if (i < n) this.word(last);
  }

  private word(w: number): void {
    this.a = mixLane(this.a, w, 0xcc9e2d51, 0x1b873593);
    this.b = mixLane(this.b, w ^ 0x5bd1e995, 0x85ebca6b, 0xc2b2ae35);
    this.words++;
  }

  /** The hash as two unsigned 32-bit numbers. */
  lanes(): [number, number] {
    return [finalize(this.a ^ this.words), finalize(this.b ^ Math.imul(this.words, 0x27d4eb2d))];
  }

  /** 16 lowercase hex digits. */
  hex(): string {
    const [a, b] = this.lanes();
    return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
  }
}

/** Collects transcript lines when enabled; `line` takes a thunk so disabled runs build no strings. */
export class Transcript {
  readonly lines: string[] = [];
  constructor(
    readonly enabled: boolean,
    private readonly sink?: (line: string) => void,
  ) {}

  line(make: () => string): void {
    if (!this.enabled) return;
    const s = make();
    if (this.sink) this.sink(s);
    else this.lines.push(s);
  }
}
