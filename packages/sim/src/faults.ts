import type { Link, NodeName, PartitionShape, Prng } from "@hsmpool/faults";
import type { LinkConfig } from "./network.js";
import { US_PER_MS, US_PER_S } from "./scheduler.js";

/**
 * Fault schedules: what goes wrong, when, and for how long. A schedule is plain
 * data generated up front from a seed (or written by a scenario), so it can be
 * printed, shrunk (drop faults while the run still fails) and replayed.
 *
 * Targets may be symbolic ("leader", "follower"): they are resolved when the fault
 * starts, from the fault's own random stream (`salt`), so dropping one fault while
 * shrinking does not change how the others resolve.
 */

export type Target = "any" | "leader" | "follower" | { node: NodeName };

export type PartitionKind = "one-way" | "isolate" | "halves" | "bridge" | "ring";
export const PARTITION_KINDS: readonly PartitionKind[] = ["one-way", "isolate", "halves", "bridge", "ring"];

/**
 * loss/duplicate: drop or double messages; delay: slower links; reorder: some
 * messages overtaken by later ones; stall: half the messages are held back for up
 * to `linkStallUs` (a congested queue or a TCP retransmission storm), so messages
 * from a deposed leader can land long after a new one took over.
 */
export type LinkEffect = "loss" | "duplicate" | "delay" | "reorder" | "stall";

export type FaultAction =
  /** Power-cut the node (unsynced disk writes lost, maybe torn), restart it after durationUs. */
  | { kind: "crash"; target: Target }
  /** Stop the node's process (no ticks, no message handling) for durationUs. */
  | { kind: "pause"; target: Target }
  /** Cut links by a partition shape; `target` picks the isolated/minority/one-way-sender side. */
  | { kind: "partition"; shape: PartitionKind; target: Target }
  /** Degrade every link (or the links touching `target`). */
  | { kind: "link"; effect: LinkEffect; target: Target | "all" }
  /** Crash the node's process; its supervisor (a healing controller), not the fault's end, restarts it. */
  | { kind: "kill"; target: Target }
  /** The node's server is gone for good (with its disk); only a replacement elsewhere heals it. */
  | { kind: "lose-server"; target: Target }
  /** The supervisor (healing controller) crashes and comes back after durationUs. */
  | { kind: "supervisor-crash" };

export interface Fault {
  atUs: number;
  durationUs: number;
  /** Seeds this fault's own random choices at start time. */
  salt: number;
  action: FaultAction;
  /**
   * A reactive fault (a targeted nemesis): armed at atUs, it starts `delayUs` after
   * the next leader election instead (and lapses if none comes before the heal).
   * With target "leader" it hits the freshly elected leader.
   */
  onElection?: { delayUs: number };
}

export type IntensityName = "low" | "medium" | "high";
export const INTENSITY_NAMES: readonly IntensityName[] = ["low", "medium", "high"];

export interface Intensity {
  /** Mean gap between the starts of two faults. */
  meanGapUs: number;
  /** Fault durations: min plus an exponential tail with this mean. */
  minDurationUs: number;
  meanExtraDurationUs: number;
  weights: { crash: number; pause: number; partition: number; link: number };
  /** Parameters a "link" fault applies. */
  linkLossProbability: number;
  linkDuplicateProbability: number;
  linkDelayMeanUs: number;
  linkReorderProbability: number;
  linkStallUs: number;
  /** Probability that a crash also flips a byte in the surviving unsynced disk tail. */
  corruptOnCrashProbability: number;
}

const BASE_WEIGHTS = { crash: 3, pause: 2, partition: 4, link: 2 };

export const INTENSITIES: Readonly<Record<IntensityName, Intensity>> = {
  low: {
    meanGapUs: 8 * US_PER_S,
    minDurationUs: 500 * US_PER_MS,
    meanExtraDurationUs: 2 * US_PER_S,
    weights: BASE_WEIGHTS,
    linkLossProbability: 0.05,
    linkDuplicateProbability: 0.02,
    linkDelayMeanUs: 20 * US_PER_MS,
    linkReorderProbability: 0.1,
    linkStallUs: 500 * US_PER_MS,
    corruptOnCrashProbability: 0.2,
  },
  medium: {
    meanGapUs: 3 * US_PER_S,
    minDurationUs: 300 * US_PER_MS,
    meanExtraDurationUs: 3 * US_PER_S,
    weights: BASE_WEIGHTS,
    linkLossProbability: 0.2,
    linkDuplicateProbability: 0.1,
    linkDelayMeanUs: 50 * US_PER_MS,
    linkReorderProbability: 0.3,
    linkStallUs: 1500 * US_PER_MS,
    corruptOnCrashProbability: 0.5,
  },
  high: {
    meanGapUs: 1 * US_PER_S,
    minDurationUs: 200 * US_PER_MS,
    meanExtraDurationUs: 4 * US_PER_S,
    weights: BASE_WEIGHTS,
    linkLossProbability: 0.4,
    linkDuplicateProbability: 0.25,
    linkDelayMeanUs: 120 * US_PER_MS,
    linkReorderProbability: 0.5,
    linkStallUs: 3 * US_PER_S,
    corruptOnCrashProbability: 0.8,
  },
};

const TARGETS: readonly Target[] = ["any", "leader", "follower"];
export const LINK_EFFECTS: readonly LinkEffect[] = ["loss", "duplicate", "delay", "reorder", "stall"];

function weighted<K extends string>(prng: Prng, weights: Readonly<Record<K, number>>): K {
  const keys = Object.keys(weights) as K[];
  const total = keys.reduce((s, k) => s + weights[k], 0);
  let x = prng.float() * total;
  for (const k of keys) {
    x -= weights[k];
    if (x < 0) return k;
  }
  return keys[keys.length - 1] as K;
}

/** A random action of the given kind (targets stay symbolic). */
export function randomAction(prng: Prng, kind: FaultAction["kind"]): FaultAction {
  switch (kind) {
    case "crash":
      return { kind, target: prng.pick(TARGETS) };
    case "pause":
      return { kind, target: prng.pick(TARGETS) };
    case "partition":
      return { kind, shape: prng.pick(PARTITION_KINDS), target: prng.pick(TARGETS) };
    case "link":
      return { kind, effect: prng.pick(LINK_EFFECTS), target: prng.chance(0.5) ? "all" : prng.pick(TARGETS) };
    case "kill":
    case "lose-server":
      return { kind, target: prng.pick(TARGETS) };
    case "supervisor-crash":
      return { kind };
  }
}

/** Random faults starting in [fromUs, untilUs); each ends by untilUs at the latest. */
export function randomSchedule(prng: Prng, intensity: Intensity, fromUs: number, untilUs: number): Fault[] {
  const faults: Fault[] = [];
  let at = fromUs;
  for (;;) {
    at += Math.round(prng.exponential(intensity.meanGapUs));
    if (at >= untilUs) break;
    const kind = weighted(prng, intensity.weights);
    const duration = Math.round(intensity.minDurationUs + prng.exponential(intensity.meanExtraDurationUs));
    faults.push({
      atUs: at,
      durationUs: Math.min(duration, untilUs - at),
      salt: prng.nextU32(),
      action: randomAction(prng, kind),
    });
  }
  return faults;
}

/** The link parameters a link fault applies under an intensity. */
export function linkFaultConfig(effect: LinkEffect, intensity: Intensity): Partial<LinkConfig> {
  switch (effect) {
    case "loss":
      return { lossProbability: intensity.linkLossProbability };
    case "duplicate":
      return { duplicateProbability: intensity.linkDuplicateProbability };
    case "delay":
      return { delayMeanUs: intensity.linkDelayMeanUs, delayMinUs: intensity.linkDelayMeanUs / 4 };
    case "reorder":
      return {
        reorderProbability: intensity.linkReorderProbability,
        reorderDelayUs: intensity.linkDelayMeanUs,
      };
    case "stall":
      return { reorderProbability: 0.5, reorderDelayUs: intensity.linkStallUs };
  }
}

/** Turn a symbolic target into a node (leader/follower fall back to any member). */
export function resolveTarget(
  target: Target,
  members: readonly NodeName[],
  leader: NodeName | null,
  prng: Prng,
): NodeName {
  if (typeof target === "object") return target.node;
  if (target === "leader" && leader !== null && members.includes(leader)) return leader;
  if (target === "follower") {
    const followers = members.filter((m) => m !== leader);
    if (followers.length > 0) return prng.pick(followers);
  }
  return prng.pick(members);
}

/**
 * A concrete partition shape of `kind` around `focus` (the node the target picked):
 * focus is the isolated node, in the minority, the one-way sender, a bridge side,
 * or first in the ring.
 */
export function resolveShape(
  kind: PartitionKind,
  members: readonly NodeName[],
  focus: NodeName,
  prng: Prng,
): PartitionShape {
  const others = prng.shuffled(members.filter((m) => m !== focus));
  switch (kind) {
    case "isolate":
      return { kind, node: focus };
    case "one-way": {
      // focus can no longer reach some of the others (it still hears them).
      const n = 1 + prng.int(Math.max(1, others.length));
      return { kind, from: [focus], to: others.slice(0, n) };
    }
    case "halves": {
      const minority = Math.max(1, Math.floor(members.length / 2));
      const small = [focus, ...others.slice(0, minority - 1)];
      return { kind, sides: [small, others.slice(minority - 1)] };
    }
    case "bridge": {
      if (others.length < 2) return { kind: "isolate", node: focus };
      const bridge = others[0] as NodeName;
      const rest = others.slice(1);
      const half = Math.floor(rest.length / 2);
      return { kind, left: [focus, ...rest.slice(0, half)], bridge, right: rest.slice(half) };
    }
    case "ring":
      return { kind, order: [focus, ...others] };
  }
}

/** Links touching `node` in both directions (for link faults aimed at one node). */
export function linksOf(node: NodeName, members: readonly NodeName[]): Link[] {
  const out: Link[] = [];
  for (const m of members) {
    if (m === node) continue;
    out.push({ from: node, to: m }, { from: m, to: node });
  }
  return out;
}

/** "crash leader for 1.200s" — how a fault reads in a transcript or shrink report. */
export function describeFault(f: Fault): string {
  const t = (tg: Target | "all") => (typeof tg === "object" ? tg.node : tg);
  const dur =
    `${(f.durationUs / US_PER_S).toFixed(3)}s` +
    (f.onElection ? ` (${(f.onElection.delayUs / US_PER_S).toFixed(3)}s after the next election)` : "");
  const a = f.action;
  switch (a.kind) {
    case "crash":
      return `crash ${t(a.target)} for ${dur}`;
    case "pause":
      return `pause ${t(a.target)} for ${dur}`;
    case "partition":
      return `partition ${a.shape} around ${t(a.target)} for ${dur}`;
    case "link":
      return `link ${a.effect} on ${t(a.target)} for ${dur}`;
    case "kill":
      return `kill ${t(a.target)} (its supervisor restarts it)`;
    case "lose-server":
      return `lose the server of ${t(a.target)}`;
    case "supervisor-crash":
      return `crash the supervisor for ${dur}`;
  }
}

/**
 * Shrink a failing list (of faults, or of their indices): repeatedly drop chunks
 * (halves, quarters, ... single items) while `stillFails` holds, up to `maxRuns`
 * re-runs. Returns a list that still fails and from which, when the run budget
 * allowed, no single item can be dropped.
 */
/** The shrink search as a coroutine: yields candidates, is told whether each still fails. */
function* shrinkSteps<T>(
  items: readonly T[],
  maxRuns: number,
): Generator<T[], { items: T[]; runs: number }, boolean> {
  let current = items.slice();
  let runs = 0;
  let chunk = Math.max(1, Math.ceil(current.length / 2));
  while (current.length > 0 && runs < maxRuns) {
    let removedAny = false;
    for (let start = 0; start < current.length && runs < maxRuns; ) {
      const candidate = [...current.slice(0, start), ...current.slice(start + chunk)];
      runs++;
      if (yield candidate) {
        current = candidate;
        removedAny = true;
      } else {
        start += chunk;
      }
    }
    if (!removedAny) {
      if (chunk === 1) break;
      chunk = Math.max(1, Math.floor(chunk / 2));
    }
  }
  return { items: current, runs };
}

export function shrinkList<T>(
  items: readonly T[],
  stillFails: (candidate: T[]) => boolean,
  maxRuns = 200,
): { items: T[]; runs: number } {
  const steps = shrinkSteps(items, maxRuns);
  let step = steps.next();
  while (!step.done) step = steps.next(stillFails(step.value));
  return step.value;
}

/** shrinkList for a check that runs asynchronously (the pool simulator). */
export async function shrinkListAsync<T>(
  items: readonly T[],
  stillFails: (candidate: T[]) => Promise<boolean>,
  maxRuns = 200,
): Promise<{ items: T[]; runs: number }> {
  const steps = shrinkSteps(items, maxRuns);
  let step = steps.next();
  while (!step.done) step = steps.next(await stillFails(step.value));
  return step.value;
}
