/**
 * When a chunk on a faulty link is delivered (pure): after the link's latency plus a
 * uniform jitter, never before the previous chunk (TCP keeps order), plus its
 * transmission time at the bandwidth cap.
 */
import type { LinkFaults } from "./link-proxy.js";

export interface ScheduleInput {
  nowMs: number;
  /** Due time of the previous chunk in the same direction. */
  lastDueMs: number;
  sizeBytes: number;
  faults: LinkFaults;
  /** Uniform [0, 1); drawn only when there is jitter. */
  random: () => number;
}

export function schedule(i: ScheduleInput): number {
  const jitter = i.faults.jitterMs > 0 ? i.random() * i.faults.jitterMs : 0;
  const start = Math.max(i.nowMs + i.faults.latencyMs + jitter, i.lastDueMs);
  const transmitMs = i.faults.bandwidthBytesPerS > 0 ? (i.sizeBytes * 1000) / i.faults.bandwidthBytesPerS : 0;
  return start + transmitMs;
}
