import type { Fault, Intensity } from "../faults.js";
import { randomSchedule } from "../faults.js";
import type { Prng } from "../prng.js";
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
}

export interface PoolScenarioPlan {
  faults: PoolFault[];
  /** Probability that one HSM call fails transiently (DeviceFault) before the heal point. */
  hsmFaultProbability: number;
  preVote: boolean;
  checkQuorum: boolean;
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
}

function base(prng: Prng): Omit<PoolScenarioPlan, "faults"> {
  return { hsmFaultProbability: 0.02, preVote: prng.chance(0.7), checkQuorum: prng.chance(0.7) };
}

export const POOL_SCENARIOS: readonly PoolScenario[] = [
  {
    name: "random",
    description:
      "random crashes (with torn WAL tails), pauses, partitions and link faults, plus transient HSM faults",
    plan: (ctx) => ({
      ...base(ctx.prng),
      faults: randomSchedule(ctx.prng, ctx.intensity, ctx.fromUs, ctx.untilUs),
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
      "the primary crashes right after proposing Genesis (a third of seeds at once, before the entry leaves it; the rest within 6 ms, before or after it commits) and stays down 3-5 s",
    plan: (ctx) => {
      const { prng } = ctx;
      const delayUs = prng.chance(1 / 3) ? 0 : prng.int(6 * US_PER_MS + 1);
      const fault: PoolFault = {
        atUs: 0,
        durationUs: prng.between(3 * US_PER_S, 5 * US_PER_S),
        salt: prng.nextU32(),
        action: { kind: "crash", target: "leader" },
        onGenesisProposed: { delayUs },
      };
      return { ...base(prng), hsmFaultProbability: 0, faults: [fault] };
    },
  },
];

export const POOL_SCENARIO_NAMES: readonly string[] = POOL_SCENARIOS.map((s) => s.name);

export function findPoolScenario(name: string): PoolScenario | undefined {
  return POOL_SCENARIOS.find((s) => s.name === name);
}
