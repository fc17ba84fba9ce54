import { NO_UPGRADE } from "@hsmpool/healing";
import type { HealingEvent, PoolStatus } from "@hsmpool/wire";
import { describe, expect, it } from "vitest";
import { healingLine, healingSection, statusJson, statusTable } from "./status-format.js";

const t0 = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
const replace: HealingEvent = {
  id: "h2",
  kind: "replace",
  memberId: "n1",
  replacementId: "n4",
  phase: "failed",
  phases: [
    { phase: "detected", atMs: t0 },
    { phase: "fenced", atMs: t0 + 12 },
    { phase: "launching", atMs: t0 + 12 },
    { phase: "attesting", atMs: t0 + 40 },
    { phase: "failed", atMs: t0 + 1500 },
  ],
  reason: "join refused: attestation, check signer",
};

function pool(fields: Partial<PoolStatus> = {}): PoolStatus {
  return {
    poolId: "pool-f",
    state: "degraded",
    term: 4,
    primary: "",
    members: [],
    fabricDir: "/f",
    runDir: "/r",
    observedMs: t0,
    healing: [],
    healingPaused: false,
    lostServers: [],
    upgrade: NO_UPGRADE,
    metricsUrl: "",
    ...fields,
  };
}

describe("status formatting of healing", () => {
  it("shows a healing as one line: kind, members, phase, reason, and each phase's time since detection", () => {
    expect(healingLine(replace)).toBe(
      "h2 replace n1 -> n4: FAILED (join refused: attestation, check signer) | detected 03:04:05.678, " +
        "fenced +12 ms, launching +12 ms, attesting +40 ms, failed +1.50 s",
    );
  });

  it("the table says when healing is paused, which servers are lost and how an upgrade stands", () => {
    const s = pool({
      healing: [replace],
      healingPaused: true,
      lostServers: ["r1-s1"],
      upgrade: { bundleDir: "/b2", svn: 2, state: "failed", reason: "n4: join refused", launched: ["n4"] },
    });
    const text = statusTable(s);
    expect(text).toMatch(/^pool pool-f {2}degraded {2}term 4 {2}primary \(none\)\n/);
    expect(healingSection(s).split("\n")).toEqual([
      "healing is PAUSED: nothing is relaunched (`hsmpool healing resume`)",
      "lost servers (never used again): r1-s1",
      "upgrade to svn 2 from /b2: failed (n4: join refused)",
      "HEALING",
      healingLine(replace),
      "",
    ]);
    expect(text.endsWith(healingSection(s))).toBe(true);
    expect(healingSection(pool())).toBe("");
  });

  it("status --json carries the healing records as data, and no upgrade as null", () => {
    const j = statusJson(pool({ healing: [replace], lostServers: ["r1-s1"] }));
    expect(j.primary).toBeNull();
    expect(j.healing).toEqual([replace]);
    expect(j.lostServers).toEqual(["r1-s1"]);
    expect(j.upgrade).toBeNull();
    expect(j.healingPaused).toBe(false);
  });
});
