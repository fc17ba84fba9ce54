/**
 * The shape of a chaos scenario after validation (chaos/*.yaml). Everything here is
 * plain data with units in the names; scenario/validate.ts builds it from YAML and
 * says `file:line: message` for anything it cannot accept.
 */

export const OP_NAMES = [
  "create",
  "get",
  "list",
  "delete",
  "sign",
  "verify",
  // The key lifecycle (issue 16): versions, soft delete, recovery, purge, single-key backup and restore.
  "rotate",
  "update",
  "recover",
  "purge",
  "backup",
  "restore",
] as const;
export type OpName = (typeof OP_NAMES)[number];
/** Operations that may change a key (a lost answer leaves their outcome unknown); the rest only read. */
export const WRITE_OPS: ReadonlySet<OpName> = new Set([
  "create",
  "delete",
  "rotate",
  "update",
  "recover",
  "purge",
  "restore",
]);

/** Which member a fault hits, resolved when it fires: the primary, any secondary, any member, or a node id. */
export type TargetSpec = string;
export const TARGET_PATTERN = /^(primary|secondary|random|n[1-9][0-9]*)$/;

export const PARTITION_SHAPES = [
  "isolate-primary",
  "isolate",
  "majority-minority",
  "one-way",
  "bridge",
  "majorities-ring",
] as const;
export type PartitionShapeName = (typeof PARTITION_SHAPES)[number];

export const DISK_MODES = ["slow-fsync", "full", "fail-writes"] as const;
export type DiskMode = (typeof DISK_MODES)[number];

export type FaultSpec =
  | { kind: "kill"; target: TargetSpec }
  | { kind: "pause"; target: TargetSpec }
  /** `target` is the isolated node (isolate), the minority (majority-minority), the sender (one-way) or the bridge. */
  | { kind: "partition"; shape: PartitionShapeName; target: TargetSpec }
  | {
      kind: "link";
      /** Every link from and to this member ("random" / "primary" / ...), or "all" links. */
      target: TargetSpec | "all";
      latencyMs: number;
      jitterMs: number;
      /** 0 = unlimited. */
      bandwidthBytesPerS: number;
      /** Probability per forwarded chunk that the connection is reset. */
      resetProbability: number;
      blackhole: boolean;
    }
  | { kind: "clock"; target: TargetSpec; offsetMs: number }
  | { kind: "disk"; target: TargetSpec; mode: DiskMode; delayMs: number }
  | { kind: "hsm"; target: TargetSpec; errorRate: number; latencyMs: number; wedge: boolean }
  | { kind: "server-loss"; target: TargetSpec }
  | { kind: "rack-loss"; target: TargetSpec }
  /** Each firing picks one of `choices` with the run's seeded randomness. */
  | { kind: "random"; choices: FaultSpec[] };

export type FaultKind = FaultSpec["kind"];
export const FAULT_KINDS: readonly FaultKind[] = [
  "kill",
  "pause",
  "partition",
  "link",
  "clock",
  "disk",
  "hsm",
  "server-loss",
  "rack-loss",
  "random",
];

/** One line of the nemesis schedule: a fault once (`atMs`) or repeatedly (`everyMs`). */
export interface NemesisEntry {
  /** Line in the scenario file, for messages about this entry. */
  line: number;
  fault: FaultSpec;
  atMs?: number;
  everyMs?: number;
  /** For `every`: first firing at or after this time (default: everyMs). */
  fromMs: number;
  /** For `every`: no firing starts after this time (default: the end of the workload). */
  untilMs?: number;
  /** A uniform random shift in [0, jitterMs] added to each firing (seeded). */
  jitterMs: number;
  /** Undo the fault this long after it started; absent: it stays until the final heal-everything. */
  healAfterMs?: number;
}

export interface PoolSettings {
  /** The fabric the run creates: racks x servers (a rack loss needs a spare rack to heal into). */
  racks: number;
  serversPerRack: number;
  healthIntervalMs: number;
  failureThreshold: number;
  /** How long the pool may take to become healthy at the start. */
  startTimeoutMs: number;
  /** After heal-everything: how long the pool may take to be healthy again before the run says it did not heal. */
  healTimeoutMs: number;
  /**
   * TEST-ONLY: start the nodes in a deliberately broken mode that acknowledges a write
   * before it is committed, to prove the checkers can fail. Never for real pools.
   */
  unsafeAckBeforeCommit: boolean;
}

export interface WorkloadSettings {
  clients: number;
  /** Total operations per second over all clients (each client waits exponentially distributed gaps). */
  rateOpsPerS: number;
  /** Size of the key space (`chaos-k0` ... ); small so operations contend. */
  keys: number;
  /** One logical operation, retries included, gives up after this. */
  opTimeoutMs: number;
  /** Relative weights of the operations. */
  mix: Record<OpName, number>;
}

export interface Hypothesis {
  /** Fraction of operations that succeed (0..1). */
  minAvailability?: number;
  maxP99LatencyMs?: number;
  /** Longest time any fault may take to get back to three healthy, synced members. */
  maxHealingMs?: number;
  /** Longest window with no successful operation. */
  maxUnavailableMs?: number;
}

export interface CheckSettings {
  /** Linearizability search bound per key; hitting it gives the verdict "unknown". */
  maxSearchSteps: number;
  /** Windows without a successful operation shorter than this are not reported. */
  minGapMs: number;
}

/**
 * A region loss (issue 15): full backups to blob storage during the workload, then every
 * server of the pool is lost at `atMs`; after the workload a blank pool is recovered from
 * the security domain (a quorum of the customer's keys) and the latest successful backup.
 */
export interface RegionLossSettings {
  /** Full backups, one after the other, this often (the first at backupEveryMs). */
  backupEveryMs: number;
  /** When every server of the pool is lost (within the workload; the workload runs on against nothing). */
  atMs: number;
  /**
   * TEST-ONLY: the recovery restores key by key and skips one key the backup holds, to prove
   * the recovery checker can fail. Never for real recoveries.
   */
  unsafeRestoreSkipsKey: boolean;
}

export interface Scenario {
  /** File the scenario came from (as given). */
  file: string;
  name: string;
  description: string;
  durationMs: number;
  seed: number;
  pool: PoolSettings;
  workload: WorkloadSettings;
  nemesis: NemesisEntry[];
  hypothesis: Hypothesis;
  checks: CheckSettings;
  /** Absent: the pool survives the run (heal-everything, final reads, durability). */
  regionLoss?: RegionLossSettings;
}

export const DEFAULT_POOL: PoolSettings = {
  racks: 3,
  serversPerRack: 2,
  healthIntervalMs: 250,
  failureThreshold: 3,
  startTimeoutMs: 90_000,
  healTimeoutMs: 60_000,
  unsafeAckBeforeCommit: false,
};

export const DEFAULT_MIX: Record<OpName, number> = {
  create: 3,
  get: 3,
  list: 1,
  delete: 1,
  sign: 2,
  verify: 1,
  rotate: 1,
  update: 1,
  recover: 1,
  purge: 1,
  backup: 1,
  restore: 1,
};

export const DEFAULT_WORKLOAD: WorkloadSettings = {
  clients: 4,
  rateOpsPerS: 20,
  keys: 6,
  opTimeoutMs: 8000,
  mix: DEFAULT_MIX,
};

export const DEFAULT_CHECKS: CheckSettings = { maxSearchSteps: 2_000_000, minGapMs: 1000 };
