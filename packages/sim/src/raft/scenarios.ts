import type { Prng } from "@hsmpool/faults";
import {
  type Fault,
  type FaultAction,
  type Intensity,
  LINK_EFFECTS,
  PARTITION_KINDS,
  type PartitionKind,
  randomSchedule,
  type Target,
} from "../faults.js";
import { DEFAULT_LINK, type LinkConfig } from "../network.js";
import { US_PER_MS, US_PER_S } from "../scheduler.js";
import type { CompactionPolicy } from "./node.js";

/**
 * Named scenarios: each turns (its random stream, duration, intensity) into a plan —
 * cluster size, fault schedule, operator actions (membership changes, leadership
 * transfers) and knobs. "random" draws all of these from the seed; the others are
 * scripted around one kind of trouble and still vary timing and targets by seed.
 */

export type OperatorOp =
  | { kind: "transfer-leader" }
  | { kind: "add-learner" }
  | { kind: "promote" }
  | { kind: "remove"; target: "leader" | "follower" };

export interface ScheduledOp {
  atUs: number;
  op: OperatorOp;
}

export interface ScenarioPlan {
  voters: number;
  /** Extra nodes that operator add-learner actions can start. */
  spares: number;
  faults: Fault[];
  ops: ScheduledOp[];
  compaction: CompactionPolicy | null;
  preVote: boolean;
  checkQuorum: boolean;
  /** Flow control: small values split catch-up into many one-entry appends. */
  maxSizePerMsgBytes: number | undefined;
  maxInflightMsgs: number | undefined;
  /** Followers learn commits from the next append or heartbeat (as the shipped node runs). */
  lazyCommitBroadcast: boolean;
  link: LinkConfig;
}

export interface ScenarioContext {
  prng: Prng;
  intensity: Intensity;
  /** Faults and operator actions start in [fromUs, untilUs); everything heals at untilUs. */
  fromUs: number;
  untilUs: number;
}

export interface Scenario {
  name: string;
  description: string;
  plan(ctx: ScenarioContext): ScenarioPlan;
}

const WAL_REWRITE_BYTES = 256 * 1024;

/** Defaults every scenario starts from; Raft's optional protections and flow control vary by seed. */
function base(ctx: ScenarioContext, voters: number): ScenarioPlan {
  const { prng } = ctx;
  return {
    voters,
    spares: 0,
    faults: [],
    ops: [],
    compaction: { everyEntries: 200, walRewriteBytes: WAL_REWRITE_BYTES },
    preVote: prng.chance(0.7),
    checkQuorum: prng.chance(0.7),
    maxSizePerMsgBytes: prng.chance(0.3) ? prng.between(1, 64) : undefined,
    maxInflightMsgs: prng.chance(0.3) ? prng.between(1, 8) : undefined,
    // Its own stream: the draws above (and so every other seed's plan) stay as they were.
    lazyCommitBroadcast: prng.split("lazy-commit-broadcast").chance(0.5),
    link: DEFAULT_LINK,
  };
}

/** Faults of one action repeated with gaps in [gapMin, gapMax] and durations in [durMin, durMax]. */
function repeated(
  ctx: ScenarioContext,
  make: (prng: Prng) => FaultAction,
  gapUs: [number, number],
  durationUs: [number, number],
  overlap = false,
): Fault[] {
  const { prng } = ctx;
  const out: Fault[] = [];
  let at = ctx.fromUs;
  for (;;) {
    at += prng.between(gapUs[0], gapUs[1]);
    if (at >= ctx.untilUs) break;
    const d = Math.min(prng.between(durationUs[0], durationUs[1]), ctx.untilUs - at);
    out.push({ atUs: at, durationUs: d, salt: prng.nextU32(), action: make(prng) });
    if (!overlap) at += d;
  }
  return out;
}

function repeatedOps(ctx: ScenarioContext, ops: OperatorOp[], gapUs: [number, number]): ScheduledOp[] {
  const out: ScheduledOp[] = [];
  let at = ctx.fromUs;
  for (;;) {
    for (const op of ops) {
      at += ctx.prng.between(gapUs[0], gapUs[1]);
      if (at >= ctx.untilUs) return out;
      out.push({ atUs: at, op });
    }
  }
}

const churnCycle: OperatorOp[] = [
  { kind: "add-learner" },
  { kind: "promote" },
  { kind: "remove", target: "follower" },
  { kind: "add-learner" },
  { kind: "promote" },
  { kind: "remove", target: "leader" },
];

function spareCount(ops: readonly ScheduledOp[]): number {
  return ops.filter((o) => o.op.kind === "add-learner").length;
}

const followerOrLeader = (prng: Prng): Target => (prng.chance(0.5) ? "leader" : "follower");

export const SCENARIOS: readonly Scenario[] = [
  {
    name: "random",
    description:
      "3 or 5 nodes; random crashes, pauses, partitions of every shape and link faults at the chosen intensity; sometimes leader transfers, membership churn and aggressive compaction",
    plan(ctx) {
      const { prng } = ctx;
      const p = base(ctx, prng.chance(0.6) ? 3 : 5);
      p.faults = randomSchedule(prng, ctx.intensity, ctx.fromUs, ctx.untilUs);
      p.compaction = prng.chance(0.8)
        ? { everyEntries: prng.between(20, 300), walRewriteBytes: WAL_REWRITE_BYTES }
        : null;
      if (prng.chance(0.3))
        p.ops.push(...repeatedOps(ctx, [{ kind: "transfer-leader" }], [3 * US_PER_S, 12 * US_PER_S]));
      if (prng.chance(0.25)) {
        p.ops.push(...repeatedOps(ctx, churnCycle, [2 * US_PER_S, 5 * US_PER_S]));
        p.spares = spareCount(p.ops);
      }
      p.ops.sort((a, b) => a.atUs - b.atUs);
      return p;
    },
  },
  {
    name: "isolate-leader",
    description: "3 nodes; the current leader is cut off from everyone again and again",
    plan(ctx) {
      const p = base(ctx, 3);
      p.faults = repeated(
        ctx,
        () => ({ kind: "partition", shape: "isolate", target: "leader" }),
        [500 * US_PER_MS, 3 * US_PER_S],
        [1 * US_PER_S, 5 * US_PER_S],
      );
      return p;
    },
  },
  {
    name: "partition-minority",
    description: "5 nodes split into majority and minority (the leader often in the minority)",
    plan(ctx) {
      const p = base(ctx, 5);
      p.faults = repeated(
        ctx,
        (prng) => ({ kind: "partition", shape: "halves", target: followerOrLeader(prng) }),
        [500 * US_PER_MS, 3 * US_PER_S],
        [1 * US_PER_S, 6 * US_PER_S],
      );
      return p;
    },
  },
  {
    name: "bridge",
    description: "5 nodes in two halves joined by one bridge node that sees both (Jepsen's bridge)",
    plan(ctx) {
      const p = base(ctx, 5);
      p.faults = repeated(
        ctx,
        (prng) => ({ kind: "partition", shape: "bridge", target: followerOrLeader(prng) }),
        [500 * US_PER_MS, 3 * US_PER_S],
        [2 * US_PER_S, 8 * US_PER_S],
      );
      return p;
    },
  },
  {
    name: "ring",
    description: "5 nodes where every node sees a majority but no two see the same one (majorities ring)",
    plan(ctx) {
      const p = base(ctx, 5);
      p.faults = repeated(
        ctx,
        (prng) => ({ kind: "partition", shape: "ring", target: followerOrLeader(prng) }),
        [500 * US_PER_MS, 3 * US_PER_S],
        [2 * US_PER_S, 8 * US_PER_S],
      );
      return p;
    },
  },
  {
    name: "one-way",
    description: "3 nodes with one-way partitions: a node can hear others but its messages to some are lost",
    plan(ctx) {
      const p = base(ctx, 3);
      p.faults = repeated(
        ctx,
        (prng) => ({ kind: "partition", shape: "one-way", target: followerOrLeader(prng) }),
        [500 * US_PER_MS, 3 * US_PER_S],
        [1 * US_PER_S, 6 * US_PER_S],
      );
      return p;
    },
  },
  {
    name: "crash-loop",
    description:
      "3 nodes crashing and restarting over and over (leader included, sometimes two at once), with torn and corrupted unsynced writes",
    plan(ctx) {
      const p = base(ctx, 3);
      p.faults = repeated(
        ctx,
        (prng) => ({ kind: "crash", target: prng.pick<Target>(["leader", "follower", "any"]) }),
        [200 * US_PER_MS, 2 * US_PER_S],
        [100 * US_PER_MS, 3 * US_PER_S],
        true,
      );
      p.compaction = { everyEntries: 50, walRewriteBytes: 32 * 1024 };
      return p;
    },
  },
  {
    name: "pause-leader",
    description:
      "3 nodes; the leader freezes (a long GC pause) while the others elect a new one, then wakes up",
    plan(ctx) {
      const p = base(ctx, 3);
      p.faults = repeated(
        ctx,
        () => ({ kind: "pause", target: "leader" }),
        [500 * US_PER_MS, 3 * US_PER_S],
        [500 * US_PER_MS, 5 * US_PER_S],
      );
      return p;
    },
  },
  {
    name: "membership-churn",
    description:
      "3 voters; learners are added and promoted and voters removed (the leader too), under light crashes and partitions",
    plan(ctx) {
      const p = base(ctx, 3);
      p.ops = repeatedOps(ctx, churnCycle, [1500 * US_PER_MS, 4 * US_PER_S]);
      p.spares = spareCount(p.ops);
      p.faults = repeated(
        ctx,
        (prng) =>
          prng.chance(0.5)
            ? { kind: "crash", target: "any" }
            : { kind: "partition", shape: prng.pick<PartitionKind>(PARTITION_KINDS), target: "any" },
        [3 * US_PER_S, 8 * US_PER_S],
        [300 * US_PER_MS, 2 * US_PER_S],
      );
      p.compaction = { everyEntries: 100, walRewriteBytes: WAL_REWRITE_BYTES };
      return p;
    },
  },
  {
    name: "snapshot-catchup",
    description:
      "3 nodes compacting every 20 entries; followers are cut off or down long enough to need a snapshot, and new learners join by snapshot",
    plan(ctx) {
      const p = base(ctx, 3);
      p.compaction = { everyEntries: 20, walRewriteBytes: 16 * 1024 };
      p.faults = repeated(
        ctx,
        (prng) =>
          prng.chance(0.5)
            ? { kind: "crash", target: "follower" }
            : { kind: "partition", shape: "isolate", target: "follower" },
        [1 * US_PER_S, 4 * US_PER_S],
        [3 * US_PER_S, 10 * US_PER_S],
      );
      p.ops = repeatedOps(
        ctx,
        [{ kind: "add-learner" }, { kind: "promote" }, { kind: "remove", target: "follower" }],
        [4 * US_PER_S, 8 * US_PER_S],
      );
      p.spares = spareCount(p.ops);
      return p;
    },
  },
  {
    name: "leader-transfer",
    description:
      "3 or 5 nodes; leadership is handed to another voter every second or so while links lose, delay and stall messages (so a deposed leader's appends arrive late)",
    plan(ctx) {
      const p = base(ctx, ctx.prng.chance(0.5) ? 3 : 5);
      p.ops = repeatedOps(ctx, [{ kind: "transfer-leader" }], [300 * US_PER_MS, 1500 * US_PER_MS]);
      p.faults = repeated(
        ctx,
        (prng) => ({
          kind: "link",
          effect: prng.chance(0.5) ? "stall" : prng.pick(LINK_EFFECTS),
          target: "all",
        }),
        [500 * US_PER_MS, 2 * US_PER_S],
        [2 * US_PER_S, 6 * US_PER_S],
      );
      return p;
    },
  },
];

/** Appended to SCENARIOS below; kept apart because it is the most contrived. */
const FIGURE_8: Scenario = {
  name: "figure-8",
  description:
    "5 nodes, one entry per append; fresh leaders are crashed or cut off within milliseconds of winning and links stall, so old-term suffixes diverge: the Raft paper's Figure 8",
  plan(ctx) {
    const p = base(ctx, 5);
    p.maxSizePerMsgBytes = 1;
    p.maxInflightMsgs = ctx.prng.between(1, 4);
    // Targeted nemeses: the freshly elected leader is crashed or cut off within a few
    // milliseconds, so its new-term entries reach nobody and old-term entries get
    // replicated one append at a time by whoever leads next.
    const hitLeader = (prng: Prng): FaultAction =>
      prng.chance(0.5)
        ? { kind: "crash", target: "leader" }
        : { kind: "partition", shape: "isolate", target: "leader" };
    const reactive = repeated(
      ctx,
      hitLeader,
      [100 * US_PER_MS, 1 * US_PER_S],
      [300 * US_PER_MS, 3 * US_PER_S],
      true,
    );
    const timed = repeated(
      ctx,
      hitLeader,
      [500 * US_PER_MS, 2 * US_PER_S],
      [300 * US_PER_MS, 3 * US_PER_S],
      true,
    );
    p.faults = [
      ...reactive.map((f) => ({ ...f, onElection: { delayUs: ctx.prng.between(0, 20 * US_PER_MS) } })),
      ...timed,
      // Stalled links deliver a deposed leader's appends long after it lost its term.
      ...repeated(
        ctx,
        () => ({ kind: "link", effect: "stall", target: "all" }),
        [1 * US_PER_S, 4 * US_PER_S],
        [1 * US_PER_S, 4 * US_PER_S],
      ),
    ].sort((a, b) => a.atUs - b.atUs);
    return p;
  },
};

export const ALL_SCENARIOS: readonly Scenario[] = [...SCENARIOS, FIGURE_8];

export function findScenario(name: string): Scenario | undefined {
  return ALL_SCENARIOS.find((s) => s.name === name);
}

export const SCENARIO_NAMES: readonly string[] = ALL_SCENARIOS.map((s) => s.name);

export const SCENARIOS_BY_NAME: ReadonlyMap<string, Scenario> = new Map(
  ALL_SCENARIOS.map((s) => [s.name, s]),
);
