/**
 * Request rate and mean latency per member, from two scrapes of its Prometheus
 * endpoint (pure): the growth of `hsmpool_node_requests_total` and of the request
 * duration histogram's sum and count between them.
 */
import { parsePrometheusText } from "@hsmpool/metrics";

export interface RequestCounters {
  atMs: number;
  requests: number;
  seconds: number;
  observed: number;
}

export interface RatePoint {
  atMs: number;
  /** Requests per second over the interval. */
  rate: number;
  /** Mean latency of the interval's requests in ms (null: none completed). */
  latencyMs: number | null;
}

const sum = (samples: { name: string; value: number }[], name: string) =>
  samples.filter((s) => s.name === name).reduce((a, s) => a + s.value, 0);

export function countersOf(text: string, atMs: number): RequestCounters {
  const { samples } = parsePrometheusText(text);
  return {
    atMs,
    requests: sum(samples, "hsmpool_node_requests_total"),
    seconds: sum(samples, "hsmpool_node_request_duration_seconds_sum"),
    observed: sum(samples, "hsmpool_node_request_duration_seconds_count"),
  };
}

/** Null when the interval is empty or the counters went backwards (the node restarted). */
export function rateBetween(before: RequestCounters, after: RequestCounters): RatePoint | null {
  const dt = (after.atMs - before.atMs) / 1000;
  const dn = after.requests - before.requests;
  const dObserved = after.observed - before.observed;
  if (dt <= 0 || dn < 0 || dObserved < 0) return null;
  return {
    atMs: after.atMs,
    rate: dn / dt,
    latencyMs: dObserved > 0 ? ((after.seconds - before.seconds) / dObserved) * 1000 : null,
  };
}
