import { describe, expect, it } from "vitest";
import { STARTING } from "./health.js";
import { aggregatePoolStatus, type MemberObservation, statusMismatch } from "./status.js";
import { down, nodeStatus, POOL_ID, spec, up } from "./testing/fixtures.js";

function observe(members: MemberObservation[]) {
  return aggregatePoolStatus({
    poolId: POOL_ID,
    memberCount: 3,
    members,
    fabricDir: "/fabric",
    runDir: "/run",
    observedMs: 42,
  });
}

const member = (id: string, health: MemberObservation["health"]): MemberObservation => ({
  spec: spec(id),
  health,
  pid: 100 + Number(id.slice(1)),
});

describe("aggregatePoolStatus", () => {
  it("gives each member's scrape URL from its Status, and crash-looping with the last error line", () => {
    const s = observe([
      member("n1", up(nodeStatus("n1", { role: "primary", term: 3, metricsAddress: "127.0.0.1:9101" }))),
      { ...member("n2", down(nodeStatus("n2", { term: 3 }))), crashLoop: { lastError: "fabric gone" } },
      member("n3", up(nodeStatus("n3", { term: 3 }))),
    ]);
    expect(s.members.map((m) => [m.id, m.health, m.metricsUrl, m.healthDetail])).toEqual([
      ["n1", "up", "http://127.0.0.1:9101/metrics", ""],
      ["n2", "crash-looping", "", "fabric gone"],
      ["n3", "up", "", ""],
    ]);
    expect(s.state).toBe("degraded");
  });

  it("healthy: three members up, one primary, all ownership synced", () => {
    const s = observe([
      member("n1", up(nodeStatus("n1", { role: "primary", term: 3 }))),
      member("n2", up(nodeStatus("n2", { term: 3 }))),
      member("n3", up(nodeStatus("n3", { term: 3 }))),
    ]);
    expect(s.state).toBe("healthy");
    expect(s.primary).toBe("n1");
    expect(s.term).toBe(3);
    expect(s.members.map((m) => m.role)).toEqual(["primary", "secondary", "secondary"]);
    expect(s.members[1]).toMatchObject({
      server: "r2-s1",
      rack: "rack-2",
      pid: 102,
      health: "up",
      ownership: "synced",
    });
    expect(s.observedMs).toBe(42);
  });

  it("degraded: a member is down but a primary serves", () => {
    const s = observe([
      member("n1", up(nodeStatus("n1", { role: "primary", term: 3 }))),
      member("n2", up(nodeStatus("n2", { term: 3 }))),
      member("n3", down(nodeStatus("n3", { term: 3 }))),
    ]);
    expect(s.state).toBe("degraded");
    expect(s.members[2]?.health).toBe("down");
  });

  it("degraded: every member up but one still has ownership pending", () => {
    const s = observe([
      member("n1", up(nodeStatus("n1", { role: "primary", term: 3 }))),
      member("n2", up(nodeStatus("n2", { term: 3 }))),
      member("n3", up(nodeStatus("n3", { term: 3, ownership: "pending" }))),
    ]);
    expect(s.state).toBe("degraded");
    expect(s.members[2]?.ownership).toBe("pending");
  });

  it("degraded: a learner is not a full member yet", () => {
    const s = observe([
      member("n1", up(nodeStatus("n1", { role: "primary", term: 3 }))),
      member("n2", up(nodeStatus("n2", { term: 3 }))),
      member("n3", up(nodeStatus("n3", { term: 3, role: "learner" }))),
    ]);
    expect(s.state).toBe("degraded");
    expect(s.members[2]?.role).toBe("learner");
  });

  it("unavailable: nobody is up, or the only primary claim is down", () => {
    expect(observe([member("n1", STARTING), member("n2", STARTING), member("n3", STARTING)]).state).toBe(
      "unavailable",
    );
    const s = observe([
      member("n1", down(nodeStatus("n1", { role: "primary", term: 3 }))),
      member("n2", up(nodeStatus("n2", { term: 3, role: "candidate" }))),
      member("n3", up(nodeStatus("n3", { term: 3 }))),
    ]);
    expect(s.state).toBe("unavailable");
    expect(s.primary).toBe("");
    // A down member that was primary is shown as a secondary: it serves nothing.
    expect(s.members[0]?.role).toBe("secondary");
  });

  it("a primary deposed by a higher term is not the primary", () => {
    const s = observe([
      member("n1", up(nodeStatus("n1", { role: "primary", term: 3 }))),
      member("n2", up(nodeStatus("n2", { role: "candidate", term: 4 }))),
      member("n3", up(nodeStatus("n3", { term: 4 }))),
    ]);
    expect(s.primary).toBe("");
    expect(s.state).toBe("unavailable");
    expect(s.term).toBe(4);
  });

  it("of two primary claims the one at the higher term wins", () => {
    const s = observe([
      member("n1", up(nodeStatus("n1", { role: "primary", term: 3 }))),
      member("n2", up(nodeStatus("n2", { role: "primary", term: 5 }))),
      member("n3", up(nodeStatus("n3", { term: 5 }))),
    ]);
    expect(s.primary).toBe("n2");
    expect(s.members.map((m) => m.role)).toEqual(["secondary", "primary", "secondary"]);
  });

  it("members are listed by id whatever order they are observed in", () => {
    const s = observe([member("n3", STARTING), member("n1", STARTING), member("n2", STARTING)]);
    expect(s.members.map((m) => m.id)).toEqual(["n1", "n2", "n3"]);
  });
});

describe("statusMismatch", () => {
  it("refuses an answer from another node or another pool", () => {
    expect(statusMismatch(spec("n1"), POOL_ID, nodeStatus("n1"))).toBeNull();
    expect(statusMismatch(spec("n1"), POOL_ID, nodeStatus("n2"))).toMatch(/as node "n2"/);
    expect(statusMismatch(spec("n1"), POOL_ID, nodeStatus("n1", { poolId: "other" }))).toMatch(
      /pool "other"/,
    );
  });
});
