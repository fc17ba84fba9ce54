import type { Prng } from "@hsmpool/faults";
import type { Fault, Intensity } from "../faults.js";
import { INTENSITIES, randomSchedule } from "../faults.js";
import { US_PER_MS, US_PER_S } from "../scheduler.js";

/**
 * Named pool scenarios: each turns (its random stream, intensity, fault window) into
 * a plan — the fault schedule, the HSM fault rate and Raft's optional protections.
 * Faults are the sim's ordinary ones (crash, pause, partition, link) plus reactive
 * triggers on protocol moments, so a fault can hit "the primary, right after it
 * proposed Genesis".
 */

export interface PoolFault extends Fault {
  /** Armed at atUs; starts `delayUs` after the next Genesis proposal, aimed at its proposer. */
  onGenesisProposed?: { delayUs: number };
  /**
   * Armed at atUs; starts `delayUs` after the next append acknowledgement a member sends,
   * aimed at that member: a crash there tests that what it acknowledged was durable.
   */
  onAppendAcked?: { delayUs: number };
}

export interface PoolScenarioPlan {
  faults: PoolFault[];
  /** Probability that one HSM call fails transiently (DeviceFault) before the heal point. */
  hsmFaultProbability: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** The shipped HFC supervision loop heals the pool (restart in place, replacement on a spare server). */
  healing?: boolean;
  /** Seed of the HFC's replacement placement. */
  placementSeed?: number;
  /** false: no operator (no `hsmpool kill`, lost servers never reported): the HFC notices everything itself. */
  operator?: boolean;
}

export interface PoolScenarioContext {
  prng: Prng;
  intensity: Intensity;
  /** Faults start in [fromUs, untilUs); everything heals at untilUs. */
  fromUs: number;
  untilUs: number;
}

export interface PoolScenario {
  name: string;
  description: string;
  plan(ctx: PoolScenarioContext): PoolScenarioPlan;
  /** Simulated run length when none is given, and the liveness bound after the heal (defaults: 30 s, 10 s). */
  defaultDurationUs?: number;
  livenessBoundUs?: number;
}

function base(prng: Prng): Omit<PoolScenarioPlan, "faults"> {
  return { hsmFaultProbability: 0.02, preVote: prng.chance(0.7), checkQuorum: prng.chance(0.7) };
}

/**
 * Healing faults: process kills (healed by a restart in place), server losses (healed
 * by a replacement on a spare server in another rack) and HFC crashes, spread over the
 * fault window, mixed with a light random schedule of the ordinary faults.
 */
function healingFaults(ctx: PoolScenarioContext): PoolFault[] {
  const { prng, fromUs, untilUs } = ctx;
  const span = untilUs - fromUs;
  const at = () => fromUs + prng.int(span);
  const targets = ["leader", "follower", "any"] as const;
  const faults: PoolFault[] = [];
  for (let i = prng.between(1, 3); i > 0; i--)
    faults.push({
      atUs: at(),
      durationUs: 0,
      salt: prng.nextU32(),
      action: { kind: "kill", target: prng.pick(targets) },
    });
  for (let i = prng.between(1, 2); i > 0; i--)
    faults.push({
      atUs: at(),
      durationUs: 0,
      salt: prng.nextU32(),
      action: { kind: "lose-server", target: prng.pick(targets) },
    });
  for (let i = prng.between(0, 2); i > 0; i--)
    faults.push({
      atUs: at(),
      durationUs: prng.between(200 * US_PER_MS, 3 * US_PER_S),
      salt: prng.nextU32(),
      action: { kind: "supervisor-crash" },
    });
  return faults;
}

/** One or two crashes, each aimed at the next member to acknowledge an append after its arming time. */
function ackCrashes(ctx: PoolScenarioContext): PoolFault[] {
  const { prng, fromUs, untilUs } = ctx;
  return Array.from({ length: prng.between(1, 2) }, () => ({
    atUs: fromUs + prng.int(untilUs - fromUs),
    durationUs: prng.between(300 * US_PER_MS, 2 * US_PER_S),
    salt: prng.nextU32(),
    action: { kind: "crash", target: "follower" } as const,
    onAppendAcked: { delayUs: 0 },
  }));
}

/** Longest pause in the healing scenario: below the simulated HFC's serverLostAfterMs (6 s). */
const HEALING_MAX_PAUSE_US = 4 * US_PER_S;

export const POOL_SCENARIOS: readonly PoolScenario[] = [
  {
    name: "random",
    description:
      "random crashes (with torn WAL tails), pauses, partitions and link faults, plus transient HSM faults, " +
      "and crashes of a member right after it acknowledged an append",
    plan: (ctx) => ({
      ...base(ctx.prng),
      faults: [...randomSchedule(ctx.prng, ctx.intensity, ctx.fromUs, ctx.untilUs), ...ackCrashes(ctx)].sort(
        (a, b) => a.atUs - b.atUs,
      ),
    }),
  },
  {
    name: "bootstrap",
    description: "random faults from the first moment, while the pool elects a primary and syncs ownership",
    plan: (ctx) => ({
      ...base(ctx.prng),
      faults: randomSchedule(ctx.prng, ctx.intensity, 0, Math.min(ctx.untilUs, 6 * US_PER_S)),
    }),
  },
  {
    name: "genesis-crash",
    description:
      "the primary crashes within 6 ms of proposing Genesis (before or after the entry commits) and stays down 3-5 s; " +
      "in a third of seeds it is instead cut off the network the moment it proposes (the entry never leaves it) and " +
      "crashes within 2 s, while the others may elect a primary and commit a Genesis of their own",
    plan: (ctx) => {
      const { prng } = ctx;
      // The shipped Raft driver hands a leader's entries to the transport in the same turn as the proposal,
      // so a crash alone never stops the entry leaving: losing the proposal takes a cut at that moment.
      const cutOff = prng.chance(1 / 3);
      const delayUs = cutOff ? prng.int(2 * US_PER_S + 1) : prng.int(6 * US_PER_MS + 1);
      const downUs = prng.between(3 * US_PER_S, 5 * US_PER_S);
      const crash: PoolFault = {
        atUs: 0,
        durationUs: downUs,
        salt: prng.nextU32(),
        action: { kind: "crash", target: "leader" },
        onGenesisProposed: { delayUs },
      };
      const isolate: PoolFault = {
        atUs: 0,
        // Until the crashed proposer restarts: it rejoins a connected pool.
        durationUs: delayUs + downUs,
        salt: prng.nextU32(),
        action: { kind: "partition", shape: "isolate", target: "leader" },
        onGenesisProposed: { delayUs: 0 },
      };
      return { ...base(prng), hsmFaultProbability: 0, faults: cutOff ? [isolate, crash] : [crash] };
    },
  },
  {
    name: "healing",
    defaultDurationUs: 60 * US_PER_S,
    livenessBoundUs: 30 * US_PER_S,
    description:
      "the shipped HFC supervision loop heals the pool: random process kills (restart in place), server losses (replacement in another rack) and HFC crashes, plus light random faults",
    plan: (ctx) => {
      // A member paused past the HFC's serverLostAfterMs is a lost server: keep pauses shorter, so the
      // lose-server faults stay the only losses (two at once leave no quorum to heal with).
      const random = randomSchedule(ctx.prng, INTENSITIES.low, ctx.fromUs, ctx.untilUs).map((f) =>
        f.action.kind === "pause" ? { ...f, durationUs: Math.min(f.durationUs, HEALING_MAX_PAUSE_US) } : f,
      );
      const faults = [...random, ...healingFaults(ctx)].sort((a, b) => a.atUs - b.atUs);
      return { ...base(ctx.prng), faults, healing: true, placementSeed: ctx.prng.nextU32() };
    },
  },
  {
    name: "healing-unattended",
    defaultDurationUs: 60 * US_PER_S,
    livenessBoundUs: 30 * US_PER_S,
    description:
      "no operator: the HFC must notice a lost server by itself (missed health checks), one lost while the HFC is down " +
      "(the restarted HFC adopts its silent member), plus process kills",
    plan: (ctx) => {
      const { prng, fromUs, untilUs } = ctx;
      const crashAt = fromUs + 2 * US_PER_S + prng.int(untilUs - fromUs - 8 * US_PER_S);
      const downUs = prng.between(1 * US_PER_S, 3 * US_PER_S);
      const targets = ["leader", "follower", "any"] as const;
      const faults: PoolFault[] = [
        { atUs: crashAt, durationUs: downUs, salt: prng.nextU32(), action: { kind: "supervisor-crash" } },
        {
          atUs: crashAt + prng.int(downUs),
          durationUs: 0,
          salt: prng.nextU32(),
          action: { kind: "lose-server", target: prng.pick(targets) },
        },
        {
          atUs: fromUs + prng.int(untilUs - fromUs),
          durationUs: 0,
          salt: prng.nextU32(),
          action: { kind: "kill", target: prng.pick(targets) },
        },
      ];
      faults.sort((a, b) => a.atUs - b.atUs);
      return { ...base(prng), faults, healing: true, operator: false, placementSeed: prng.nextU32() };
    },
  },
];

export const POOL_SCENARIO_NAMES: readonly string[] = POOL_SCENARIOS.map((s) => s.name);

export function findPoolScenario(name: string): PoolScenario | undefined {
  return POOL_SCENARIOS.find((s) => s.name === name);
}
