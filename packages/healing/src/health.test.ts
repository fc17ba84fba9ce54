import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  adoptedHealth,
  type HealthConfig,
  type MemberHealth,
  missedHealthChecksFor,
  probeFailed,
  probeSucceeded,
  processExited,
  STARTING,
  validateHealthConfig,
} from "./health.js";
import { nodeStatus } from "./testing/fixtures.js";

const config: HealthConfig = { healthIntervalMs: 250, failureThreshold: 3, serverLostAfterMs: 30_000 };
const status = nodeStatus("n1");

function fail(state: MemberHealth, times: number, cfg = config): { state: MemberHealth; downEvents: number } {
  let s = state;
  let downEvents = 0;
  for (let i = 0; i < times; i++) {
    const step = probeFailed("n1", s, "connection refused", i, cfg);
    downEvents += step.events.filter((e) => e.type === "member-down").length;
    s = step.state;
  }
  return { state: s, downEvents };
}

describe("member health", () => {
  it("a starting member is down until its first answer, then up with one member-up event", () => {
    expect(STARTING.health).toBe("down");
    expect(fail(STARTING, 10).downEvents).toBe(0); // never up: no down transition to report
    const step = probeSucceeded("n1", STARTING, status, 5);
    expect(step.state.health).toBe("up");
    expect(step.events).toEqual([{ type: "member-up", memberId: "n1", atMs: 5 }]);
    expect(probeSucceeded("n1", step.state, status, 6).events).toEqual([]);
  });

  it("goes down after exactly failureThreshold consecutive misses, for any threshold", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), (threshold) => {
        const cfg = { healthIntervalMs: 100, failureThreshold: threshold, serverLostAfterMs: 30_000 };
        const upState = probeSucceeded("n1", STARTING, status, 0).state;
        expect(fail(upState, threshold - 1, cfg).state.health).toBe("up");
        const after = fail(upState, threshold, cfg);
        expect(after.state.health).toBe("down");
        expect(after.downEvents).toBe(1);
        // Further misses do not repeat the event.
        expect(fail(upState, threshold + 5, cfg).downEvents).toBe(1);
      }),
    );
  });

  it("a success in between resets the miss count", () => {
    const upState = probeSucceeded("n1", STARTING, status, 0).state;
    const two = fail(upState, 2).state;
    const again = probeSucceeded("n1", two, status, 3).state;
    expect(again.consecutiveFailures).toBe(0);
    expect(fail(again, 2).state.health).toBe("up");
  });

  it("keeps the last status of a down member so the pool status can still show its last role", () => {
    const upState = probeSucceeded("n1", STARTING, nodeStatus("n1", { role: "primary" }), 0).state;
    const downState = fail(upState, 3).state;
    expect(downState.lastStatus?.role).toBe("primary");
    expect(downState.lastError).toBe("connection refused");
  });

  it("a process exit takes an up member down at once", () => {
    const upState = probeSucceeded("n1", STARTING, status, 0).state;
    const step = processExited("n1", upState, "process exited (signal SIGKILL)", 9);
    expect(step.state.health).toBe("down");
    expect(step.events).toEqual([
      { type: "member-down", memberId: "n1", atMs: 9, reason: "process exited (signal SIGKILL)" },
    ]);
  });

  it("refuses health settings outside their ranges", () => {
    expect(validateHealthConfig({ healthIntervalMs: 250, failureThreshold: 3 })).toEqual(config);
    expect(() => validateHealthConfig({ healthIntervalMs: 5, failureThreshold: 3 })).toThrow(
      /healthIntervalMs/,
    );
    expect(() => validateHealthConfig({ healthIntervalMs: 250, failureThreshold: 0 })).toThrow(
      /failureThreshold/,
    );
    expect(() => validateHealthConfig({ healthIntervalMs: 2.5, failureThreshold: 3 })).toThrow(
      /healthIntervalMs/,
    );
    expect(() =>
      validateHealthConfig({ healthIntervalMs: 250, failureThreshold: 3, serverLostAfterMs: 500 }),
    ).toThrow(/serverLostAfterMs must be an integer from 750/);
  });

  it("a member is a lost server only after answering since launch and then missing every check for the window", () => {
    const cfg = { ...config, serverLostAfterMs: 4000 };
    // Never answered since its launch: still starting, never "lost" however long it takes.
    expect(missedHealthChecksFor(fail(STARTING, 100).state, 1_000_000, cfg)).toBeNull();
    const answered = probeSucceeded("n1", STARTING, status, 1000).state;
    expect(missedHealthChecksFor(answered, 60_000, cfg)).toBeNull(); // up: nothing missed
    const silent = fail(answered, 3).state;
    expect(silent.health).toBe("down");
    expect(missedHealthChecksFor(silent, 4999, cfg)).toBeNull(); // SIGSTOPped, window not over
    expect(missedHealthChecksFor(silent, 5000, cfg)).toBe(4000);
    // An answer in between restarts the window.
    const back = fail(probeSucceeded("n1", silent, status, 4500).state, 3).state;
    expect(missedHealthChecksFor(back, 8000, cfg)).toBeNull();
    expect(missedHealthChecksFor(back, 8500, cfg)).toBe(4000);
  });

  it("an adopted process is not up until it answers, but its silence counts from the adoption (lost while the HFC was down)", () => {
    const cfg = { ...config, serverLostAfterMs: 4000 };
    const adopted = adoptedHealth(10_000);
    expect(adopted.health).toBe("down");
    const silent = fail(adopted, 50).state;
    expect(missedHealthChecksFor(silent, 13_999, cfg)).toBeNull();
    expect(missedHealthChecksFor(silent, 14_000, cfg)).toBe(4000);
    // One that answers is simply up, with one member-up event.
    const step = probeSucceeded("n1", adopted, status, 10_100);
    expect(step.state.health).toBe("up");
    expect(step.events.map((e) => e.type)).toEqual(["member-up"]);
  });
});
