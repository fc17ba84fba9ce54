/**
 * Operating the pool (issue 19), against ONE real pool of real processes:
 * - metrics: every scrape URL in `status --json` answers Prometheus text with the named
 *   series, and neither the scrapes nor the dashboard's JSON carry a secret;
 * - the dashboard in a real browser (playwright-core driving Debian's chromium): three
 *   members in three racks; "Kill primary" + confirm; the healing phases appear; healthy
 *   again with a new primary; screenshots as test artifacts (.hsmpool/artifacts/);
 * - automatic failure detection: a SIGSTOPped member is not lost before the window, is
 *   fenced and replaced in another rack after it, and never acts as a member after SIGCONT;
 * - crash loop: a member whose server files vanished is reported crash-looping with its
 *   last error, backed off, and never relaunched without limit.
 * The browser tier runs wherever /usr/bin/chromium exists and always in CI (.ci/run
 * installs it): there a missing browser fails the file instead of skipping it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePrometheusText } from "@hsmpool/metrics";
import { chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cli,
  ensureSignedNodeBundle,
  type PoolDirs,
  REPO,
  stopEverything,
  tempPoolDirs,
  waitFor,
} from "./support/pool-harness.js";

const CHROMIUM = "/usr/bin/chromium";
const LOST_AFTER_MS = 4000;
const ARTIFACTS = process.env.HSMPOOL_ARTIFACTS_DIR ?? join(REPO, ".hsmpool", "artifacts");
const runBrowser = existsSync(CHROMIUM) || process.env.CI === "true";

interface StatusJson {
  state: string;
  primary: string | null;
  metricsUrl: string;
  lostServers: string[];
  members: {
    id: string;
    role: string;
    server: string;
    rack: string;
    pid: number;
    term: number;
    health: string;
    ownership: string;
    metricsUrl: string;
    healthDetail: string;
  }[];
  healing: {
    id: string;
    kind: string;
    memberId: string;
    replacementId: string;
    phase: string;
    reason: string;
  }[];
}

let dirs: PoolDirs;
const run = (...args: string[]) => cli([...args, "--run-dir", dirs.runDir], { timeoutMs: 180_000 });

async function status(): Promise<StatusJson> {
  const r = await run("status", "--json");
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as StatusJson;
}

const settled = (s: StatusJson) =>
  s.state === "healthy" &&
  s.members.length === 3 &&
  s.members.every((m) => m.health === "up" && m.ownership === "synced") &&
  new Set(s.members.map((m) => m.rack)).size === 3;

const healthy = (what: string, extra: (s: StatusJson) => boolean = () => true) =>
  waitFor(
    what,
    async () => {
      const s = await status();
      return settled(s) && extra(s) ? s : undefined;
    },
    180_000,
    250,
  );

/** `hsmpool logs`-free count of the HFC's "node launched" lines for a member. */
async function launchesOf(nodeId: string): Promise<number> {
  const log = await readFile(join(dirs.runDir, "hfc.log"), "utf8");
  return log
    .split("\n")
    .filter((l) => l.includes(`"nodeId":"${nodeId}"`) && l.includes('"msg":"node launched"')).length;
}

beforeAll(async () => {
  ensureSignedNodeBundle();
  dirs = await tempPoolDirs("hsmpool-ops-");
  const up = await cli(
    [
      "up",
      "--run-dir",
      dirs.runDir,
      "--fabric-dir",
      dirs.fabricDir,
      "--server-lost-after-ms",
      String(LOST_AFTER_MS),
      // Debug-signed nodes: their TEST-ONLY hooks let the dashboard partition the primary.
      "--test-hooks",
    ],
    { timeoutMs: 240_000 },
  );
  if (up.code !== 0) throw new Error(`hsmpool up failed: ${up.stderr}`);
}, 300_000);

afterAll(async () => {
  if (dirs) {
    await stopEverything(dirs);
    await rm(dirs.root, { recursive: true, force: true });
  }
}, 120_000);

describe("operating a pool", () => {
  it("metrics: every scrape URL answers Prometheus text with the named series; no secret in them or the dashboard JSON", async () => {
    const keyName = `leakprobe${Date.now().toString(36)}`;
    expect((await run("keys", "create", keyName, "--kty", "EC")).code).toBe(0);
    const token = await run("token");
    const s = await healthy("a healthy pool with metrics URLs", (x) =>
      x.members.every((m) => m.metricsUrl !== ""),
    );
    expect(s.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const scrapes: string[] = [];
    for (const url of [s.metricsUrl, ...s.members.map((m) => m.metricsUrl)]) {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      scrapes.push(await res.text());
    }
    const [hfcText, ...nodeTexts] = scrapes;
    const hfc = parsePrometheusText(hfcText ?? "");
    for (const name of ["hsmpool_hfc_healing_events_total", "hsmpool_hfc_node_launches_total"])
      expect(hfc.types.get(name), name).toBe("counter");
    expect(hfc.types.get("hsmpool_hfc_healing_phase_duration_seconds")).toBe("histogram");
    const nodeSeries = {
      hsmpool_node_raft_term: "gauge",
      hsmpool_node_raft_commit_index: "gauge",
      hsmpool_node_raft_applied_index: "gauge",
      hsmpool_node_raft_leader_changes_total: "counter",
      hsmpool_node_requests_total: "counter",
      hsmpool_node_request_duration_seconds: "histogram",
      hsmpool_node_hsm_operation_duration_seconds: "histogram",
      hsmpool_node_wal_fsync_duration_seconds: "histogram",
      hsmpool_node_authorization_refusals_total: "counter",
    };
    let created = 0;
    for (const text of nodeTexts) {
      const parsed = parsePrometheusText(text);
      for (const [name, type] of Object.entries(nodeSeries)) expect(parsed.types.get(name), name).toBe(type);
      const term = parsed.samples.find((x) => x.name === "hsmpool_node_raft_term");
      expect(term?.value).toBeGreaterThan(0);
      created += parsed.samples
        .filter((x) => x.name === "hsmpool_node_requests_total" && x.labels.operation === "CreateKey")
        .reduce((a, x) => a + x.value, 0);
    }
    expect(created).toBeGreaterThanOrEqual(1); // the key creation above is counted, by operation only
    const dashboard = await startDashboardProcess();
    try {
      const view = await (await fetch(new URL("/api/view", dashboard.url))).text();
      expect(view).toContain(s.members[0]?.id ?? "n?");
      const secrets = [keyName, "PRIVATE KEY", "Bearer "];
      if (token.code === 0 && token.stdout.trim().length > 20) secrets.push(token.stdout.trim());
      for (const text of [...scrapes, view]) for (const secret of secrets) expect(text).not.toContain(secret);
    } finally {
      dashboard.stop();
    }
  }, 300_000);

  it.runIf(runBrowser)(
    "dashboard in chromium: three members in three racks, kill primary + confirm, healing phases, healthy with a new primary",
    async () => {
      await healthy("a healthy pool before the browser test");
      await withDashboardPage(async (page) => {
        const members = page.locator("[data-testid=member]");
        await waitFor("three members on the page", async () =>
          (await members.count()) === 3 ? true : undefined,
        );
        const racks = new Set(
          await members.evaluateAll((els) => els.map((e) => e.getAttribute("data-rack"))),
        );
        expect(racks.size).toBe(3);
        const rackCards = await page
          .locator("[data-testid=rack]")
          .evaluateAll((els) => els.map((e) => e.getAttribute("data-rack")));
        expect(rackCards).toEqual(expect.arrayContaining([...racks]));
        const oldPrimary = await page.locator("#pool-facts").getAttribute("data-primary");
        expect(oldPrimary).toMatch(/^n\d+$/);
        await page.screenshot({ path: join(ARTIFACTS, "dashboard-healthy.png"), fullPage: true });

        await page.getByTestId("kill-primary").click();
        await page.getByTestId("confirm").click();
        // The healing appears, phase by phase.
        await page.locator("[data-testid=healing-record]").first().waitFor({ timeout: 60_000 });
        const phases = await page
          .locator("[data-testid=healing-phase]")
          .evaluateAll((els) => els.map((e) => e.getAttribute("data-phase")));
        expect(phases).toContain("detected");
        await page.screenshot({ path: join(ARTIFACTS, "dashboard-healing.png"), fullPage: true });
        // Healthy again, with a new primary and the killed member's healing finished.
        await waitFor(
          "the page to show a healthy pool with a new primary",
          async () => {
            const state = await page.getByTestId("pool-state").textContent();
            const primary = await page.locator("#pool-facts").getAttribute("data-primary");
            const done = await page.locator("[data-testid=healing-record][data-phase=ready]").count();
            const up = await page.locator("[data-testid=member][data-health=up]").count();
            return state === "healthy" && primary && primary !== oldPrimary && done >= 1 && up === 3
              ? true
              : undefined;
          },
          180_000,
          500,
        );
        const allPhases = await page
          .locator("[data-testid=healing-record][data-phase=ready] [data-testid=healing-phase]")
          .evaluateAll((els) => els.map((e) => e.getAttribute("data-phase")));
        expect(allPhases).toEqual(expect.arrayContaining(["detected", "launching", "ready"]));
        await page.screenshot({ path: join(ARTIFACTS, "dashboard-healed.png"), fullPage: true });
        await page.setViewportSize({ width: 390, height: 844 });
        await page.screenshot({ path: join(ARTIFACTS, "dashboard-phone.png"), fullPage: true });
        // Readable on a phone: nothing wider than the screen.
        const overflow = Number(
          await page.evaluate("document.documentElement.scrollWidth - window.innerWidth"),
        );
        expect(overflow).toBeLessThanOrEqual(0);
      });
    },
    420_000,
  );

  it.runIf(runBrowser)(
    "dashboard in chromium: partition primary + confirm elects a new primary; heal reconnects the old one as a secondary",
    async () => {
      const before = await healthy("a healthy pool before the partition");
      const oldPrimary = before.primary ?? "";
      expect(oldPrimary).toMatch(/^n\d+$/);
      await withDashboardPage(async (page) => {
        await waitFor("the page to show the primary", async () =>
          (await page.locator("#pool-facts").getAttribute("data-primary")) === oldPrimary ? true : undefined,
        );
        await page.getByTestId("partition-primary").click();
        await page.getByTestId("confirm").click();
        await page.locator(`[data-testid=member][data-member=${oldPrimary}][data-partitioned=yes]`).waitFor({
          timeout: 60_000,
        });
        // The majority side elects a new primary; the HFC still sees every process up, so nothing is replaced.
        await waitFor(
          "a new primary while the old one is cut off",
          async () => {
            const primary = await page.locator("#pool-facts").getAttribute("data-primary");
            return primary && primary !== oldPrimary ? primary : undefined;
          },
          180_000,
          500,
        );
        await page.screenshot({ path: join(ARTIFACTS, "dashboard-partitioned.png"), fullPage: true });
        const during = await status();
        expect(during.members.map((m) => m.id)).toContain(oldPrimary);
        expect(during.members.find((m) => m.id === oldPrimary)?.role).not.toBe("primary");

        await page.getByTestId("heal-partitions").click();
        await page.getByTestId("confirm").click();
        await waitFor(
          "the partition badge to go",
          async () => ((await page.locator("[data-partitioned=yes]").count()) === 0 ? true : undefined),
          60_000,
        );
      });
      // Healed: the old primary is a member again and commits with the others (a write goes through).
      const name = `afterheal${Date.now().toString(36)}`;
      await healthy("the healed pool", (x) => x.members.some((m) => m.id === oldPrimary));
      expect((await run("keys", "create", name, "--kty", "EC")).code).toBe(0);
      await healthy(
        "the old primary caught up at the others' term",
        (x) => x.members.some((m) => m.id === oldPrimary) && new Set(x.members.map((m) => m.term)).size === 1,
      );
    },
    420_000,
  );

  it.runIf(runBrowser)(
    "dashboard audit panel: a principal's own token shows the records; a bad token and a principal without audit-read are refused; the live view never carries them",
    async () => {
      await healthy("a healthy pool before the audit panel");
      const keyName = `auditprobe${Date.now().toString(36)}`;
      expect((await run("keys", "create", keyName, "--kty", "EC")).code).toBe(0);
      const admin = await run("token");
      expect(admin.code).toBe(0);
      const watcher = `watcher${Date.now().toString(36)}`;
      expect((await cli(["tenant", "add-principal", watcher])).code).toBe(0);
      const watcherToken = await run("token", "--as", watcher);
      expect(watcherToken.code).toBe(0);
      await withDashboardPage(async (page) => {
        const note = page.getByTestId("audit-note");
        const show = async (token: string) => {
          await page.getByTestId("audit-token").fill(token);
          await page.getByTestId("audit-show").click();
        };
        // A token whose signature the members cannot verify: refused by them, nothing shown.
        await show("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA");
        await waitFor("the bad token's refusal", async () =>
          /refused: .*\[Unauthenticated\]/.test((await note.textContent()) ?? "") ? true : undefined,
        );
        // A valid principal of the tenant with no role: Forbidden, decided inside the members.
        await show(watcherToken.stdout.trim());
        await waitFor("the unprivileged principal's refusal", async () =>
          /refused: .*\[Forbidden\]/.test((await note.textContent()) ?? "") ? true : undefined,
        );
        expect(await page.locator("[data-testid=audit-record]").count()).toBe(0);
        // Administrator (audit read): the records appear, the key creation among them.
        await show(admin.stdout.trim());
        const created = page.locator("[data-testid=audit-record][data-operation=CreateKey]", {
          hasText: keyName,
        });
        await created.first().waitFor({ timeout: 60_000 });
        expect(await page.getByTestId("audit-token").inputValue()).toBe("");
        await page.screenshot({ path: join(ARTIFACTS, "dashboard-audit.png"), fullPage: true });
        // What any local process can fetch without a token carries neither the records nor the token.
        const view = await (await fetch(new URL("/api/view", page.url()))).text();
        for (const secret of [keyName, admin.stdout.trim(), "CreateKey"]) expect(view).not.toContain(secret);
        const refused = await fetch(new URL("/api/audit", page.url()), {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ token: admin.stdout.trim() }),
        });
        expect(refused.status).toBe(403); // no page token: another web page cannot use the panel
      });
    },
    300_000,
  );

  // Before the destructive cases: after a lost server and a crash loop the fabric may have no free
  // server left in the rack a replacement needs, and the pool stays short of three members.
  it("a run dir is relocatable: stopped, moved with its state dir, and resumed from the new path with its keys", async () => {
    await healthy("a healthy pool before the move");
    const keyName = `moved${Date.now().toString(36)}`;
    expect((await run("keys", "create", keyName, "--kty", "EC")).code).toBe(0);
    const poolJson = () => readFile(join(dirs.runDir, "pool.json"), "utf8");
    const poolId = (JSON.parse(await poolJson()) as { poolId: string }).poolId;
    expect((await run("down")).code).toBe(0);
    const from = dirs.root;
    const to = `${from}-moved`;
    await rename(from, to);
    dirs = { root: to, runDir: join(to, "run"), fabricDir: join(to, "fabric") };
    const up = await cli(["up", "--run-dir", dirs.runDir, "--fabric-dir", dirs.fabricDir], {
      timeoutMs: 240_000,
    });
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toContain(`resuming pool ${poolId}`);
    const resumed = await healthy("the resumed pool");
    expect((await run("keys", "get", keyName)).code).toBe(0);
    // Nothing names the old place: pool.json stores its bundles relative to the state dir, configs are this side's.
    expect(await poolJson()).not.toContain(from);
    for (const m of resumed.members) {
      const config = await readFile(join(dirs.runDir, "nodes", m.id, "config.json"), "utf8");
      expect(config).not.toContain(`${from}/`);
      expect(config).toContain(to);
    }
  }, 400_000);

  it("a SIGSTOPped member is lost only after the window, then fenced and replaced in another rack; after SIGCONT it is never a member", async () => {
    const s = await healthy("a healthy pool before the SIGSTOP");
    const victim = s.members.find((m) => m.id !== s.primary);
    if (!victim) throw new Error("no secondary");
    process.kill(victim.pid, "SIGSTOP");
    const stoppedAt = Date.now();
    try {
      const healed = await healthy(
        "a replacement in another rack",
        (x) => !x.members.some((m) => m.id === victim.id),
      );
      expect(healed.lostServers).toContain(victim.server);
      const replace = healed.healing.find((h) => h.kind === "replace" && h.memberId === victim.id);
      expect(replace?.phase).toBe("ready");
      const replacement = healed.members.find((m) => m.id === replace?.replacementId);
      expect(replacement?.server).not.toBe(victim.server);
      // Not lost before the window: the HFC declared it lost only after LOST_AFTER_MS of silence.
      const declared = (await readFile(join(dirs.runDir, "hfc.log"), "utf8"))
        .split("\n")
        .filter((l) => l.includes("server declared lost") && l.includes(`"nodeId":"${victim.id}"`))
        .map((l) => JSON.parse(l) as { time: string; silentMs: number });
      expect(declared).toHaveLength(1);
      expect(declared[0]?.silentMs).toBeGreaterThanOrEqual(LOST_AFTER_MS);
      expect(Date.parse(declared[0]?.time ?? "") - stoppedAt).toBeGreaterThanOrEqual(LOST_AFTER_MS - 1000);
    } finally {
      try {
        process.kill(victim.pid, "SIGCONT");
      } catch {
        // fenced: already gone
      }
    }
    // Fenced means SIGKILLed: the process is gone, and the pool status never lists it again.
    await waitFor(
      "the fenced process to be gone",
      () => (existsSync(`/proc/${victim.pid}`) ? undefined : true),
      30_000,
    );
    await new Promise((r) => setTimeout(r, 2000));
    const after = await status();
    expect(after.members.map((m) => m.id)).not.toContain(victim.id);
  }, 300_000);

  it("a member whose server files vanished is reported crash-looping with its last error, backed off, never relaunched without limit", async () => {
    const s = await healthy("a healthy pool before the crash loop");
    const victim = s.members.find((m) => m.id !== s.primary);
    if (!victim) throw new Error("no secondary");
    const serverDir = join(dirs.fabricDir, "racks", victim.rack, victim.server);
    const before = await launchesOf(victim.id);
    await rename(serverDir, join(dirs.root, "moved-server"));
    expect((await run("kill", victim.id)).code).toBe(0);
    const looping = await waitFor(
      "the member to be reported crash-looping",
      async () => {
        const x = await status();
        return x.members.find((m) => m.id === victim.id && m.health === "crash-looping");
      },
      120_000,
      200,
    );
    expect(looping.healthDetail).toMatch(/fabric|platform|missing|corrupt/i);
    // After the limit it is fenced and replaced elsewhere (or the replacement fails for want of a server):
    // either way it leaves the pool and its launches stop.
    await waitFor(
      "the crash-looping member to be given up on",
      async () => ((await status()).members.some((m) => m.id === victim.id) ? undefined : true),
      240_000,
      500,
    );
    const launches = (await launchesOf(victim.id)) - before;
    await new Promise((r) => setTimeout(r, 5000));
    expect((await launchesOf(victim.id)) - before).toBe(launches);
    expect(launches).toBeGreaterThanOrEqual(2);
    expect(launches).toBeLessThanOrEqual(5);
    // The member may have been restarted before (an earlier case, a slow machine): the record that gave up is the one asked for.
    const reasons = (await status()).healing
      .filter((h) => h.kind === "restart" && h.memberId === victim.id)
      .map((h) => h.reason);
    expect(
      reasons.some((r) => /crash-looping/.test(r)),
      `restart reasons: ${JSON.stringify(reasons)}`,
    ).toBe(true);
  }, 400_000);
});

/** Runs `body` with the dashboard open in chromium at 1280×800; closes both after. */
async function withDashboardPage(body: (page: Page) => Promise<void>): Promise<void> {
  const dashboard = await startDashboardProcess();
  const profile = await mkdtemp(join(tmpdir(), "hsmpool-chromium-"));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      timeout: 120_000,
    });
    try {
      await mkdir(ARTIFACTS, { recursive: true });
      const page = context.pages()[0] ?? (await context.newPage());
      // Every click/read waits for its element up to this long (Playwright's 30 s default is short for chromium at load 20).
      page.setDefaultTimeout(60_000);
      await page.goto(dashboard.url, { timeout: 60_000 });
      await body(page);
    } finally {
      await context.close();
    }
  } finally {
    dashboard.stop();
    await rm(profile, { recursive: true, force: true });
  }
}

/** `hsmpool dashboard --port 0` as a child process; resolves once it printed its URL. */
async function startDashboardProcess(): Promise<{ url: string; stop: () => void }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [join(REPO, "packages/client/bin/hsmpool.js"), "dashboard", "--port", "0", "--run-dir", dirs.runDir],
    { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout?.on("data", (d) => {
    out += String(d);
  });
  child.stderr?.on("data", (d) => {
    out += String(d);
  });
  const url = await waitFor(
    "the dashboard to print its URL",
    () => /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1],
    60_000,
  );
  return { url, stop: () => child.kill("SIGTERM") };
}
