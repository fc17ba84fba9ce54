import { describe, expect, it } from "vitest";
import {
  Counter,
  Histogram,
  LATENCY_BUCKETS,
  newRegistry,
  parsePrometheusText,
  serveMetrics,
} from "./index.js";

describe("metrics", () => {
  it("serves its registry as Prometheus text on 127.0.0.1 and nothing else", async () => {
    const registry = newRegistry("test_");
    const requests = new Counter({
      name: "test_requests_total",
      help: "requests",
      labelNames: ["operation", "result"],
      registers: [registry],
    });
    const latency = new Histogram({
      name: "test_latency_seconds",
      help: "latency",
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    });
    requests.inc({ operation: "Sign", result: "ok" }, 3);
    latency.observe(0.003);
    const server = await serveMetrics({ registry });
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const res = await fetch(server.url);
      expect(res.status).toBe(200);
      const parsed = parsePrometheusText(await res.text());
      expect(parsed.types.get("test_requests_total")).toBe("counter");
      expect(parsed.types.get("test_latency_seconds")).toBe("histogram");
      const sign = parsed.samples.find(
        (s) => s.name === "test_requests_total" && s.labels.operation === "Sign",
      );
      expect(sign?.value).toBe(3);
      const count = parsed.samples.find((s) => s.name === "test_latency_seconds_count");
      expect(count?.value).toBe(1);
      // process metrics come with the prefix
      expect([...parsed.types.keys()].some((n) => n.startsWith("test_process_"))).toBe(true);
      expect((await fetch(server.url.replace("/metrics", "/"))).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it("leaves the process metrics out when the owner does not have the process to itself", async () => {
    const shared = newRegistry("shared_", { processMetrics: false });
    new Counter({ name: "shared_calls_total", help: "calls", registers: [shared] }).inc();
    const names = [...parsePrometheusText(await shared.metrics()).types.keys()];
    expect(names).toEqual(["shared_calls_total"]);
    const own = [...parsePrometheusText(await newRegistry("own_").metrics()).types.keys()];
    expect(own.some((n) => n.startsWith("own_process_"))).toBe(true);
  });

  it("refuses text that is not the Prometheus format", () => {
    expect(() => parsePrometheusText("<html>hello</html>\n")).toThrow(/not Prometheus text/);
    expect(() => parsePrometheusText("x_total abc\n")).toThrow(/numeric/);
    const ok = parsePrometheusText('# HELP a b\n# TYPE a gauge\na{x="q\\"r"} 2.5\n');
    expect(ok.samples).toEqual([{ name: "a", labels: { x: 'q"r' }, value: 2.5 }]);
    // prom-client writes an unsampled event-loop mean as "Nan"; any case of NaN is a value
    for (const nan of ["NaN", "Nan", "nan"])
      expect(Number.isNaN(parsePrometheusText(`lag_mean ${nan}\n`).samples[0]?.value)).toBe(true);
  });
});
