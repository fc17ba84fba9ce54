/**
 * Benchmark: how fast the simulator runs the Raft core.
 *   - simulated cluster-seconds per wall second, 3 nodes, random faults at medium
 *     intensity (goal: >= 1,000), against a baseline of the same cluster with no
 *     faults measured in the same run;
 *   - seeds per minute for `hsmpool sim raft --seeds N` (scenario random, 60 s each);
 *   - the pool simulator (the shipped node in virtual time, scenario random, 30 s each):
 *     simulated seconds per wall second on one thread (goal: >= 1,000, issue 13), events per
 *     seed and microseconds per event, and its ratio to the Raft cluster's rate measured in
 *     the same run (the ratio is what survives a loaded machine);
 *   - a pool sweep on worker threads (`--jobs 2`): the sweep's wall-time rate, reported apart
 *     from the one-thread rate the goal is about.
 */
import { availableParallelism } from "node:os";
import { Prng } from "@hsmpool/faults";
import { goalFigure, reportFigure } from "@hsmpool/hfc/bench-support";
import {
  DEFAULT_LINK,
  INTENSITIES,
  LIVENESS_BOUND_US,
  POOL_DEFAULT_DURATION_US,
  RaftCluster,
  randomSchedule,
  runPoolSim,
  runPoolSweepParallel,
  runSweep,
  type ScenarioPlan,
  US_PER_S,
} from "../index.js";

const GOAL_SIM_S_PER_WALL_S = 1000;
const DURATION_US = 60 * US_PER_S;
const HEAL_AT_US = DURATION_US - 12 * US_PER_S;

function threeNodePlan(seed: number, withFaults: boolean): ScenarioPlan {
  return {
    voters: 3,
    spares: 0,
    faults: withFaults ? randomSchedule(Prng.fromSeed(seed), INTENSITIES.medium, US_PER_S, HEAL_AT_US) : [],
    ops: [],
    compaction: { everyEntries: 200, walRewriteBytes: 256 * 1024 },
    preVote: true,
    checkQuorum: true,
    maxSizePerMsgBytes: undefined,
    maxInflightMsgs: undefined,
    lazyCommitBroadcast: true,
    link: DEFAULT_LINK,
  };
}

/** Simulated seconds per wall second over `seeds` runs of 60 s. */
function clusterRate(seeds: number, withFaults: boolean): { rate: number; events: number; faults: number } {
  let events = 0;
  let faults = 0;
  const start = performance.now();
  for (let seed = 1; seed <= seeds; seed++) {
    const cluster = new RaftCluster(Prng.fromSeed(seed).split("bench"), {
      plan: threeNodePlan(seed, withFaults),
      intensity: INTENSITIES.medium,
      durationUs: DURATION_US,
      healAtUs: HEAL_AT_US,
      livenessBoundUs: LIVENESS_BOUND_US,
    });
    cluster.start();
    cluster.run();
    events += cluster.stats.events;
    faults += cluster.stats.faultsApplied;
  }
  const wallS = (performance.now() - start) / 1000;
  return { rate: (seeds * DURATION_US) / US_PER_S / wallS, events: events / wallS, faults };
}

clusterRate(5, true); // warm up the JIT

const quiet = clusterRate(30, false);
const faulty = clusterRate(60, true);
console.log(
  `3 nodes, no faults (baseline):   ${Math.round(quiet.rate)} simulated s per wall s (${Math.round(quiet.events)} events/s)`,
);
console.log(
  `3 nodes, random faults (medium): ${Math.round(faulty.rate)} simulated s per wall s (${Math.round(faulty.events)} events/s, ${faulty.faults} faults)`,
);
console.log(`ratio faults / no faults: ${(faulty.rate / quiet.rate).toFixed(2)}`);
/** "goal ratio R: met" or "NOT met" against GOAL_SIM_S_PER_WALL_S. */
function goal(rate: number): string {
  const ratio = rate / GOAL_SIM_S_PER_WALL_S;
  return `goal ratio ${ratio.toFixed(2)}: ${ratio >= 1 ? "met" : "NOT met"} (goal ${GOAL_SIM_S_PER_WALL_S} simulated s per wall s)`;
}
console.log(goal(faulty.rate));

const sweepStart = performance.now();
const sweep = runSweep({ from: 1, count: 100 });
const sweepWallS = (performance.now() - sweepStart) / 1000;
const perMinute = (sweep.seedsRun / sweepWallS) * 60;
console.log(
  `sweep, scenario random (3 or 5 nodes, churn, transfers), 60 s per seed: ${Math.round(perMinute)} seeds per minute ` +
    `(${sweep.seedsRun} seeds in ${sweepWallS.toFixed(1)} s, ${sweep.failures.length} failed)`,
);
console.log(`200-seed run (hsmpool sim raft --seeds 200) estimate: ${((200 / perMinute) * 60).toFixed(1)} s`);

const poolSeeds = 10;
await runPoolSim({ seed: poolSeeds + 1 }); // warm up the JIT (and the simulated HSMs' per-process key cache)
const poolStart = performance.now();
let poolSimulatedUs = 0;
let poolEvents = 0;
for (let seed = 1; seed <= poolSeeds; seed++) {
  const r = await runPoolSim({ seed });
  poolSimulatedUs += r.simulatedUs;
  poolEvents += r.stats.events;
}
const poolWallS = (performance.now() - poolStart) / 1000;
const poolRate = poolSimulatedUs / US_PER_S / poolWallS;
const usPerEvent = (poolWallS * US_PER_S) / poolEvents;
console.log(
  `pool, ONE thread (shipped PoolNode, scenario random, ${poolSeeds} seeds of 30 s): ${Math.round(poolRate)} simulated s per wall s, ` +
    `${Math.round(poolEvents / poolSeeds)} events per seed, ${usPerEvent.toFixed(1)} us per event ` +
    `(ratio to the 3-node Raft cluster with faults: ${(poolRate / faulty.rate).toFixed(2)}; ${goal(poolRate)})`,
);
reportFigure(goalFigure("pool_sim_s_per_wall_s", poolRate, "sim-s/s", ">=", GOAL_SIM_S_PER_WALL_S));
reportFigure({ name: "pool_sim_events_per_seed", value: poolEvents / poolSeeds, unit: "events" });
reportFigure({ name: "pool_sim_us_per_event", value: usPerEvent, unit: "us" });

// What `hsmpool sim pool --seeds N --jobs J` gains on this machine: a sweep's wall time, not the simulator's
// speed (each worker runs seeds at the one-thread rate or slower when the cores are shared).
const sweepJobs = Math.min(2, availableParallelism());
const sweepSeeds = 4 * poolSeeds;
const poolSweepStart = performance.now();
const poolSweep = await runPoolSweepParallel({ from: 1, count: sweepSeeds }, sweepJobs);
const poolSweepRate =
  (sweepSeeds * POOL_DEFAULT_DURATION_US) / US_PER_S / ((performance.now() - poolSweepStart) / 1000);
console.log(
  `pool SWEEP on ${sweepJobs} worker threads (--jobs ${sweepJobs}, ${sweepSeeds} seeds, ${poolSweep.failures.length} failed): ` +
    `${Math.round(poolSweepRate)} simulated s per wall s for the whole sweep (${(poolSweepRate / poolRate).toFixed(2)}x the one-thread rate; not the goal's rate)`,
);
reportFigure({ name: `pool_sweep_jobs${sweepJobs}_sim_s_per_wall_s`, value: poolSweepRate, unit: "sim-s/s" });
