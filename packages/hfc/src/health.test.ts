import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type HealthConfig,
  type MemberHealth,
  probeFailed,
  probeSucceeded,
  processExited,
  STARTING,
  validateHealthConfig,
} from "./health.js";
import { nodeStatus } from "./testing/fixtures.js";

const config: HealthConfig = { healthIntervalMs: 250, failureThreshold: 3 };
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
        const cfg = { healthIntervalMs: 100, failureThreshold: threshold };
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
  });
});
