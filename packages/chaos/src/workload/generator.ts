/**
 * The workload generator (pure): which operation a client runs next, on which key,
 * and how long it waits first. Seeded per client, so a seed replays the same choices
 * (the pool's answers and timing still vary: it is a real system).
 */
import type { Prng } from "@hsmpool/faults";
import { OP_NAMES, type OpName, type WorkloadSettings } from "../scenario/schema.js";

/** A signature a client got from the pool, kept to verify later. */
export interface HeldSignature {
  key: string;
  version: number;
  data: Uint8Array;
  signature: Uint8Array;
  /** History index of the sign's completion. */
  signIndex: number;
}

/** A single-key backup a client got from the pool, kept to restore later (after a purge). */
export interface HeldBackup {
  key: string;
  /** The key's latest version in the blob. */
  version: number;
  blob: Uint8Array;
}

export type PlannedOp =
  | { f: "create" | "get" | "delete" | "rotate" | "update" | "recover" | "purge" | "backup"; key: string }
  | { f: "sign"; key: string; data: Uint8Array }
  | { f: "list" }
  | { f: "verify"; key: string; held: HeldSignature }
  | { f: "restore"; key: string; held: HeldBackup };

export const keyName = (i: number): string => `chaos-k${i}`;

export class WorkloadGenerator {
  private readonly total: number;
  readonly keys: string[];

  constructor(
    private readonly prng: Prng,
    private readonly settings: WorkloadSettings,
  ) {
    this.total = OP_NAMES.reduce((s, op) => s + settings.mix[op], 0);
    this.keys = Array.from({ length: settings.keys }, (_, i) => keyName(i));
  }

  /** Milliseconds to wait before the next operation: exponential gaps so all clients together make `rateOpsPerS`. */
  nextDelayMs(): number {
    const meanMs = (1000 * this.settings.clients) / this.settings.rateOpsPerS;
    return Math.min(this.prng.exponential(meanMs), meanMs * 10);
  }

  /**
   * The next operation; a verify needs a signature this client holds (else it signs instead),
   * a restore a backup it holds (else it backs up instead).
   */
  next(
    held: ReadonlyMap<string, HeldSignature>,
    backups: ReadonlyMap<string, HeldBackup> = new Map(),
  ): PlannedOp {
    let x = this.prng.float() * this.total;
    let f: OpName = "get";
    for (const op of OP_NAMES) {
      x -= this.settings.mix[op];
      if (x < 0) {
        f = op;
        break;
      }
    }
    if (f === "list") return { f };
    const key = this.prng.pick(this.keys);
    if (f === "verify") {
      const mine = [...held.values()];
      if (mine.length > 0) {
        const h = this.prng.pick(mine);
        return { f, key: h.key, held: h };
      }
      f = "sign";
    }
    if (f === "restore") {
      const mine = [...backups.values()];
      if (mine.length > 0) {
        const b = this.prng.pick(mine);
        return { f, key: b.key, held: b };
      }
      f = "backup";
    }
    if (f === "sign") return { f, key, data: this.payload() };
    return { f, key };
  }

  /** 32 bytes to sign: a canary for the leak scan (client payloads must never land in a file or a log). */
  private payload(): Uint8Array {
    const out = new Uint8Array(32);
    for (let i = 0; i < 32; i += 4) {
      const v = this.prng.nextU32();
      out[i] = v & 0xff;
      out[i + 1] = (v >>> 8) & 0xff;
      out[i + 2] = (v >>> 16) & 0xff;
      out[i + 3] = (v >>> 24) & 0xff;
    }
    return out;
  }
}
