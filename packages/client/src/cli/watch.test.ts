/**
 * `status --watch` against the HFC's real control server (startControlServer over
 * gRPC on loopback) whose Status answers follow a script: what is printed, when the
 * watch stops, and that it follows an HFC that restarts elsewhere.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isHsmPoolError } from "@hsmpool/errors";
import { NO_UPGRADE } from "@hsmpool/healing";
import { type ControlServer, startControlServer } from "@hsmpool/hfc";
import type { HealingEvent, PoolStatus } from "@hsmpool/wire";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { isSettledHealthy, type statusJson } from "./status-format.js";
import { watchStatus } from "./watch.js";

let dir: string;
const servers: ControlServer[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hsmpool-watch-"));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  vi.restoreAllMocks();
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const member = (id: string, health: "up" | "down", role: "primary" | "secondary" = "secondary") => ({
  id,
  role,
  server: `r${id.slice(1)}-s1`,
  rack: `rack-${id.slice(1)}`,
  pid: 100 + Number(id.slice(1)),
  health,
  measurement: health === "up" ? "ab".repeat(32) : "",
  ownership: health === "up" ? ("synced" as const) : ("pending" as const),
  peerAddress: "127.0.0.1:1",
  dataAddress: "127.0.0.1:2",
  term: 3,
  appliedIndex: 9,
  metricsUrl: "",
  healthDetail: "",
  svn: 1,
});

const restart = (phase: HealingEvent["phase"]): HealingEvent => ({
  id: "h1",
  kind: "restart",
  memberId: "n2",
  replacementId: "",
  phase,
  phases: [
    { phase: "detected", atMs: 1000 },
    { phase: "launching", atMs: 1000 },
    ...(phase === "ready"
      ? [
          { phase: "catching_up" as const, atMs: 1900 },
          { phase: "ready" as const, atMs: 1900 },
        ]
      : []),
  ],
  reason: "",
});

function status(state: PoolStatus["state"], healing: HealingEvent[]): PoolStatus {
  return {
    poolId: "pool-w",
    state,
    term: 3,
    primary: "n1",
    members: [
      member("n1", "up", "primary"),
      member("n2", state === "healthy" ? "up" : "down"),
      member("n3", "up"),
    ],
    fabricDir: "/f",
    runDir: "/r",
    observedMs: Date.now(),
    healing,
    healingPaused: false,
    lostServers: [],
    upgrade: NO_UPGRADE,
    metricsUrl: "",
  };
}

/** A control server that answers Status from `script` (one entry per call, the last one repeated). */
async function hfcWith(
  runDir: string,
  script: PoolStatus[],
): Promise<{ calls: () => number; server: ControlServer }> {
  let calls = 0;
  const unused = () => Promise.reject(new Error("not in this test"));
  const server = await startControlServer({
    issueNodeCert: unused,
    issueClientCert: unused,
    status: () => script[Math.min(calls++, script.length - 1)] as PoolStatus,
    kill: unused,
    restart: unused,
    loseServer: unused,
    partition: unused,
    healPartitions: unused,
    upgrade: unused,
    setHealing: unused,
    shutdown: () => undefined,
  });
  servers.push(server);
  await mkdir(runDir, { recursive: true });
  const info = {
    pid: process.pid,
    controlAddress: server.address,
    poolId: "pool-w",
    fabricDir: "/f",
    startedMs: 1,
  };
  await writeFile(join(runDir, "hfc.json"), JSON.stringify(info));
  return { calls: () => calls, server };
}

function captureStdout(): string[] {
  const lines: string[] = [];
  vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    lines.push(String(chunk));
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  return lines;
}

const base = { json: true, intervalMs: 20, maxUpdates: Number.POSITIVE_INFINITY, timeoutMs: 10_000 } as const;

describe("hsmpool status --watch", () => {
  it("prints each change once, healing phases included, and stops when healthy with nothing healing", async () => {
    const runDir = join(dir, "until");
    const degraded = status("degraded", [restart("launching")]);
    // Healthy while h1 is still open does not end the watch; healthy and settled does.
    const healthyButHealing = status("healthy", [restart("launching")]);
    const healed = status("healthy", [restart("ready")]);
    const { calls } = await hfcWith(runDir, [degraded, degraded, degraded, healthyButHealing, healed]);
    const out = captureStdout();
    const end = await watchStatus({ ...base, runDir, until: "healthy" });
    expect(end).toBe("until");
    const printed = out.map((l) => JSON.parse(l) as ReturnType<typeof statusJson>);
    expect(printed.map((p) => [p.state, p.healing[0]?.phase])).toEqual([
      ["degraded", "launching"],
      ["healthy", "launching"],
      ["healthy", "ready"],
    ]);
    expect(printed[2]?.healing[0]?.phases.map((p) => p.phase)).toEqual([
      "detected",
      "launching",
      "catching_up",
      "ready",
    ]);
    expect(calls()).toBe(5);
  });

  it("gives up with a Timeout that names the state when --until is not reached in time", async () => {
    const runDir = join(dir, "timeout");
    await hfcWith(runDir, [status("degraded", [restart("launching")])]);
    captureStdout();
    const e = await watchStatus({ ...base, runDir, until: "healthy", timeoutMs: 300 }).catch(
      (err: unknown) => err,
    );
    expect(isHsmPoolError(e, "Timeout")).toBe(true);
    expect((e as Error).message).toMatch(
      /did not become healthy within 0 s \(state degraded, healing h1 launching\)/,
    );
  });

  it("without --until, a timeout simply ends the watch; Ctrl-C (abort) ends it too", async () => {
    const runDir = join(dir, "plain");
    await hfcWith(runDir, [status("healthy", [])]);
    captureStdout();
    expect(await watchStatus({ ...base, runDir, until: null, timeoutMs: 200 })).toBe("timeout");
    const ctrlC = new AbortController();
    const watching = watchStatus({ ...base, runDir, until: null, timeoutMs: null, signal: ctrlC.signal });
    setTimeout(() => ctrlC.abort(), 100);
    expect(await watching).toBe("interrupted");
  });

  it("follows an HFC that restarts on another port (found again through hfc.json)", async () => {
    const runDir = join(dir, "restart");
    const first = await hfcWith(runDir, [status("degraded", [restart("launching")])]);
    const out = captureStdout();
    const watching = watchStatus({ ...base, runDir, until: "healthy" });
    await vi.waitFor(() => expect(out.length).toBe(1), { timeout: 30_000 });
    await first.server.close();
    await hfcWith(runDir, [status("healthy", [restart("ready")])]);
    expect(await watching).toBe("until");
    expect(out.map((l) => (JSON.parse(l) as { state: string }).state)).toEqual(["degraded", "healthy"]);
  });

  it("counts as settled only a healthy pool with no open healing", () => {
    expect(isSettledHealthy(status("healthy", []))).toBe(true);
    expect(isSettledHealthy(status("healthy", [restart("ready")]))).toBe(true);
    expect(isSettledHealthy(status("healthy", [restart("detected")]))).toBe(false);
    expect(isSettledHealthy(status("degraded", []))).toBe(false);
  });
});
