/**
 * The HFC's supervision and healing loop, wired around one shared context: the
 * supervisor (node processes), the health poller (Status probes on a timer) and the
 * healing loop (pure healing controller, persisted before anything acts). The HFC
 * process (controller.ts) runs it with the real seams beside its servers; the
 * simulator runs the same object with simulated ones, in virtual time.
 */
import type * as grpc from "@grpc/grpc-js";
import type { HealingState, InventoryRack } from "@hsmpool/healing";
import { defaultHealingConfig } from "@hsmpool/healing";
import type { PoolSpec, RunPaths, TimerId } from "@hsmpool/wire";
import type { Logger } from "pino";
import {
  type ControllerContext,
  type ControllerOptions,
  type MemberShell,
  POOL_SIZE,
  poolSpecOf,
  RECOVERY_PROBE_MS,
} from "./controller-context.js";
import { HealingLoop } from "./healing-loop.js";
import { HealingStore } from "./healing-store.js";
import { HealthPoller, poolStatus } from "./health-poller.js";
import { HfcMetrics } from "./hfc-metrics.js";
import type { HfcSeams } from "./seams.js";
import { NodeSupervisor } from "./supervisor.js";
import type { HfcVariant } from "./variants.js";

export interface SupervisionParams {
  opts: ControllerOptions;
  paths: RunPaths;
  fabricDir: string;
  pool: Omit<PoolSpec, "members">;
  /** Where the healing controller starts (a new pool's, or restored from the run dir). */
  healing: HealingState;
  inventory: InventoryRack[];
  log: Logger;
  seams: HfcSeams;
  /** Simulator self-tests only. */
  variants?: ReadonlySet<HfcVariant>;
}

export class Supervision {
  readonly ctx: ControllerContext;
  readonly store: HealingStore;
  readonly supervisor: NodeSupervisor;
  readonly poller: HealthPoller;
  readonly loop: HealingLoop;
  private pollTimer: TimerId | undefined;

  constructor(p: SupervisionParams) {
    this.store = new HealingStore(p.paths, p.seams.files);
    this.ctx = {
      opts: p.opts,
      paths: p.paths,
      fabricDir: p.fabricDir,
      pool: p.pool,
      healingConfig: defaultHealingConfig({
        poolSize: POOL_SIZE,
        inventory: p.inventory,
        placementSeed: p.pool.placementSeed,
        ...p.opts.healing,
      }),
      log: p.log,
      nowMs: p.opts.nowMs ?? (() => p.seams.clock.now()),
      seams: p.seams,
      variants: p.variants ?? new Set(),
      shells: new Map<string, MemberShell>(),
      healing: p.healing,
      stopping: undefined,
      controlAddress: "",
      controlPort: 0,
      metrics: new HfcMetrics({ pool: p.pool.poolId }, () => poolStatus(this.ctx)),
      metricsUrl: "",
      credentials: undefined as unknown as grpc.ChannelCredentials, // the HFC sets them before anything probes
      enqueue: (input) => this.loop.enqueue(input),
    };
    this.poller = new HealthPoller(this.ctx);
    this.supervisor = new NodeSupervisor(this.ctx, (shell, step) => this.poller.applyHealth(shell, step));
    this.loop = new HealingLoop(
      this.ctx,
      this.store,
      (action) => this.supervisor.perform(action),
      () => this.poller.logPoolChanges(),
    );
  }

  /** Persists the starting state, picks up the members' processes (adopt, restart or launch), writes pids.json. */
  async takeOver(): Promise<void> {
    const { ctx } = this;
    await this.store.save(poolSpecOf(ctx), ctx.healing, ctx.controlPort);
    await this.supervisor.takeOverNodes();
    await this.supervisor.writePids();
  }

  /** Starts the health timer: probes who is due, and gives the healing controller its ticks. */
  startPolling(): void {
    const { clock } = this.ctx.seams;
    this.pollTimer = clock.setInterval(
      () => this.poller.onTimer(),
      Math.min(RECOVERY_PROBE_MS, this.ctx.opts.health.healthIntervalMs),
    );
  }

  /** Stops the timer and every node (SIGTERM, then SIGKILL), closes the probes, writes pids.json. */
  async stop(): Promise<void> {
    const { ctx } = this;
    ctx.seams.clock.clear(this.pollTimer);
    await this.supervisor.stopAll();
    for (const s of ctx.shells.values()) s.statusClient?.close();
    await this.supervisor.writePids();
  }
}
