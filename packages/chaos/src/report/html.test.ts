import { describe, expect, it } from "vitest";
import { checkLinearizability } from "../checkers/linearizability.js";
import type { RunResults } from "../results.js";
import { HistoryBuilder } from "../testing/history-builder.js";
import type { StatusSample } from "../timeline.js";
import { renderReport } from "./html.js";

const sample = (t: number, primary: string, n1 = "up"): StatusSample => ({
  timeMs: t,
  state: n1 === "up" ? "healthy" : "degraded",
  primary,
  term: 1,
  members: ["n1", "n2", "n3"].map((id) => ({
    id,
    server: "s",
    rack: "r",
    role: id === primary ? "primary" : "secondary",
    health: id === "n1" ? n1 : "up",
    ownership: "synced",
  })),
});

function results(over: Partial<RunResults>, h: HistoryBuilder): RunResults {
  return {
    valid: false,
    scenario: {
      name: "demo",
      file: "chaos/demo.yaml",
      description: 'kill <script>alert("x")</script> & more',
      seed: 3,
      durationMs: 10_000,
    },
    runDir: "/tmp/run",
    startedAt: "2026-01-01T00:00:00.000Z",
    elapsedMs: 12_000,
    phases: { workloadFromMs: 0, workloadToMs: 3000, healedFromMs: 3000, endMs: 4000 },
    checkers: { linearizability: checkLinearizability(h.events, ["k"], 1000) },
    notes: [],
    ...over,
  };
}

describe("report.html", () => {
  const h = new HistoryBuilder()
    .at(100)
    .invoke(0, "create", "k")
    .at(200)
    .ok(0, { version: 1 })
    .at(1000)
    .fault("start", "kill", 1, ["n1"])
    .at(1100)
    .invoke(1, "get", "k")
    .at(1300)
    .notFound(1)
    .at(1400)
    .invoke(0, "delete", "k")
    .at(2400)
    .unknown(0)
    .at(2500)
    .fault("heal", "kill", 1, ["n1"]);
  const html = renderReport({
    results: results({}, h),
    events: h.events,
    samples: [sample(0, "n1"), sample(1200, "", "down"), sample(2000, "n2", "down"), sample(3000, "n2")],
  });

  it("is one self-contained page: no external fetch of any kind", () => {
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, "")).not.toMatch(
      /(src|href)\s*=|https?:\/\/|<link\b|@import/i,
    );
    expect(html).toContain("default-src 'none'");
  });

  it("escapes text from the scenario and history", () => {
    expect(html).not.toContain("<script>alert");
    expect(html).toContain("kill &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more");
  });

  it("shows the verdict, the fault on the timeline, each operation coloured by outcome, and the primary over time", () => {
    expect(html).toContain('<span class="badge invalid">INVALID</span>');
    expect(html).toMatch(/<title>#1 kill n1; healed at 2\.5 s<\/title>/);
    expect(html).toMatch(/class="op ok"[^>]*><title>#0 p0 create k → ok v1/);
    expect(html).toMatch(/class="op answered"[^>]*><title>#3 p1 get k → fail KeyNotFound/);
    expect(html).toMatch(/class="op unknown"[^>]*><title>#5 p0 delete k → unknown Timeout/);
    expect(html).toMatch(/<title>none from 1\.2 s to 2\.0 s<\/title>/);
    expect(html).toMatch(/<text [^>]*class="seg">n2<\/text>/);
  });

  it("explains a linearizability violation with its witness operations", () => {
    const bad = new HistoryBuilder()
      .invoke(0, "create", "k")
      .ok(0, { version: 1 })
      .invoke(1, "get", "k")
      .notFound(1);
    const page = renderReport({ results: results({}, bad), events: bad.events, samples: [] });
    expect(page).toContain("<h2>Linearizability</h2>");
    expect(page).toMatch(/no order of the 2 operations on k explains what the clients saw/);
    expect(page).toMatch(/<li>#2 p1 get k → fail KeyNotFound/);
  });
});
