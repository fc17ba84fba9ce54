/**
 * What the parts of the HFC process shell share: the run dir, the pool, the
 * healing controller's current state and each member's process/health shell.
 * controller.ts wires the parts (supervisor, health poller, healing loop,
 * control API) around one of these; each part reads and updates it.
 */
import type * as grpc from "@grpc/grpc-js";
import type { HealingConfig, HealingInput, HealingState } from "@hsmpool/healing";
import { type HealthConfig, type MemberHealth, STARTING } from "@hsmpool/healing";
import type { MemberSpec, PoolSpec, RunPaths } from "@hsmpool/wire";
import type { Logger } from "pino";
import type { HfcMetrics } from "./hfc-metrics.js";
import type { NodeLauncher, NodeProcess } from "./launcher.js";
import type { RaftTiming } from "./node-config.js";
import type { HfcSeams, StatusProbe } from "./seams.js";
import type { HfcVariant } from "./variants.js";

export const POOL_SIZE = 3;
/** How long nodes get to finish after SIGTERM before SIGKILL (the contract gives a node ~2 s to drain). */
export const STOP_GRACE_MS = 5000;
/**
 * A member coming back (launched, not up yet, or healing) is probed this often
 * instead of every health interval, so the status shows it ready without delay.
 */
export const RECOVERY_PROBE_MS = 50;
/** How long a fence waits for the killed process to be gone before it says so anyway. */
export const FENCE_WAIT_MS = 5000;

export interface ControllerOptions {
  runDir: string;
  fabricDir: string;
  /** Only for a new pool; default `pool-<8 hex>`. */
  poolId?: string;
  /** Only for a new pool: recovery mode (blank, waits for a security-domain upload). */
  recover?: boolean;
  /** The node entry script (`packages/node/dist/main.js`). */
  nodeMain: string;
  /** How nodes run: child processes (default) or one container each (DockerNodeLauncher). */
  launcher?: NodeLauncher;
  /** The signed enclave bundle the nodes launch (default: the node's dist dir). */
  bundleDir: string;
  health: HealthConfig;
  timing: RaftTiming;
  logger: Logger;
  /** Control API port on 127.0.0.1 (0: the port the last HFC of this run dir used, else any free port). */
  controlPort?: number;
  /** Healing timing overrides (join timeout, restart backoff). */
  healing?: Partial<Pick<HealingConfig, "joinTimeoutMs" | "restartBackoffBaseMs" | "restartBackoffMaxMs">>;
  nowMs?: () => number;
}

/** The shell's side of a member: its process, health and Status client. */
export interface MemberShell {
  id: string;
  health: MemberHealth;
  process: NodeProcess | undefined;
  running: boolean;
  probeInFlight: boolean;
  statusClient: StatusProbe | undefined;
  statusAddress: string;
  /** When the next Status probe is due. */
  nextProbeMs: number;
  /** What was last fed to the healing controller about this member's Status. */
  fedObservation: string;
}

export interface ControllerContext {
  readonly opts: ControllerOptions;
  readonly paths: RunPaths;
  readonly fabricDir: string;
  readonly pool: Omit<PoolSpec, "members">;
  readonly healingConfig: HealingConfig;
  readonly log: Logger;
  readonly nowMs: () => number;
  /** The outside world: clock, run-dir files, processes, launcher, Status probes. */
  readonly seams: HfcSeams;
  /** Deliberately broken behaviours (simulator self-tests only; empty in the HFC process). */
  readonly variants: ReadonlySet<HfcVariant>;
  readonly shells: Map<string, MemberShell>;
  /** The healing controller's state; only the healing loop replaces it (after persisting it). */
  healing: HealingState;
  /** Set once Shutdown began. */
  stopping: Promise<void> | undefined;
  /** The control API's address (empty until it listens) and port. */
  controlAddress: string;
  controlPort: number;
  /** The HFC's Prometheus series, and where they are served ("" until then). */
  readonly metrics: HfcMetrics;
  metricsUrl: string;
  /** Client credentials for the nodes' data plane (the Status probe). */
  credentials: grpc.ChannelCredentials;
  /** Queues an observation for the healing controller; resolves once it has been processed. */
  enqueue(input: HealingInput): Promise<void>;
}

export const isLive = (m: MemberSpec) => m.lifecycle === "active" || m.lifecycle === "joining";

export function poolSpecOf(ctx: ControllerContext): PoolSpec {
  return { ...ctx.pool, members: ctx.healing.members };
}

export function specOf(ctx: ControllerContext, id: string): MemberSpec | undefined {
  return ctx.healing.members.find((m) => m.id === id);
}

/** The member's shell, created on first use. */
export function shellOf(ctx: ControllerContext, id: string): MemberShell {
  let s = ctx.shells.get(id);
  if (!s) {
    s = {
      id,
      health: STARTING,
      process: undefined,
      running: false,
      probeInFlight: false,
      statusClient: undefined,
      statusAddress: "",
      nextProbeMs: 0,
      fedObservation: "",
    };
    ctx.shells.set(id, s);
  }
  return s;
}
