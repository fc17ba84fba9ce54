export { Counter, Gauge, Histogram, type Registry } from "prom-client";
export { LATENCY_BUCKETS, newRegistry } from "./registry.js";
export { type MetricsServer, serveMetrics } from "./server.js";
export { type MetricSample, type ParsedMetrics, parsePrometheusText } from "./text.js";
export { secondsSince } from "./timing.js";
