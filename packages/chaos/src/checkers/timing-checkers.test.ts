import { describe, expect, it } from "vitest";
import { HistoryBuilder } from "../testing/history-builder.js";
import { faultsOf, type MemberSample, type StatusSample } from "../timeline.js";
import { checkAvailability } from "./availability.js";
import { checkHealing, healingOf } from "./healing.js";
import { checkHypothesis } from "./hypothesis.js";
import { checkLatency, percentile } from "./latency.js";

const member = (id: string, health = "up", ownership = "synced"): MemberSample => ({
  id,
  server: `${id}-server`,
  rack: `${id}-rack`,
  role: "secondary",
  health,
  ownership,
});
const healthy = (t: number, primary = "n1"): StatusSample => ({
  timeMs: t,
  state: "healthy",
  primary,
  term: 1,
  members: [member("n1"), member("n2"), member("n3")],
});
const degraded = (t: number, primary = "n2", down = "n1"): StatusSample => ({
  timeMs: t,
  state: "degraded",
  primary,
  term: 2,
  members: ["n1", "n2", "n3"].map((id) => member(id, id === down ? "down" : "up")),
});

describe("healing checker", () => {
  it("measures from the fault's start to the first healthy sample after the pool was seen degraded, and the failover", () => {
    const h = new HistoryBuilder()
      .at(1000)
      .fault("start", "kill", 1, ["n1"])
      .at(4000)
      .fault("heal", "kill", 1, ["n1"]);
    const samples = [
      healthy(500),
      healthy(1200),
      degraded(1800, ""),
      degraded(2600, "n2"),
      degraded(4200),
      healthy(6100, "n2"),
    ];
    const [fault] = faultsOf(h.events);
    const r = healingOf(fault as NonNullable<typeof fault>, samples);
    expect(r).toMatchObject({
      outcome: "healed",
      degradedAtMs: 1800,
      healthyAtMs: 6100,
      healingMs: 5100,
      failoverMs: 1600,
      healMs: 4000,
    });
  });

  it("is invalid when the pool is not healthy at the end", () => {
    const h = new HistoryBuilder().at(1000).fault("start", "kill", 1, ["n2"]);
    const r = checkHealing({
      faults: faultsOf(h.events),
      samples: [healthy(0), degraded(2000, "n1", "n2")],
      endMs: 3000,
    });
    expect(r.valid).toBe(false);
    expect(r.summary).toMatch(/not back to three healthy, synced members/);
    expect((r.details as { faults: { outcome: string }[] }).faults[0]?.outcome).toBe("not-healed");
  });

  it("reports a fault the nemesis could not inject as not injected", () => {
    const h = new HistoryBuilder().at(1000).fault("error", "kill", 1, []);
    const r = checkHealing({ faults: faultsOf(h.events), samples: [healthy(0), healthy(2000)], endMs: 3000 });
    expect(r.valid).toBe(true);
    expect((r.details as { faults: { outcome: string }[] }).faults[0]?.outcome).toBe("not-injected");
  });
});

describe("availability checker", () => {
  it("finds a window with failed attempts and no success, attributed to the fault active then", () => {
    const h = new HistoryBuilder()
      .at(100)
      .invoke(0, "get", "k")
      .at(200)
      .ok(0, { version: 1 })
      .at(1000)
      .fault("start", "kill", 7, ["n1"])
      .at(1100)
      .invoke(0, "get", "k")
      .at(2100)
      .fail(0, "Timeout")
      .at(2200)
      .invoke(0, "get", "k")
      .at(3200)
      .fail(0, "Timeout")
      .at(3300)
      .invoke(0, "get", "k")
      .at(3400)
      .ok(0, { version: 1 })
      .at(5000)
      .invoke(1, "get", "k")
      .at(9000)
      .fail(1, "Timeout")
      .at(9100)
      .invoke(1, "get", "k")
      .at(9200)
      .ok(1, { version: 1 });
    const faults = faultsOf(h.events);
    const healing = [
      {
        faultId: 7,
        kind: "kill",
        targets: ["n1"],
        startMs: 1000,
        healthyAtMs: 3300,
        outcome: "healed" as const,
      },
    ];
    const r = checkAvailability({
      events: h.events,
      faults,
      healing,
      fromMs: 0,
      toMs: 10_000,
      minGapMs: 1000,
    });
    const d = r.details as {
      windows: { startMs: number; endMs: number; faults: number[]; attempts: number }[];
      availability: number;
    };
    expect(d.windows).toEqual([
      { startMs: 200, endMs: 3400, durationMs: 3200, attempts: 2, faults: [7] },
      { startMs: 3400, endMs: 9200, durationMs: 5800, attempts: 1, faults: [] },
    ]);
    expect(d.availability).toBeCloseTo(3 / 6);
    expect(r.summary).toMatch(/1 not explained by any fault/);
  });

  it("a quiet stretch with no attempts is not unavailability", () => {
    const h = new HistoryBuilder()
      .at(100)
      .invoke(0, "get", "k")
      .at(200)
      .ok(0, { version: 1 })
      .at(8000)
      .invoke(0, "get", "k")
      .at(8100)
      .ok(0, { version: 1 });
    const r = checkAvailability({
      events: h.events,
      faults: [],
      healing: [],
      fromMs: 0,
      toMs: 9000,
      minGapMs: 1000,
    });
    expect((r.details as { windows: unknown[] }).windows).toEqual([]);
  });
});

describe("latency and the steady-state hypothesis", () => {
  it("nearest-rank percentiles", () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(xs, 50), percentile(xs, 99), percentile(xs, 100), percentile([], 99)]).toEqual([
      50, 99, 100, 0,
    ]);
  });

  it("latency counts answered operations only (a KeyNotFound is an answer, a timeout is not)", () => {
    const h = new HistoryBuilder()
      .at(0)
      .invoke(0, "get", "k")
      .at(30)
      .notFound(0)
      .at(40)
      .invoke(0, "get", "k")
      .at(5040)
      .fail(0, "Timeout");
    const d = checkLatency(h.events).details as { overall: { count: number; maxMs: number } };
    expect(d.overall).toMatchObject({ count: 1, maxMs: 30 });
  });

  it("the hypothesis fails on the measurement that breaks it and names it", () => {
    const m = {
      availability: 0.7,
      p99LatencyMs: 900,
      maxHealingMs: 12_000,
      unhealedFaults: 0,
      longestUnavailableMs: 4000,
    };
    const ok = checkHypothesis({ minAvailability: 0.5, maxP99LatencyMs: 1000, maxHealingMs: 20_000 }, m);
    expect(ok.valid).toBe(true);
    const bad = checkHypothesis({ minAvailability: 0.9, maxHealingMs: 10_000 }, m);
    expect(bad.valid).toBe(false);
    expect(bad.summary).toBe(
      "broken: availability 70.0% (wanted >= 90.0%); healing time 12.0 s (wanted <= 10.0 s)",
    );
  });
});
