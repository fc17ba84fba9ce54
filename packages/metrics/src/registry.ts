/**
 * A registry per process (never prom-client's global one: tests run several nodes in one
 * process, and each must report only its own series).
 */
import { collectDefaultMetrics, Registry } from "prom-client";

/** Seconds; from a fast HSM call (~0.1 ms) to a write waiting out an election (~10 s). */
export const LATENCY_BUCKETS = Object.freeze([
  0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]) as number[];

/**
 * A registry with the process metrics (CPU, memory, event-loop lag) under `prefix`, unless
 * `processMetrics` is false: the registry's owner does not have the OS process to itself (the
 * simulator's nodes share one; each collector also starts an event-loop monitor and a GC
 * observer that nothing stops).
 */
export function newRegistry(prefix: string, options: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix });
  return registry;
}
