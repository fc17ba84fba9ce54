import { fail } from "@hsmpool/errors";
import {
  DEFAULT_DURATION_US,
  defaultPoolScenario,
  formatSimTime,
  INTENSITY_NAMES,
  type IntensityName,
  POOL_DEFAULT_DURATION_US,
  POOL_SCENARIO_NAMES,
  POOL_SCENARIOS,
  POOL_UNSAFE_MODES,
  type PoolSimOptions,
  type PoolSimResult,
  type PoolUnsafeMode,
  parseChoiceFlag,
  parseCountFlag,
  parseDurationFlag,
  parseFaultListFlag,
  parseSeedFlag,
  type RaftSimOptions,
  type RaftSimResult,
  runPoolSim,
  runPoolSweep,
  runPoolSweepParallel,
  runRaftSim,
  runSweep,
  runSweepParallel,
  SCENARIO_NAMES,
  SCENARIOS_BY_NAME,
  type SweepProgress,
  shrinkFailure,
  shrinkPoolFailure,
  UNSAFE_VARIANTS,
  US_PER_S,
} from "@hsmpool/sim";
import type { Command } from "commander";

/** Progress lines on stderr at most this often during a sweep. */
const PROGRESS_INTERVAL_MS = 1000;
const MAX_SEEDS = 10_000_000;

interface RaftFlags {
  seed?: string;
  seeds?: string;
  from: string;
  scenario: string;
  duration: string;
  intensity: string;
  transcript?: boolean;
  keepFaults?: string;
  unsafeVariant?: string;
  shrink?: boolean;
  jobs: string;
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function err(line: string): void {
  process.stderr.write(`${line}\n`);
}

function describeStats(r: RaftSimResult): string {
  const s = r.stats;
  return (
    `${s.writesAcked} writes acked, ${s.readsChecked} reads checked, ${s.faultsApplied} faults, ` +
    `${s.crashes} crashes, ${s.leaderChanges} leader changes, ${s.confChangesApplied} conf changes applied, ` +
    `commit index ${s.highestCommit}, ${s.events} events`
  );
}

/** Validated options for runRaftSim, shared by single runs and sweeps. */
function baseOptions(flags: RaftFlags): Omit<RaftSimOptions, "seed"> {
  const scenario = parseChoiceFlag("--scenario", flags.scenario, SCENARIO_NAMES);
  const durationUs = parseDurationFlag("--duration", flags.duration);
  const intensity = parseChoiceFlag<IntensityName>("--intensity", flags.intensity, INTENSITY_NAMES);
  const o: Omit<RaftSimOptions, "seed"> = { scenario, durationUs, intensity };
  if (flags.keepFaults !== undefined) o.keepFaults = parseFaultListFlag("--keep-faults", flags.keepFaults);
  if (flags.unsafeVariant !== undefined) {
    o.unsafeVariant = parseChoiceFlag("--unsafe-variant", flags.unsafeVariant, UNSAFE_VARIANTS);
  }
  return o;
}

/** What both simulators report for one seed. */
interface SeedOutcome {
  seed: number;
  scenario: string;
  intensity: string;
  simulatedUs: number;
  ok: boolean;
  faults: readonly unknown[];
  scheduledFaults: number;
  violation?: { atUs: number; message: string; invariant: string } | null;
  traceHash: string;
  replayCommand: string;
}

type Shrunk = { keepFaults: readonly unknown[]; runs: number; result: SeedOutcome };

async function reportShrink<R extends SeedOutcome>(
  failed: R,
  shrink: (failed: R) => Shrunk | Promise<Shrunk>,
): Promise<void> {
  err(`shrinking the fault schedule of seed ${failed.seed} (${failed.faults.length} faults)...`);
  const { keepFaults, runs, result } = await shrink(failed);
  out(
    `shrunk to ${keepFaults.length} of ${failed.scheduledFaults} faults in ${runs} runs: ${result.violation?.message.split("\n")[0]}`,
  );
  out(`replay (shrunk): ${result.replayCommand}`);
}

/** Prints one seed's verdict and trace hash; a failure prints the replay command, optionally shrinks, and fails. */
async function reportOne<R extends SeedOutcome>(
  r: R,
  stats: string,
  shrink: (() => Promise<void>) | undefined,
): Promise<void> {
  const head = `seed ${r.seed}, scenario ${r.scenario}, intensity ${r.intensity}, ${formatSimTime(r.simulatedUs)} simulated`;
  if (r.ok) {
    out(`${head}: ok — ${stats}`);
    out(`trace hash: ${r.traceHash}`);
    return;
  }
  out(`${head}: FAILED at t=${formatSimTime(r.violation!.atUs)}: ${r.violation!.message}`);
  out(`trace hash: ${r.traceHash}`);
  out(`replay: ${r.replayCommand}`);
  await shrink?.();
  fail("IntegrityError", `seed ${r.seed} violated ${r.violation!.invariant} (replay command above)`);
}

async function runOne(seed: number, flags: RaftFlags): Promise<void> {
  const options = baseOptions(flags);
  const r = runRaftSim({ ...options, seed, ...(flags.transcript ? { transcript: out } : {}) });
  const shrink = flags.shrink ? () => reportShrink(r, (f) => shrinkFailure(f, options)) : undefined;
  await reportOne(r, r.ok ? describeStats(r) : "", shrink);
}

async function runMany(from: number, count: number, jobs: number, flags: RaftFlags): Promise<void> {
  const options = baseOptions(flags);
  const wallStart = performance.now();
  let lastProgress = wallStart;
  const progress = (p: SweepProgress) => {
    if (!p.last.ok) {
      err(`seed ${p.last.seed} FAILED: ${p.last.violation!.message.split("\n")[0]}`);
      err(`  replay: ${p.last.replayCommand}`);
    }
    const now = performance.now();
    if (now - lastProgress < PROGRESS_INTERVAL_MS && p.done < p.total) return;
    lastProgress = now;
    const wallS = (now - wallStart) / 1000;
    const rate = p.simulatedUs / US_PER_S / Math.max(wallS, 1e-3);
    err(
      `[sim] ${p.done}/${p.total} seeds, ${p.failures} failed, ${Math.round(rate)} simulated s per wall s (${wallS.toFixed(1)} s elapsed)`,
    );
  };
  const sweep = {
    from,
    count,
    ...(options.scenario !== undefined ? { scenario: options.scenario } : {}),
    ...(options.durationUs !== undefined ? { durationUs: options.durationUs } : {}),
    ...(options.intensity !== undefined ? { intensity: options.intensity } : {}),
    ...(options.unsafeVariant !== undefined ? { unsafeVariant: options.unsafeVariant } : {}),
  };
  const s = jobs > 1 ? await runSweepParallel(sweep, jobs, progress) : runSweep(sweep, progress);
  const wallS = (performance.now() - wallStart) / 1000;
  out(
    `${s.seedsRun} seeds (${from}..${from + s.seedsRun - 1}), scenario ${options.scenario}, intensity ${options.intensity}, ` +
      `${formatSimTime(options.durationUs ?? DEFAULT_DURATION_US)} each: ${s.failures.length} failed`,
  );
  out(
    `${Math.round(s.simulatedUs / US_PER_S)} simulated s in ${wallS.toFixed(1)} s wall ` +
      `(${Math.round(s.simulatedUs / US_PER_S / Math.max(wallS, 1e-3))}x), ${s.events} events, ` +
      `${s.writesAcked} writes acked, ${s.readsChecked} reads checked, ${s.faultsApplied} faults`,
  );
  out(`trace hash: ${s.traceHash} (combined over ${s.seedsRun} seeds)`);
  if (s.failures.length === 0) return;
  for (const f of s.failures)
    out(`FAILED seed ${f.seed}: ${f.violation!.message.split("\n")[0]}\n  replay: ${f.replayCommand}`);
  if (flags.shrink) await reportShrink(s.failures[0]!, (f) => shrinkFailure(f, options));
  fail(
    "IntegrityError",
    `${s.failures.length} of ${s.seedsRun} seeds violated an invariant (replay commands above)`,
  );
}

// ---- hsmpool sim pool ---------------------------------------------------------------

interface PoolFlags {
  seed?: string;
  seeds?: string;
  from: string;
  /** Absent: random, or the unsafe mode's own scenario. */
  scenario?: string;
  /** Absent: the scenario's own default (30s; healing 60s). */
  duration?: string;
  intensity: string;
  transcript?: boolean;
  keepFaults?: string;
  unsafeMode?: string;
  shrink?: boolean;
  jobs: string;
}

function describePoolStats(r: PoolSimResult): string {
  const s = r.stats;
  return (
    `${s.writesAcked} writes acked, ${s.readsChecked} reads/signs answered, ${s.opsLinearized} ops linearized, ` +
    `${s.opsRefused} refused, ${s.opsUnknown} unknown, ${s.faultsApplied} faults, ${s.crashes} crashes, ` +
    `${s.leaderChanges} leader changes, ${s.hsmCalls} HSM calls (${s.hsmFaults} failed), commit index ${s.highestCommit}, ${s.events} events`
  );
}

/** Validated options for runPoolSim, shared by single runs and sweeps. */
function poolBaseOptions(flags: PoolFlags): Omit<PoolSimOptions, "seed"> & { scenario: string } {
  const unsafeMode =
    flags.unsafeMode === undefined
      ? undefined
      : parseChoiceFlag<PoolUnsafeMode>("--unsafe-mode", flags.unsafeMode, POOL_UNSAFE_MODES);
  const o: Omit<PoolSimOptions, "seed"> & { scenario: string } = {
    scenario: parseChoiceFlag(
      "--scenario",
      flags.scenario ?? defaultPoolScenario(unsafeMode),
      POOL_SCENARIO_NAMES,
    ),
    intensity: parseChoiceFlag<IntensityName>("--intensity", flags.intensity, INTENSITY_NAMES),
  };
  if (flags.duration !== undefined) o.durationUs = parseDurationFlag("--duration", flags.duration);
  if (flags.keepFaults !== undefined) o.keepFaults = parseFaultListFlag("--keep-faults", flags.keepFaults);
  if (unsafeMode !== undefined) o.unsafeMode = unsafeMode;
  return o;
}

async function runPoolOne(seed: number, flags: PoolFlags): Promise<void> {
  const options = poolBaseOptions(flags);
  const r = await runPoolSim({ ...options, seed, ...(flags.transcript ? { transcript: out } : {}) });
  const shrink = flags.shrink ? () => reportShrink(r, (f) => shrinkPoolFailure(f, options)) : undefined;
  await reportOne(r, r.ok ? describePoolStats(r) : "", shrink);
}

async function runPoolMany(from: number, count: number, jobs: number, flags: PoolFlags): Promise<void> {
  const options = poolBaseOptions(flags);
  const wallStart = performance.now();
  let lastProgress = wallStart;
  const progress = (p: SweepProgress<PoolSimResult>) => {
    if (!p.last.ok) {
      err(`seed ${p.last.seed} FAILED: ${p.last.violation!.message.split("\n")[0]}`);
      err(`  replay: ${p.last.replayCommand}`);
    }
    const now = performance.now();
    if (now - lastProgress < PROGRESS_INTERVAL_MS && p.done < p.total) return;
    lastProgress = now;
    const wallS = (now - wallStart) / 1000;
    const rate = p.simulatedUs / US_PER_S / Math.max(wallS, 1e-3);
    err(
      `[sim pool] ${p.done}/${p.total} seeds, ${p.failures} failed, ${Math.round(rate)} simulated s per wall s (${wallS.toFixed(1)} s elapsed)`,
    );
  };
  // A broken variant's sweep is a self-test: it ends at the first seed that catches it.
  const sweep = { from, count, ...options, ...(options.unsafeMode ? { stopAfterFailures: 1 } : {}) };
  const s =
    jobs > 1 ? await runPoolSweepParallel(sweep, jobs, progress) : await runPoolSweep(sweep, progress);
  const wallS = (performance.now() - wallStart) / 1000;
  out(
    `${s.seedsRun} seeds (${from}..${from + s.seedsRun - 1}), scenario ${options.scenario}, intensity ${options.intensity}, ` +
      `${options.durationUs === undefined ? "default duration" : formatSimTime(options.durationUs)} each: ${s.failures.length} failed`,
  );
  out(
    `${Math.round(s.simulatedUs / US_PER_S)} simulated s in ${wallS.toFixed(1)} s wall ` +
      `(${Math.round(s.simulatedUs / US_PER_S / Math.max(wallS, 1e-3))}x), ${s.events} events, ` +
      `${s.writesAcked} writes acked, ${s.readsChecked} reads/signs answered, ${s.faultsApplied} faults`,
  );
  out(`trace hash: ${s.traceHash} (combined over ${s.seedsRun} seeds)`);
  if (s.failures.length === 0) return;
  for (const f of s.failures)
    out(`FAILED seed ${f.seed}: ${f.violation!.message.split("\n")[0]}\n  replay: ${f.replayCommand}`);
  if (flags.shrink) await reportShrink(s.failures[0]!, (f) => shrinkPoolFailure(f, options));
  fail(
    "IntegrityError",
    `${s.failures.length} of ${s.seedsRun} seeds violated an invariant (replay commands above)`,
  );
}

/** `hsmpool sim pool`: the pool protocol on the simulator. */
function registerSimPoolCommand(sim: Command): void {
  sim
    .command("pool")
    .description(
      "run the pool protocol (key store + ownership machine of @hsmpool/pool) on simulated Raft nodes with a " +
        "simulated HSM each, a client workload and random faults; checks one owner root, one DEK among synced " +
        "members, no key operation without ownership, a linearizable key store, no acknowledged create lost, " +
        "and liveness after the faults heal",
    )
    .option(
      "--seed <n>",
      "run one seed (replays it exactly); the default when --seeds is not given is seed 1",
    )
    .option("--seeds <n>", "run n seeds in a row, starting at --from; exit 1 if any violates an invariant")
    .option("--from <n>", "first seed of --seeds", "1")
    .option(
      "--scenario <name>",
      `fault scenario: ${POOL_SCENARIO_NAMES.join(", ")} (default random; with --unsafe-mode, the scenario that exposes it)`,
    )
    .option(
      "--duration <time>",
      `simulated time per seed, e.g. 30s, 60s, 2m (default ${POOL_DEFAULT_DURATION_US / US_PER_S}s, healing 60s; liveness after the heal is checked when the run is long enough)`,
    )
    .option("--intensity <level>", "how often and how hard random faults hit: low, medium, high", "medium")
    .option("--transcript", "print every event of the run (one seed only)")
    .option(
      "--keep-faults <list>",
      "replay with only these faults of the schedule (from a shrink), e.g. 3,7 or none",
    )
    .option("--shrink", "on failure, drop faults while it still fails and print the shorter replay command")
    .option(
      "--jobs <n>",
      "run --seeds on n worker threads (results and trace hash are the same as with 1)",
      "1",
    )
    .option(
      "--unsafe-mode <name>",
      `checker self-test: a deliberately broken variant of the shipped node shell or the simulated HSM (${POOL_UNSAFE_MODES.join(", ")}); the sweep stops at the first seed that catches it`,
    )
    .addHelpText(
      "after",
      "\nScenarios:\n" +
        POOL_SCENARIOS.map((s) => `  ${s.name.padEnd(15)} ${s.description}`).join("\n") +
        "\n\nExamples:\n" +
        "  hsmpool sim pool --seeds 100                      # seeds 1..100, 30 s each\n" +
        "  hsmpool sim pool --seed 7 --transcript            # one run, every event\n" +
        "  hsmpool sim pool --seeds 50 --scenario genesis-crash\n" +
        "  hsmpool sim pool --seeds 50 --unsafe-mode readWithoutBarrier   # must be caught\n" +
        "Every run prints 'trace hash: <hex>'; the same seed always gives the same hash.",
    )
    .action(async (flags: PoolFlags) => {
      if (flags.seed !== undefined && flags.seeds !== undefined) {
        fail("BadParameter", "give either --seed (one run) or --seeds (a sweep), not both");
      }
      if (flags.seeds !== undefined) {
        if (flags.transcript)
          fail("BadParameter", "--transcript prints one run: use it with --seed, not --seeds");
        if (flags.keepFaults !== undefined)
          fail("BadParameter", "--keep-faults replays one run: use it with --seed");
        const from = parseSeedFlag("--from", flags.from);
        const count = parseCountFlag("--seeds", flags.seeds, MAX_SEEDS);
        await runPoolMany(from, count, parseCountFlag("--jobs", flags.jobs, 64), flags);
        return;
      }
      await runPoolOne(flags.seed === undefined ? 1 : parseSeedFlag("--seed", flags.seed), flags);
    });
}

/** `hsmpool sim raft|scenarios`: the deterministic simulator (owned by @hsmpool/sim). */
export function registerSimCommands(program: Command): void {
  const sim = program
    .command("sim")
    .description("run protocol code under seeded fault schedules in virtual time");

  registerSimRaftCommand(sim);
  registerSimPoolCommand(sim);
  registerSimScenariosCommand(sim);
}

function registerSimRaftCommand(sim: Command): void {
  sim
    .command("raft")
    .description(
      "run the Raft core on a simulated cluster (virtual clock, seeded network/disk/crash faults, invariants " +
        "checked after every event); a run is a pure function of its seed, scenario and the code",
    )
    .option(
      "--seed <n>",
      "run one seed (replays it exactly); the default when --seeds is not given is seed 1",
    )
    .option("--seeds <n>", "run n seeds in a row, starting at --from; exit 1 if any violates an invariant")
    .option("--from <n>", "first seed of --seeds", "1")
    .option(
      "--scenario <name>",
      `fault scenario: ${SCENARIO_NAMES.join(", ")} (see: hsmpool sim scenarios)`,
      "random",
    )
    .option(
      "--duration <time>",
      "simulated time per seed, e.g. 60s, 90s, 2m",
      `${DEFAULT_DURATION_US / US_PER_S}s`,
    )
    .option("--intensity <level>", "how often and how hard random faults hit: low, medium, high", "medium")
    .option(
      "--transcript",
      "print every event of the run (one seed only), e.g. 't=1.250s n2 -> n1 AppendEntries(term 3, idx 17..19, commit 16)'",
    )
    .option(
      "--keep-faults <list>",
      "replay with only these faults of the schedule (from a shrink), e.g. 3,7 or none",
    )
    .option("--shrink", "on failure, drop faults while it still fails and print the shorter replay command")
    .option(
      "--jobs <n>",
      "run --seeds on n worker threads (results and trace hash are the same as with 1)",
      "1",
    )
    .option(
      "--unsafe-variant <name>",
      `checker self-test: run a deliberately broken Raft (${UNSAFE_VARIANTS.join(", ")})`,
    )
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  hsmpool sim raft --seeds 200                      # seeds 1..200, 60 s each\n" +
        "  hsmpool sim raft --seeds 10000 --jobs 2           # the long run, on two cores\n" +
        "  hsmpool sim raft --seed 1234 --scenario random --transcript\n" +
        "  hsmpool sim raft --seeds 200 --scenario figure-8 --unsafe-variant commitOldTermEntries\n" +
        "Every run prints 'trace hash: <hex>'; the same seed always gives the same hash.",
    )
    .action(async (flags: RaftFlags) => {
      if (flags.seed !== undefined && flags.seeds !== undefined) {
        fail("BadParameter", "give either --seed (one run) or --seeds (a sweep), not both");
      }
      if (flags.seeds !== undefined) {
        if (flags.transcript)
          fail("BadParameter", "--transcript prints one run: use it with --seed, not --seeds");
        if (flags.keepFaults !== undefined)
          fail("BadParameter", "--keep-faults replays one run: use it with --seed");
        const from = parseSeedFlag("--from", flags.from);
        const count = parseCountFlag("--seeds", flags.seeds, MAX_SEEDS);
        await runMany(from, count, parseCountFlag("--jobs", flags.jobs, 64), flags);
        return;
      }
      await runOne(flags.seed === undefined ? 1 : parseSeedFlag("--seed", flags.seed), flags);
    });
}

function registerSimScenariosCommand(sim: Command): void {
  sim
    .command("scenarios")
    .description("list the named fault scenarios of `hsmpool sim raft --scenario`")
    .action(() => {
      for (const name of SCENARIO_NAMES)
        out(`${name.padEnd(20)} ${SCENARIOS_BY_NAME.get(name)?.description ?? ""}`);
    });
}
