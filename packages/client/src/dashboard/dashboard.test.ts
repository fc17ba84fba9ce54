import { describe, expect, it } from "vitest";
import type { AuditRecord } from "../sdk/types.js";
import { AUDIT_PAGE_RECORDS, newestRecords, parseAuditRequest } from "./audit-panel.js";
import { dashboardPage } from "./page.js";
import { countersOf, rateBetween } from "./request-rates.js";
import { dashboardView, racksOf } from "./view.js";

const scrape = (requests: number, sum: number, count: number) =>
  [
    "# TYPE hsmpool_node_requests_total counter",
    `hsmpool_node_requests_total{operation="Sign",result="ok",node="n1"} ${requests - 1}`,
    `hsmpool_node_requests_total{operation="GetKey",result="KeyNotFound",node="n1"} 1`,
    "# TYPE hsmpool_node_request_duration_seconds histogram",
    `hsmpool_node_request_duration_seconds_sum{operation="Sign",result="ok"} ${sum}`,
    `hsmpool_node_request_duration_seconds_count{operation="Sign",result="ok"} ${count}`,
    "",
  ].join("\n");

describe("dashboard data", () => {
  it("turns two scrapes into a request rate and a mean latency; a restarted node gives no point", () => {
    const a = countersOf(scrape(10, 0.5, 10), 1000);
    const b = countersOf(scrape(30, 1.5, 30), 3000);
    expect(rateBetween(a, b)).toEqual({ atMs: 3000, rate: 10, latencyMs: 50 });
    expect(rateBetween(b, countersOf(scrape(2, 0.01, 2), 4000))).toBeNull();
    expect(rateBetween(a, countersOf(scrape(10, 0.5, 10), 2000))).toEqual({
      atMs: 2000,
      rate: 0,
      latencyMs: null,
    });
  });

  it("reads racks from fabric.json and keeps only live members' rates", () => {
    const racks = racksOf({
      racks: [{ id: "rack-1", servers: [{ id: "r1-s1" }, { id: "r1-s2" }] }, { bad: 1 }],
    });
    expect(racks).toEqual([{ id: "rack-1", servers: ["r1-s1", "r1-s2"] }]);
    expect(racksOf("nonsense")).toEqual([]);
    const v = dashboardView({
      nowMs: 5,
      status: null,
      error: "HFC gone",
      racks,
      rates: new Map([["n9", [{ atMs: 1, rate: 2, latencyMs: 3 }]]]),
    });
    expect(v).toEqual({ observedMs: 5, pool: null, error: "HFC gone", racks, rates: {}, partitioned: [] });
  });

  it("embeds the first view so that no value can close the script element", () => {
    const v = dashboardView({
      nowMs: 1,
      status: null,
      error: "</script><img src=x>",
      racks: [],
      rates: new Map(),
    });
    const html = dashboardPage("tok123", v);
    expect(html).toContain('const TOKEN = "tok123"');
    expect(html).not.toContain("</script><img");
    expect(html).toContain("\\u003c/script>");
    // Self-contained: the only URL in the page is the SVG namespace name.
    expect(html.match(/https?:\/\/[^"' )]+/g)).toEqual(["http://www.w3.org/2000/svg"]);
    expect(html).not.toMatch(/<script src=|<link rel="stylesheet"/);
  });
});

describe("dashboard audit panel", () => {
  const record = (member: string, seq: number, timeMs: number): AuditRecord => ({
    seq,
    timeMs,
    member,
    principal: "admin",
    principalId: "oid",
    operation: "CreateKey",
    key: "k",
    version: 1,
    result: "OK",
    requestId: `r${seq}`,
    prev: "",
    hash: "",
  });

  it("keeps the newest records over all members and advances each member's cursor", () => {
    const many = Array.from({ length: 60 }, (_, i) => record("n1", i + 1, 100 + i));
    const r = newestRecords(
      [
        { address: "a1", member: "n1", records: many },
        { address: "a2", member: "n2", records: [record("n2", 7, 1000)] },
        { address: "a3", member: "n3", records: [] },
      ],
      { a3: 4 },
    );
    expect(r.after).toEqual({ a1: 60, a2: 7, a3: 4 });
    expect(r.records).toHaveLength(AUDIT_PAGE_RECORDS);
    expect(r.records.at(-1)?.member).toBe("n2");
    expect(r.records[0]?.seq).toBe(60 - AUDIT_PAGE_RECORDS + 2);
    expect(r.more).toBe(false);
  });

  it("accepts only a JWT and a cursor of whole numbers", () => {
    const jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA";
    expect(parseAuditRequest({ token: jwt, after: { a1: 3 } })).toEqual({ token: jwt, after: { a1: 3 } });
    for (const bad of [
      {},
      { token: "Bearer x" },
      { token: jwt, after: { a1: -1 } },
      { token: jwt, after: [1] },
    ])
      expect(() => parseAuditRequest(bad)).toThrow(/token must be|after/);
  });
});
