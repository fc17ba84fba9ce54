/**
 * Process e2e for the chaos harness: `hsmpool chaos run` as a user runs it (the
 * compiled CLI as a child process), each scenario bringing up its own pool of real
 * processes, injecting real faults, checking and tearing down. Three short scenarios
 * (each well under 60 s), the exit codes, and what a run leaves behind.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cli,
  ensureSignedNodeBundle,
  type PoolDirs,
  recordedPids,
  removeDirs,
  tempPoolDirs,
} from "./support/pool-harness.js";

let dirs: PoolDirs;

beforeAll(async () => {
  ensureSignedNodeBundle();
  dirs = await tempPoolDirs("hsmpool-e2e-chaos-");
}, 180_000);

afterAll(async () => {
  if (dirs) await removeDirs(dirs);
});

interface Results {
  valid: unknown;
  runDir: string;
  scenario: { name: string; seed: number; durationMs: number };
  checkers: Record<string, { valid: unknown; summary: string; details: Record<string, unknown> }>;
  harnessError?: string;
}

/** The one run directory a scenario made under `out`. */
async function runDirOf(out: string, name: string): Promise<string> {
  const dirsFound = (await readdir(out)).filter((d) => d.startsWith(`${name}-`));
  expect(dirsFound).toHaveLength(1);
  return join(out, dirsFound[0] as string);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function runScenario(
  name: string,
  duration: string,
  timeoutMs = 170_000,
): Promise<{ code: number; runDir: string; results: Results; stdout: string; stderr: string }> {
  const out = join(dirs.root, name);
  const r = await cli(
    ["chaos", "run", `chaos/${name}.yaml`, "--duration", duration, "--seed", "5", "--out", out],
    { timeoutMs },
  );
  const runDir = await runDirOf(out, name);
  const results = JSON.parse(await readFile(join(runDir, "results.json"), "utf8")) as Results;
  if (r.code !== 0) {
    const logs = await readFile(join(runDir, "pool", "hfc.log"), "utf8").catch(() => "");
    throw new Error(
      `chaos run ${name} exited ${r.code}\n${r.stdout}\n${r.stderr}\n--- hfc.log tail\n${logs.split("\n").slice(-20).join("\n")}`,
    );
  }
  return { code: r.code, runDir, results, stdout: r.stdout, stderr: r.stderr };
}

/** What every passing run must show: the fault really happened, the checkers really ran, nothing is left running. */
async function expectCompleteRun(runDir: string, results: Results, faultKind: string): Promise<void> {
  expect(results.valid).toBe(true);
  for (const name of [
    "linearizability",
    "durability",
    "signatures",
    "healing",
    "availability",
    "latency",
    "hypothesis",
    "node-invariants",
    "leaks",
  ]) {
    expect({ name, valid: results.checkers[name]?.valid }).toEqual({ name, valid: true });
  }
  const history = (await readFile(join(runDir, "history.jsonl"), "utf8"))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const starts = history.filter((e) => e.process === "nemesis" && e.type === "start");
  expect(starts.map((e) => e.f)).toContain(faultKind);
  expect(history.filter((e) => e.process === "nemesis" && e.type === "error")).toEqual([]);
  const oks = history.filter((e) => e.type === "ok");
  expect(oks.length).toBeGreaterThan(50);
  const linearized = results.checkers.linearizability?.details as { keys: { operations: number }[] };
  expect(linearized.keys.reduce((n, k) => n + k.operations, 0)).toBeGreaterThan(100);
  const healing = results.checkers.healing?.details as { faults: { outcome: string; healingMs?: number }[] };
  expect(healing.faults.length).toBeGreaterThan(0);
  expect(healing.faults.every((f) => f.outcome === "healed" || f.outcome === "unobserved")).toBe(true);
  const html = await readFile(join(runDir, "report.html"), "utf8");
  expect(html).toMatch(/^<!doctype html>/);
  expect(html).toContain("<svg");
  // Self-contained: nothing is fetched (the SVG namespace URI is a name, not a request).
  expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, "")).not.toMatch(
    /(src|href)\s*=|https?:\/\/|<link\b|@import/i,
  );
  for (const pid of await recordedPids(join(runDir, "pool")))
    expect({ pid, alive: alive(pid) }).toEqual({ pid, alive: false });
}

/** A region-loss run: two pools one after the other and Azurite, on a loaded machine. */
const REGION_RUN_MS = 300_000;

/** Nothing of a region-loss run still runs: neither pool's processes nor the run's Azurite. */
async function expectRegionGone(runDir: string): Promise<void> {
  for (const pool of [join(runDir, "pool"), join(runDir, "lost-region", "pool")])
    for (const pid of await recordedPids(pool))
      expect({ pid, alive: alive(pid) }).toEqual({ pid, alive: false });
  const storage = join(runDir, "storage");
  const running: number[] = [];
  for (const pid of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmd.includes(storage)) running.push(Number(pid));
  }
  expect(running).toEqual([]);
}

describe("hsmpool chaos", () => {
  it("list shows every shipped scenario with its description (all of them runnable here)", async () => {
    const r = await cli(["chaos", "list"]);
    expect(r.code).toBe(0);
    for (const name of [
      "kill-primary",
      "kill-secondary",
      "kill-loop",
      "pause-primary",
      "partition-primary",
      "bridge",
      "flaky-links",
      "slow-disk",
      "hsm-faults",
      "rack-loss",
      "random-mix",
      "region-loss",
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^${name}\\s`, "m"));
    }
    expect(r.stdout).toMatch(/^kill-primary\s+SIGKILL the primary/m);
    expect(r.stdout).not.toMatch(/not supported yet/);
  });

  it("a malformed scenario is a harness error: exit 2 with file:line: message, and no pool is started", async () => {
    const { writeFile, mkdir } = await import("node:fs/promises");
    const bad = join(dirs.root, "bad.yaml");
    await writeFile(
      bad,
      "name: bad\nduration: 10s\nworkload:\n  clients: lots\nnemesis:\n  - at: 2s\n    fault: explode\n",
    );
    const out = join(dirs.root, "bad-out");
    await mkdir(out, { recursive: true });
    const r = await cli(["chaos", "run", bad, "--out", out]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual([
      `${bad}:4: workload.clients must be a whole number from 1 to 64, got "lots"`,
      `${bad}:7: fault must be one of kill, pause, partition, link, clock, disk, hsm, server-loss, rack-loss, random, got "explode"`,
    ]);
    expect(await readdir(out)).toEqual([]);
    const missing = await cli(["chaos", "run", join(dirs.root, "nope.yaml")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no such scenario file .* \[NotFound\]/);
  });

  it("kill-primary: the survivors elect a new primary, the old one comes back, nothing acknowledged is lost (exit 0)", async () => {
    const { runDir, results, stdout } = await runScenario("kill-primary", "15s");
    expect(stdout).toMatch(/^VALID {2}results: .*results\.json {2}report: .*report\.html$/m);
    await expectCompleteRun(runDir, results, "kill");
    const healing = results.checkers.healing?.details as { faults: { failoverMs?: number }[] } | undefined;
    expect(healing?.faults[0]?.failoverMs).toBeGreaterThan(0);
  }, 180_000);

  it("pause-primary: a resumed old primary acknowledges nothing stale (exit 0, every checker valid)", async () => {
    const { runDir, results } = await runScenario("pause-primary", "16s");
    await expectCompleteRun(runDir, results, "pause");
    const history = (await readFile(join(runDir, "history.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { process: unknown; type: string; detail?: string });
    expect(
      history.some(
        (e) => e.process === "nemesis" && e.type === "heal" && /^SIGCONT n\d$/.test(e.detail ?? ""),
      ),
    ).toBe(true);
  }, 180_000);

  it("rack-loss: the HFC replaces the lost member in the spare rack and the pool is whole again (exit 0)", async () => {
    const { runDir, results } = await runScenario("rack-loss", "15s");
    await expectCompleteRun(runDir, results, "rack-loss");
    const pool = JSON.parse(await readFile(join(runDir, "pool", "pool.json"), "utf8")) as {
      members: { id: string }[];
    };
    expect(pool.members.map((m) => m.id)).toContain("n4");
  }, 180_000);

  it(
    "region-loss: a blank pool recovered from the SD and the latest backup has every key acknowledged before it (exit 0)",
    async () => {
      const { runDir, results } = await runScenario("region-loss", "18s", REGION_RUN_MS);
      expect(results.valid).toBe(true);
      for (const name of ["linearizability", "signatures", "recovery", "node-invariants", "leaks"])
        expect({ name, valid: results.checkers[name]?.valid }).toEqual({ name, valid: true });
      const recovery = results.checkers.recovery?.details as {
        restored: { folder: string; status: string };
        mustRestore: number;
        signaturesChecked: number;
        expectedLoss: { key: string; why: string }[];
      };
      expect(recovery.restored.status).toBe("Succeeded");
      expect(recovery.mustRestore).toBeGreaterThan(0);
      expect(recovery.signaturesChecked).toBeGreaterThan(0);
      // The loss is named, never silent: every write after the backup is listed with why.
      for (const l of recovery.expectedLoss)
        expect(l.why).toMatch(/acknowledged after the last successful backup/);
      await expectRegionGone(runDir);
    },
    REGION_RUN_MS + 30_000,
  );

  it(
    "the recovery checker can fail: a TEST-ONLY restore that leaves out one key is caught (exit 1)",
    async () => {
      const { writeFile } = await import("node:fs/promises");
      const scenario = (await readFile("chaos/region-loss.yaml", "utf8"))
        .replace(/^name: region-loss$/m, "name: broken-restore")
        .replace(/^ {2}at: 14s$/m, "  at: 14s\n  unsafeRestoreSkipsKey: true");
      expect(scenario).toMatch(/unsafeRestoreSkipsKey: true/);
      const file = join(dirs.root, "broken-restore.yaml");
      await writeFile(file, scenario);
      const out = join(dirs.root, "broken-restore");
      const r = await cli(["chaos", "run", file, "--duration", "18s", "--seed", "5", "--out", out], {
        timeoutMs: REGION_RUN_MS,
      });
      const runDir = await runDirOf(out, "broken-restore");
      const results = JSON.parse(await readFile(join(runDir, "results.json"), "utf8")) as Results;
      expect({ code: r.code, valid: results.valid, recovery: results.checkers.recovery?.valid }).toEqual({
        code: 1,
        valid: false,
        recovery: false,
      });
      const skipped = /TEST-ONLY: the restore leaves out (\S+)/.exec(r.stderr + r.stdout)?.[1];
      expect(skipped).toMatch(/^chaos-k\d+$/);
      const lost =
        (results.checkers.recovery?.details as { lost: { key: string; why: string }[] } | undefined)?.lost ??
        [];
      expect(lost.map((l) => l.key)).toContain(skipped);
      expect(lost.find((l) => l.key === skipped)?.why).toMatch(/the key is missing/);
      await expectRegionGone(runDir);
    },
    REGION_RUN_MS + 30_000,
  );

  it("the harness can fail: nodes in the test-only unsafeAckBeforeCommit mode lose acknowledged writes behind a partition (exit 1)", async () => {
    const { writeFile } = await import("node:fs/promises");
    const file = join(dirs.root, "broken-ack.yaml");
    await writeFile(
      file,
      [
        "name: broken-ack",
        "description: TEST-ONLY broken nodes acknowledge writes before commit; an isolated primary's are lost",
        "duration: 16s",
        "pool:",
        "  unsafeAckBeforeCommit: true",
        "workload: { clients: 4, rate: 30, keys: 4, opTimeout: 6s, mix: { create: 4, get: 2, list: 1, delete: 2 } }",
        "nemesis:",
        "  - at: 4s",
        "    fault: partition",
        "    shape: isolate-primary",
        "    healAfter: 8s",
        "",
      ].join("\n"),
    );
    const out = join(dirs.root, "broken");
    const r = await cli(["chaos", "run", file, "--seed", "21", "--out", out], { timeoutMs: 170_000 });
    const runDir = await runDirOf(out, "broken-ack");
    const results = JSON.parse(await readFile(join(runDir, "results.json"), "utf8")) as Results;
    expect({ code: r.code, valid: results.valid, harnessError: results.harnessError }).toEqual({
      code: 1,
      valid: false,
      harnessError: undefined,
    });
    expect(r.stdout).toMatch(/^INVALID {2}results: /m);
    const caught = [results.checkers.linearizability?.valid, results.checkers.durability?.valid];
    expect(caught).toContain(false);
    const nodeLog = await readFile(join(runDir, "pool", "nodes", "n1", "node.log"), "utf8");
    expect(nodeLog).toMatch(/TEST-ONLY chaos hooks enabled/);
    for (const pid of await recordedPids(join(runDir, "pool")))
      expect({ pid, alive: alive(pid) }).toEqual({ pid, alive: false });
  }, 180_000);
});
