/**
 * One chaos run, end to end: its own run directory (pool, fabric, history), a pool
 * brought up through the injected PoolDriver, concurrent clients (generator +
 * client), the nemesis on its schedule, heal-everything, final reads, the checkers,
 * results.json and report.html — and the pool torn down at the end, always, also
 * when anything fails. Every phase is bounded in time.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fail } from "@hsmpool/errors";
import { Prng } from "@hsmpool/faults";
import {
  FabricControllerClient,
  isOurProcess,
  type PoolSpec,
  readHfcInfo,
  readNodePids,
  readPoolSpec,
  runPaths,
  signalProcess,
  waitForExit,
} from "@hsmpool/wire";
import type { AccessAttempt } from "./checkers/access.js";
import type { FullBackupRecord } from "./checkers/recovery.js";
import { evaluateRun, fabricSecrets } from "./evaluate.js";
import { encodeHistoryLine, HistoryRecorder, isClientEvent } from "./history.js";
import { ControlFiles, memberIds } from "./nemesis/control-files.js";
import { type Inventory, rackLossInjector, serverLossInjector } from "./nemesis/fabric-faults.js";
import { NemesisRunner } from "./nemesis/nemesis.js";
import { linkInjector, partitionInjector } from "./nemesis/network-faults.js";
import { nodeFaultInjector } from "./nemesis/node-faults.js";
import { planFaults } from "./nemesis/plan.js";
import { killInjector, pauseInjector } from "./nemesis/process-faults.js";
import { LinkFabric } from "./proxy/link-fabric.js";
import {
  backupsUntil,
  latestGoodBackup,
  loseRegion,
  type RegionRecoveryDriver,
  readRecoveredKeys,
  STORAGE_DIR,
} from "./region-loss.js";
import { renderReport } from "./report/html.js";
import { exitCodeFor, type RunResults } from "./results.js";
import { StatusSampler } from "./sampler.js";
import type { FaultKind, FaultSpec, Scenario } from "./scenario/schema.js";
import { isFullyHealthy, type StatusSample } from "./timeline.js";
import { type KeyVaultClient, runOperation } from "./workload/client.js";
import { type HeldBackup, type HeldSignature, keyName, WorkloadGenerator } from "./workload/generator.js";

export interface PoolStartOptions {
  runDir: string;
  fabricDir: string;
  healthIntervalMs: number;
  failureThreshold: number;
  timeoutMs: number;
  onProgress: (line: string) => void;
}

/** How a run starts, stops and talks to a pool; the CLI provides it with `hsmpool up`'s code and the SDK. */
export interface PoolDriver {
  /** Creates the run's fabric (racks x servers, an HSM device per server) before anything starts. */
  prepareFabric(
    fabricDir: string,
    shape: { racks: number; serversPerRack: number },
    onProgress: (line: string) => void,
  ): Promise<void>;
  /** Resolves when the pool is healthy; throws (HsmPoolError) when it does not get there in time. */
  start(opts: PoolStartOptions): Promise<void>;
  stop(runDir: string, onProgress: (line: string) => void): Promise<void>;
  connect(runDir: string, opts: { opTimeoutMs: number }): Promise<KeyVaultClient>;
  /** The fabric's racks and servers (public inventory), for rack loss. */
  inventory(fabricDir: string): Promise<Inventory>;
  /** "debug" when the pool runs a debug-signed bundle (the only kind that honours chaos.json). */
  readonly enclaveKind?: "debug" | "production";
  /** Unauthorised callers for the `access` checker; each attempt resolves to "OK" or the error code. */
  intruders?(runDir: string): Promise<Intruder[]>;
  /** Blob storage, full backups and the customer's recovery: needed by scenarios with `regionLoss`. */
  readonly regionRecovery?: RegionRecoveryDriver;
}

export interface Intruder {
  name: string;
  attempt(): Promise<string>;
}

export interface RunOptions {
  scenario: Scenario;
  /** The scenario file's text, copied into the run dir. */
  scenarioText?: string;
  /** Overrides the scenario's seed / duration. */
  seed?: number;
  durationMs?: number;
  /** Parent directory: the run gets its own directory inside. */
  outDir: string;
  driver: PoolDriver;
  onProgress?: (line: string) => void;
  /** Aborting ends the workload early; the run still heals, checks and tears down. */
  signal?: AbortSignal;
  /** Wall clock for the run dir name and startedAt (injected for tests). */
  now?: () => Date;
}

export interface RunOutcome {
  runDir: string;
  results: RunResults;
  exitCode: 0 | 1 | 2;
}

const STATUS_INTERVAL_MS = 250;
const FINAL_READ_ATTEMPTS = 3;
const TEARDOWN_SLACK_MS = 120_000;
/** A region loss's recovery: a blank pool's start (its own bound) plus the SD upload and the restore. */
const RECOVERY_SLACK_MS = 180_000;
/** Pause between two unauthorised attempts (one intruder at a time, in turn). */
const INTRUDER_INTERVAL_MS = 400;

/** Resolves after `ms`, or at once when `signal` aborts (removing its listener either way). */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });

async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function stamp(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")
    .replace("T", "-");
}

class JsonLines {
  private readonly stream: WriteStream;
  constructor(path: string) {
    this.stream = createWriteStream(path, { flags: "a" });
  }
  write(line: string): void {
    this.stream.write(line);
  }
  close(): Promise<void> {
    return new Promise((r) => this.stream.end(r));
  }
}

/** Everything one run shares between its phases. */
interface Run {
  readonly opts: RunOptions;
  readonly scenario: Scenario;
  readonly seed: number;
  readonly durationMs: number;
  readonly progress: (line: string) => void;
  readonly started: Date;
  readonly runDir: string;
  readonly poolDir: string;
  readonly fabricDir: string;
  readonly nowMs: () => number;
  readonly historyFile: JsonLines;
  readonly timelineFile: JsonLines;
  readonly history: HistoryRecorder;
  readonly prng: Prng;
  readonly plan: ReturnType<typeof planFaults>;
  readonly notes: string[];
  readonly keys: string[];
  readonly canaries: Uint8Array[];
  readonly phases: { workloadFromMs: number; workloadToMs: number; healedFromMs: number; endMs: number };
  readonly clients: KeyVaultClient[];
  /** The `access` checker's attempts; undefined when the driver has no intruders. */
  accessAttempts: AccessAttempt[] | undefined;
  /** Every client's held signatures (verified again after a region's recovery). */
  readonly held: Map<string, HeldSignature>[];
  /** Region loss: the full backups run during the workload, and the restore's end. */
  readonly backups: FullBackupRecord[];
  storageUrl: string | undefined;
  poolId: string | undefined;
  regionLost: boolean;
  restoreOutcome: { status: string; error?: string } | undefined;
  /** Ends the workload: at its planned end, on the caller's abort, or when the run overruns its bound. */
  readonly stop: AbortController;
  readonly hardBoundMs: number;
  harnessError: string | undefined;
  sampler: StatusSampler | undefined;
  hfc: FabricControllerClient | undefined;
  links: LinkFabric | undefined;
  controls: ControlFiles | undefined;
}

/**
 * One chaos run in phases: open the run dir, start the pool (with link proxies and control files when the
 * faults need them), run the workload under the nemesis, heal everything, read every key back, then —
 * always — tear the pool down, and finally check the history and write the results and the report.
 */
export async function runScenario(opts: RunOptions): Promise<RunOutcome> {
  const run = await openRun(opts);
  let watchdog: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        const nemesis = await startPool(run);
        await runWorkload(run, nemesis);
        if (run.scenario.regionLoss) {
          await recoverRegion(run);
        } else {
          await healEverything(run, nemesis);
          await readEveryKey(run);
        }
      })(),
      new Promise<never>((_, reject) => {
        watchdog = setTimeout(() => {
          run.stop.abort();
          reject(new Error(`the run exceeded its time bound of ${Math.round(run.hardBoundMs / 1000)} s`));
        }, run.hardBoundMs);
      }),
    ]);
  } catch (e) {
    run.harnessError = e instanceof Error ? e.message : String(e);
    run.progress(`harness error: ${run.harnessError}`);
  } finally {
    clearTimeout(watchdog);
    await closeRun(run);
  }
  // An interrupted run checks what it saw, but cannot vouch for a whole run.
  if (opts.signal?.aborted && run.harnessError === undefined)
    run.harnessError = "interrupted before the end of the workload";
  return checkAndReport(run);
}

async function openRun(opts: RunOptions): Promise<Run> {
  const scenario = opts.scenario;
  const seed = opts.seed ?? scenario.seed;
  const durationMs = opts.durationMs ?? scenario.durationMs;
  const progress = opts.onProgress ?? (() => {});
  const wall = opts.now ?? (() => new Date());
  const started = wall();
  const runDir = resolve(opts.outDir, `${scenario.name}-${stamp(started)}-seed${seed}`);
  await mkdir(runDir, { recursive: true });
  if (opts.scenarioText !== undefined) await writeFile(join(runDir, "scenario.yaml"), opts.scenarioText);
  progress(`run dir ${runDir}`);

  const t0 = performance.now();
  const nowMs = () => performance.now() - t0;
  const historyFile = new JsonLines(join(runDir, "history.jsonl"));
  const prng = Prng.fromSeed(seed);
  const plan = planFaults(scenario.nemesis, durationMs, prng.split("nemesis-plan"));
  const stop = new AbortController();
  opts.signal?.addEventListener("abort", () => stop.abort());
  return {
    opts,
    scenario,
    seed,
    durationMs,
    progress,
    started,
    runDir,
    poolDir: join(runDir, "pool"),
    fabricDir: join(runDir, "fabric"),
    nowMs,
    historyFile,
    timelineFile: new JsonLines(join(runDir, "timeline.jsonl")),
    history: new HistoryRecorder(nowMs, (e) => historyFile.write(encodeHistoryLine(e))),
    prng,
    plan,
    notes: plan.skipped.map((s) => `nemesis at line ${s.line}: ${s.why}`),
    keys: Array.from({ length: scenario.workload.keys }, (_, i) => keyName(i)),
    canaries: [],
    phases: { workloadFromMs: 0, workloadToMs: 0, healedFromMs: 0, endMs: 0 },
    clients: [],
    accessAttempts: undefined,
    held: [],
    backups: [],
    storageUrl: undefined,
    poolId: undefined,
    regionLost: false,
    restoreOutcome: undefined,
    stop,
    hardBoundMs:
      scenario.pool.startTimeoutMs +
      durationMs +
      2 * scenario.workload.opTimeoutMs +
      scenario.pool.healTimeoutMs +
      (scenario.regionLoss ? scenario.pool.startTimeoutMs + RECOVERY_SLACK_MS : 0) +
      TEARDOWN_SLACK_MS,
    harnessError: undefined,
    sampler: undefined,
    hfc: undefined,
    links: undefined,
    controls: undefined,
  };
}

/** Fabric, link proxies and control files as the faults need them, the pool, the sampler, the clients, the nemesis. */
async function startPool(run: Run): Promise<NemesisRunner> {
  const { opts, scenario, progress, poolDir, fabricDir, prng, canaries } = run;
  progress(
    `starting a pool (${scenario.name}, seed ${run.seed}, ${Math.round(run.durationMs / 1000)} s of workload)`,
  );
  await opts.driver.prepareFabric(fabricDir, scenario.pool, (l) => progress(`  ${l}`));
  const fuses = (await fabricSecrets(fabricDir)).map((s) => s.needle);
  const kinds = faultKindsOf(scenario);
  if (kinds.has("partition") || kinds.has("link")) {
    progress(`  link proxies for every directed peer link among ${memberIds().length} possible members`);
    run.links = await LinkFabric.start({
      nodeIds: memberIds(),
      upstreamOf: peerAddressIn(poolDir),
      needles: () => [...fuses, ...canaries.map((bytes, i) => ({ name: `client payload #${i + 1}`, bytes }))],
      prng: prng.split("links"),
    });
  }
  const links = run.links;
  const needsControl =
    links !== undefined ||
    kinds.has("hsm") ||
    kinds.has("disk") ||
    kinds.has("clock") ||
    scenario.pool.unsafeAckBeforeCommit;
  if (needsControl) {
    run.controls = new ControlFiles(poolDir, {
      unsafeAckBeforeCommit: scenario.pool.unsafeAckBeforeCommit,
      peerDial: links?.mapping() ?? {},
    });
    await run.controls.prepare(memberIds());
    if (scenario.pool.unsafeAckBeforeCommit) {
      progress("  TEST-ONLY: the nodes run in the deliberately broken unsafeAckBeforeCommit mode");
    }
  }
  const controls = run.controls;
  if (scenario.regionLoss) {
    const recovery =
      opts.driver.regionRecovery ??
      fail(
        "BadParameter",
        `scenario ${scenario.name} loses its region, and this pool driver cannot recover one`,
      );
    run.storageUrl = await bounded(
      recovery.storageUp(join(run.runDir, STORAGE_DIR)),
      90_000,
      "blob storage start",
    );
    progress("  blob storage for the backups (loopback Azurite) is up");
  }
  await bounded(
    opts.driver.start({
      runDir: poolDir,
      fabricDir,
      healthIntervalMs: scenario.pool.healthIntervalMs,
      failureThreshold: scenario.pool.failureThreshold,
      timeoutMs: scenario.pool.startTimeoutMs,
      onProgress: (l) => progress(`  ${l}`),
    }),
    scenario.pool.startTimeoutMs + 30_000,
    "pool start",
  );
  const info =
    (await readHfcInfo(poolDir)) ??
    fail("ServiceUnavailable", `the pool in ${poolDir} has no hfc.json after start`);
  const control = new FabricControllerClient(info.controlAddress);
  run.hfc = control;
  run.poolId = info.poolId;
  const sampler = new StatusSampler(control, run.nowMs, STATUS_INTERVAL_MS, (s) =>
    run.timelineFile.write(`${JSON.stringify(s)}\n`),
  );
  run.sampler = sampler;
  await sampler.sampleOnce();
  sampler.start();
  for (let i = 0; i < scenario.workload.clients; i++) {
    run.clients.push(await opts.driver.connect(poolDir, { opTimeoutMs: scenario.workload.opTimeoutMs }));
  }
  return new NemesisRunner(
    run.plan.faults,
    {
      kill: killInjector(control),
      pause: pauseInjector(control),
      "server-loss": serverLossInjector(control),
      "rack-loss": rackLossInjector(control, () => opts.driver.inventory(fabricDir)),
      ...(links ? { partition: partitionInjector(links), link: linkInjector(links) } : {}),
      ...(controls
        ? {
            hsm: nodeFaultInjector(controls),
            disk: nodeFaultInjector(controls),
            clock: nodeFaultInjector(controls),
          }
        : {}),
    },
    run.history,
    () => sampler.latest,
    prng.split("nemesis-targets"),
    progress,
  );
}

/** The clients' workload for the run's duration while the nemesis fires its plan. */
async function runWorkload(run: Run, nemesis: NemesisRunner): Promise<void> {
  const { scenario, progress, phases, history, stop, nowMs } = run;
  const sampler = run.sampler as StatusSampler;
  progress(
    `workload: ${scenario.workload.clients} clients, ${scenario.workload.rateOpsPerS} ops/s, ${run.plan.faults.length} faults planned`,
  );
  phases.workloadFromMs = nowMs();
  nemesis.start();
  const workers = run.clients.map(async (client, i) => {
    const gen = new WorkloadGenerator(run.prng.split(`client-${i}`), scenario.workload);
    const held = new Map<string, HeldSignature>();
    run.held.push(held);
    const backups = new Map<string, HeldBackup>();
    while (!stop.signal.aborted) {
      await sleep(gen.nextDelayMs(), stop.signal);
      if (stop.signal.aborted) break;
      const op = gen.next(held, backups);
      if (op.f === "sign" && run.canaries.length < 64) run.canaries.push(op.data);
      await runOperation(client, op, i, history, {
        timeoutMs: scenario.workload.opTimeoutMs,
        held,
        backups,
      });
    }
  });
  const intruders = intrudersDuring(run);
  const region = regionLossDuring(run);
  const ticker = setInterval(() => {
    const done = history.events.filter((e) => e.process !== "nemesis" && e.type === "ok").length;
    progress(
      `  ${Math.round((nowMs() - phases.workloadFromMs) / 1000)} s: ${done} ok, primary ${sampler.latest?.primary || "none"}, state ${sampler.latest?.state ?? "?"}`,
    );
  }, 5000);
  await sleep(run.durationMs, stop.signal);
  stop.abort();
  clearInterval(ticker);
  await bounded(
    Promise.all([...workers, intruders, region]),
    scenario.workload.opTimeoutMs + 10_000,
    "the clients' last operations",
  );
  phases.workloadToMs = nowMs();
}

/**
 * The `access` checker's side of the workload: while the faults run, the driver's intruders (no token,
 * expired token, foreign tenant, wrong role, HFC certificate alone) take turns, one attempt at a time.
 */
async function intrudersDuring(run: Run): Promise<void> {
  const { driver } = run.opts;
  if (driver.enclaveKind === "debug")
    run.notes.push("the pool ran a debug-signed enclave (the only kind that honours the chaos test hooks)");
  if (!driver.intruders) return;
  const attempts: AccessAttempt[] = [];
  run.accessAttempts = attempts;
  // Without intruders the checker says "unknown" (no attempt), never "valid".
  const intruders = await driver.intruders(run.poolDir).catch((e: unknown) => {
    run.notes.push(`no intruders: ${e instanceof Error ? e.message : String(e)}`);
    return [] as Intruder[];
  });
  for (let turn = 0; intruders.length > 0 && !run.stop.signal.aborted; turn++) {
    const intruder = intruders[turn % intruders.length] as Intruder;
    const atMs = run.nowMs();
    attempts.push({ name: intruder.name, atMs, result: await intruder.attempt() });
    await sleep(INTRUDER_INTERVAL_MS, run.stop.signal);
  }
}

/** Region loss: full backups until the loss, then every server of the pool lost (the workload runs on against nothing). */
async function regionLossDuring(run: Run): Promise<void> {
  const settings = run.scenario.regionLoss;
  const recovery = run.opts.driver.regionRecovery;
  if (!settings || !recovery || run.storageUrl === undefined) return;
  const from = run.phases.workloadFromMs;
  await backupsUntil(run, recovery, run.storageUrl, {
    fromMs: from,
    everyMs: settings.backupEveryMs,
    untilMs: from + settings.atMs,
    sleep: (ms) => sleep(ms, run.stop.signal),
    stopped: () => run.stop.signal.aborted,
  });
  await sleep(from + settings.atMs - run.nowMs(), run.stop.signal);
  if (run.stop.signal.aborted) return;
  const hfc = run.hfc as FabricControllerClient;
  await loseRegion(run, hfc, run.sampler?.latest, async () => {
    await run.sampler?.stop();
    hfc.close();
    run.hfc = undefined;
    await teardown(run.opts.driver, run.poolDir, run.progress);
  });
  run.regionLost = true;
}

/**
 * After a region loss: a fresh fabric, a blank pool recovered from the SD and the latest
 * successful backup (the customer's procedure, through the driver), and the final reads.
 */
async function recoverRegion(run: Run): Promise<void> {
  const { scenario, progress, opts } = run;
  const settings = scenario.regionLoss;
  const recovery = opts.driver.regionRecovery;
  if (!settings || !recovery || run.storageUrl === undefined) return;
  if (!run.regionLost)
    throw new Error(
      `the workload ended before the region loss at ${settings.atMs / 1000} s (a --duration above it lets it happen)`,
    );
  const latest = latestGoodBackup(run.backups);
  if (!latest) {
    run.notes.push("no full backup succeeded before the region loss: nothing to recover from");
    return;
  }
  progress(`recovering the region from the security domain and backup ${latest.folder}`);
  run.phases.healedFromMs = run.nowMs();
  await opts.driver.prepareFabric(run.fabricDir, scenario.pool, (l) => progress(`  ${l}`));
  const skip = settings.unsafeRestoreSkipsKey ? firstAcknowledgedKey(run, latest) : undefined;
  if (skip) progress(`  TEST-ONLY: the restore leaves out ${skip}`);
  run.restoreOutcome = await bounded(
    recovery.recover({
      runDir: run.poolDir,
      fabricDir: run.fabricDir,
      poolId: run.poolId ?? fail("Internal", "the lost pool's id is unknown"),
      healthIntervalMs: scenario.pool.healthIntervalMs,
      failureThreshold: scenario.pool.failureThreshold,
      timeoutMs: scenario.pool.startTimeoutMs,
      storageUrl: run.storageUrl,
      folder: latest.folder,
      keys: run.keys,
      ...(skip ? { unsafeSkipKey: skip } : {}),
      onProgress: (l) => progress(`  ${l}`),
    }),
    scenario.pool.startTimeoutMs + RECOVERY_SLACK_MS,
    "the region's recovery",
  );
  run.history.nemesis({
    type: "heal",
    f: "server-loss",
    faultId: 0,
    targets: [],
    detail: `region recovered from the security domain and ${latest.folder}: restore ${run.restoreOutcome.status}`,
  });
  progress(
    `  restore ${run.restoreOutcome.status}${run.restoreOutcome.error ? `: ${run.restoreOutcome.error}` : ""}`,
  );
  const reader = await opts.driver.connect(run.poolDir, { opTimeoutMs: scenario.workload.opTimeoutMs });
  run.clients.push(reader);
  const held = run.held.flatMap((m) => [...m.values()]);
  await readRecoveredKeys(
    reader,
    run.keys,
    held,
    scenario.workload.clients,
    run.history,
    scenario.workload.opTimeoutMs,
  );
}

/** The key whose create was acknowledged first before the backup (TEST-ONLY broken restore). */
function firstAcknowledgedKey(run: Run, backup: FullBackupRecord): string | undefined {
  return run.history.events
    .filter(isClientEvent)
    .find((e) => e.type === "ok" && e.f === "create" && e.index < backup.fromIndex)?.key;
}

/** Heals every fault and waits for a fully healthy pool (a note, not an error, when it does not come). */
async function healEverything(run: Run, nemesis: NemesisRunner): Promise<void> {
  const sampler = run.sampler as StatusSampler;
  const { healTimeoutMs } = run.scenario.pool;
  run.progress("healing everything");
  run.phases.healedFromMs = run.nowMs();
  await bounded(nemesis.healEverything(), 60_000, "heal-everything");
  const healthy = await waitUntil(() => sampler.latest, isFullyHealthy, healTimeoutMs);
  if (!healthy)
    run.notes.push(
      `the pool was not healthy within ${Math.round(healTimeoutMs / 1000)} s after healing everything`,
    );
  else run.progress(`  healthy again (primary ${healthy.primary})`);
}

/** Final reads of every key and a list, for the durability checker. */
async function readEveryKey(run: Run): Promise<void> {
  const { scenario, history } = run;
  const reader = await run.opts.driver.connect(run.poolDir, { opTimeoutMs: scenario.workload.opTimeoutMs });
  run.clients.push(reader);
  const finalProcess = scenario.workload.clients;
  for (const key of run.keys) {
    for (let attempt = 1; attempt <= FINAL_READ_ATTEMPTS; attempt++) {
      const done = await runOperation(reader, { f: "get", key }, finalProcess, history, {
        timeoutMs: scenario.workload.opTimeoutMs,
        final: true,
      });
      if (done.type === "ok" || done.error?.code === "KeyNotFound") break;
    }
  }
  await runOperation(reader, { f: "list" }, finalProcess, history, {
    timeoutMs: scenario.workload.opTimeoutMs,
    final: true,
  });
  await run.sampler?.sampleOnce();
}

/** Stops sampling, closes every client, tears the pool down and closes the run's files (always runs). */
async function closeRun(run: Run): Promise<void> {
  await run.sampler?.stop();
  for (const c of run.clients) c.close();
  run.hfc?.close();
  run.phases.endMs = run.nowMs();
  run.progress("tearing the pool down");
  await teardown(run.opts.driver, run.poolDir, run.progress);
  if (run.storageUrl !== undefined)
    await run.opts.driver.regionRecovery?.storageDown(join(run.runDir, STORAGE_DIR)).catch((e: unknown) => {
      run.progress(`  storage stop: ${e instanceof Error ? e.message : String(e)}`);
    });
  await run.links?.close();
  await run.historyFile.close();
  await run.timelineFile.close();
}

/** Runs the checkers over what the run saw; writes results.json and report.html. */
async function checkAndReport(run: Run): Promise<RunOutcome> {
  const { scenario, runDir, history, sampler, links } = run;
  const results = await evaluateRun({
    scenario,
    seed: run.seed,
    durationMs: run.durationMs,
    runDir,
    poolDir: run.poolDir,
    fabricDir: run.fabricDir,
    startedAt: run.started.toISOString(),
    elapsedMs: run.nowMs(),
    phases: run.phases,
    events: history.events,
    samples: sampler?.samples ?? ([] as StatusSample[]),
    keys: run.keys,
    canaries: run.canaries,
    ...(links ? { linkScan: links.stats() } : {}),
    harnessError: run.harnessError,
    notes: run.notes,
    ...(run.accessAttempts ? { accessAttempts: run.accessAttempts } : {}),
    ...(scenario.regionLoss
      ? {
          regionLoss: {
            backups: run.backups,
            restored: latestGoodBackup(run.backups),
            restoreOutcome: run.restoreOutcome,
          },
        }
      : {}),
  });
  await writeFile(join(runDir, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(
    join(runDir, "report.html"),
    renderReport({ results, events: history.events, samples: sampler?.samples ?? [] }),
  );
  return { runDir, results, exitCode: exitCodeFor(results.valid) };
}

/** Every fault kind a scenario can fire (random choices included). */
function faultKindsOf(s: Scenario): Set<FaultKind> {
  const out = new Set<FaultKind>();
  const add = (f: FaultSpec) => {
    out.add(f.kind);
    if (f.kind === "random") f.choices.forEach(add);
  };
  for (const e of s.nemesis) add(e.fault);
  return out;
}

/** Where a member listens for peers now (pool.json; read at most every 500 ms). */
function peerAddressIn(poolDir: string): (nodeId: string) => Promise<string | undefined> {
  let cached: { atMs: number; spec: PoolSpec | undefined } | undefined;
  return async (nodeId) => {
    if (!cached || performance.now() - cached.atMs > 500) {
      cached = { atMs: performance.now(), spec: await readPoolSpec(poolDir).catch(() => undefined) };
    }
    return cached.spec?.members.find((m) => m.id === nodeId)?.peerAddress;
  };
}

async function waitUntil(
  latest: () => StatusSample | undefined,
  ok: (s: StatusSample) => boolean,
  timeoutMs: number,
): Promise<StatusSample | undefined> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const s = latest();
    if (s && ok(s)) return s;
    await sleep(STATUS_INTERVAL_MS);
  }
  return undefined;
}

/** driver.stop, then SIGKILL anything this pool dir launched that still runs (by recorded pid and command line). */
async function teardown(driver: PoolDriver, poolDir: string, progress: (l: string) => void): Promise<void> {
  const paths = runPaths(poolDir);
  const hfcPid = (await readHfcInfo(poolDir).catch(() => undefined))?.pid;
  const nodePids = await readNodePids(poolDir).catch(() => ({}) as Record<string, number>);
  try {
    await bounded(
      driver.stop(poolDir, (l) => progress(`  ${l}`)),
      45_000,
      "pool stop",
    );
  } catch (e) {
    progress(`  stop: ${e instanceof Error ? e.message : String(e)}; killing what is left`);
  }
  const after = await readNodePids(poolDir).catch(() => ({}) as Record<string, number>);
  const candidates: [string, number, string][] = [];
  if (hfcPid !== undefined) candidates.push(["hfc", hfcPid, paths.runDir]);
  for (const [id, pid] of Object.entries({ ...nodePids, ...after }))
    candidates.push([id, pid, paths.nodeConfig(id)]);
  for (const [id, pid, marker] of candidates) {
    if (isOurProcess(pid, marker)) {
      signalProcess(pid, "SIGCONT");
      signalProcess(pid, "SIGKILL");
      await waitForExit(pid, 2000);
      progress(`  killed leftover ${id} (pid ${pid})`);
    }
  }
}
