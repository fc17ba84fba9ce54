import { type HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import { describe, expect, it } from "vitest";
import { FAULT_KINDS, type FaultKind } from "./schema.js";
import { parseScenario } from "./validate.js";

const ALL = new Set<FaultKind>(FAULT_KINDS);
const KILL_ONLY = new Set<FaultKind>(["kill", "pause", "random"]);

function refusal(text: string, supported: ReadonlySet<FaultKind> = ALL): HsmPoolError {
  try {
    parseScenario(text, "chaos/t.yaml", { supportedFaults: supported });
  } catch (e) {
    if (isHsmPoolError(e)) return e;
    throw e;
  }
  throw new Error("expected the scenario to be refused");
}

const GOOD = `name: kill-primary
description: kill the primary, restart it 5 s later
duration: 20s
seed: 7
pool:
  healthInterval: 200ms
workload:
  clients: 3
  rate: 15
  keys: 4
  opTimeout: 5s
  mix: { create: 2, get: 2, list: 1, delete: 1, sign: 1, verify: 1 }
nemesis:
  - at: 5s
    fault: kill
    target: primary
    healAfter: 5s
  - every: 4s
    from: 2s
    jitter: 1s
    fault: random
    choices:
      - fault: kill
        target: secondary
      - fault: pause
        target: n2
hypothesis:
  minAvailability: 80%
  maxP99Latency: 3s
  maxHealing: 30s
`;

describe("scenario files", () => {
  it("a well-formed scenario becomes typed settings with units resolved", () => {
    const s = parseScenario(GOOD, "chaos/t.yaml", { supportedFaults: ALL });
    expect(s).toMatchObject({
      name: "kill-primary",
      durationMs: 20_000,
      seed: 7,
      pool: { healthIntervalMs: 200, failureThreshold: 3 },
      workload: { clients: 3, rateOpsPerS: 15, keys: 4, opTimeoutMs: 5000, mix: { create: 2, verify: 1 } },
      hypothesis: { minAvailability: 0.8, maxP99LatencyMs: 3000, maxHealingMs: 30_000 },
    });
    expect(s.nemesis).toEqual([
      {
        line: 14,
        fault: { kind: "kill", target: "primary" },
        atMs: 5000,
        fromMs: 0,
        jitterMs: 0,
        healAfterMs: 5000,
      },
      {
        line: 18,
        fault: {
          kind: "random",
          choices: [
            { kind: "kill", target: "secondary" },
            { kind: "pause", target: "n2" },
          ],
        },
        everyMs: 4000,
        fromMs: 2000,
        jitterMs: 1000,
      },
    ]);
  });

  it("reports every problem with file:line, in line order", () => {
    const e = refusal(`name: Bad Name
duration: soon
workload:
  clients: 0
  rat: 10
nemesis:
  - at: 1s
    fault: kil
`);
    expect(e.code).toBe("BadParameter");
    expect(e.message.split("\n")).toEqual([
      'chaos/t.yaml:1: name must be lower-case words joined by -, got "Bad Name"',
      'chaos/t.yaml:2: duration must be a duration like 500ms, 5s or 2m, got "soon"',
      "chaos/t.yaml:4: workload.clients must be a whole number from 1 to 64, got 0",
      "chaos/t.yaml:5: workload.rat is not a known field (did you mean rate?); allowed: clients, rate, keys, opTimeout, mix",
      'chaos/t.yaml:8: fault must be one of kill, pause, partition, link, clock, disk, hsm, server-loss, rack-loss, random, got "kil"',
    ]);
  });

  it("a YAML syntax error names its line", () => {
    const e = refusal("name: x\nduration: 5s\nworkload:\n  clients: [1, 2\n");
    expect(e.message).toMatch(/^chaos\/t\.yaml:\d+: YAML: /);
  });

  it("an empty file and missing required fields are refused", () => {
    expect(refusal("").message).toBe(
      "chaos/t.yaml:1: the file is empty; a scenario needs at least name, duration and workload",
    );
    expect(refusal("description: hi\n").message.split("\n")).toEqual([
      "chaos/t.yaml:1: name is required",
      "chaos/t.yaml:1: duration is required",
      "chaos/t.yaml:1: workload is required",
    ]);
  });

  it("a nemesis the harness cannot inject yet is refused as not supported yet, at its line", () => {
    const e = refusal(
      `name: p
duration: 10s
workload: { clients: 1 }
nemesis:
  - at: 2s
    fault: partition
    shape: bridge
`,
      KILL_ONLY,
    );
    expect(e.message).toBe("chaos/t.yaml:6: not supported yet: partition");
  });

  it("a random fault whose choices include an unsupported nemesis is refused too", () => {
    const e = refusal(
      `name: p
duration: 10s
workload: { clients: 1 }
nemesis:
  - every: 3s
    fault: random
    choices:
      - fault: kill
      - fault: hsm
        errorRate: 0.5
`,
      KILL_ONLY,
    );
    expect(e.message).toBe("chaos/t.yaml:9: not supported yet: hsm");
  });

  it("schedules must be at or every, inside the run, and heal before the next firing", () => {
    const e = refusal(`name: p
duration: 10s
workload: { clients: 1 }
nemesis:
  - fault: kill
  - at: 12s
    fault: kill
  - every: 2s
    healAfter: 3s
    fault: pause
`);
    expect(e.message.split("\n")).toEqual([
      "chaos/t.yaml:5: a nemesis entry needs exactly one of at: <time> or every: <interval>",
      "chaos/t.yaml:6: at 12000 ms is not before the end of the workload (duration 10000 ms)",
      "chaos/t.yaml:9: healAfter (3000 ms) must be shorter than every (2000 ms) so faults do not pile up",
    ]);
  });

  it("fault fields are checked per kind (a kill has no latency; a link fault needs an effect)", () => {
    const e = refusal(`name: p
duration: 10s
workload: { clients: 1 }
nemesis:
  - at: 1s
    fault: kill
    latency: 5ms
  - at: 2s
    fault: link
    target: n9x
`);
    expect(e.message.split("\n")).toEqual([
      "chaos/t.yaml:7: nemesis (line 5).latency is not a known field; allowed: fault, at, every, from, until, jitter, healAfter, target",
      "chaos/t.yaml:8: a link fault needs at least one of latency, jitter, bandwidth, resetProbability, blackhole",
      'chaos/t.yaml:10: nemesis (line 8).target must be all, primary, secondary, random or a node id, got "n9x"',
    ]);
  });

  it("a mix with no create cannot feed the other operations", () => {
    const e = refusal(`name: p
duration: 10s
workload:
  mix: { get: 1 }
`);
    expect(e.message).toBe(
      "chaos/t.yaml:4: workload.mix needs create > 0: the other operations act on keys the workload creates",
    );
  });

  it("availability accepts 0.9 or 90% and refuses 120%", () => {
    const base = "name: p\nduration: 10s\nworkload: { clients: 1 }\nhypothesis:\n  minAvailability: ";
    expect(parseScenario(`${base}0.9\n`, "f", { supportedFaults: ALL }).hypothesis.minAvailability).toBe(0.9);
    expect(parseScenario(`${base}"90%"\n`, "f", { supportedFaults: ALL }).hypothesis.minAvailability).toBe(
      0.9,
    );
    expect(refusal(`${base}120%\n`).message).toBe(
      'chaos/t.yaml:5: hypothesis.minAvailability must be a fraction like 0.9 or "90%", got "120%"',
    );
  });
});

describe("regionLoss", () => {
  const base = "name: region\nduration: 20s\nworkload: { clients: 2 }\n";
  it("reads backupEvery, at and the test-only broken restore", () => {
    const s = parseScenario(
      `${base}regionLoss:\n  backupEvery: 5s\n  at: 14s\n  unsafeRestoreSkipsKey: true\n`,
      "r.yaml",
      {
        supportedFaults: ALL,
      },
    );
    expect(s.regionLoss).toEqual({ backupEveryMs: 5000, atMs: 14_000, unsafeRestoreSkipsKey: true });
  });
  it("refuses a loss before the first backup or after the workload, and missing fields", () => {
    expect(refusal(`${base}regionLoss:\n  backupEvery: 5s\n  at: 25s\n`).message).toBe(
      "chaos/t.yaml:6: regionLoss.at must come after the first backup (backupEvery) and before the end of the workload (duration)",
    );
    expect(refusal(`${base}regionLoss:\n  at: 10s\n`).message).toBe(
      "chaos/t.yaml:5: regionLoss.backupEvery is required",
    );
  });
});
