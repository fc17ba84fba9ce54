/**
 * The HFC's health poller: probes each live member's Status on the data plane
 * (often while it is coming back, every health interval otherwise), turns answers
 * and silences into health steps (pure rules in health.ts), tells the healing
 * loop when what a member says about itself changes, and aggregates the pool
 * status the control API serves.
 */

import type { NodeObservation } from "@hsmpool/healing";
import {
  aggregatePoolStatus,
  crashLoopOf,
  type HealthStep,
  missedHealthChecksFor,
  probeFailed,
  probeSucceeded,
  statusMismatch,
} from "@hsmpool/healing";
import type { MemberSpec, NodeStatus, PoolStatus } from "@hsmpool/wire";
import { fromServiceError } from "@hsmpool/wire";
import {
  type ControllerContext,
  isLive,
  type MemberShell,
  POOL_SIZE,
  RECOVERY_PROBE_MS,
  shellOf,
  specOf,
} from "./controller-context.js";
import type { StatusProbe } from "./seams.js";

export class HealthPoller {
  private nextTickMs = 0;
  /** Servers this HFC declared lost (each once). */
  private readonly declared = new Set<string>();
  private lastLogged = { state: "", primary: "", term: 0 };

  constructor(private readonly ctx: ControllerContext) {}

  /** One timer tick: probe who is due, and every health interval give the healing controller a tick. */
  onTimer(): void {
    const now = this.ctx.nowMs();
    this.pollAll(now);
    this.declareSilentServersLost(now);
    if (now < this.nextTickMs) return;
    this.nextTickMs = now + this.ctx.opts.health.healthIntervalMs;
    void this.ctx.enqueue({ type: "tick", atMs: now });
  }

  /** Whether the member is on its way back: launched but not up, joining, or in an open healing. */
  private recovering(m: MemberSpec, shell: MemberShell): boolean {
    if (!shell.running) return false;
    if (shell.health.health !== "up" || m.lifecycle === "joining") return true;
    return this.ctx.healing.healings.some(
      (h) => h.phase !== "ready" && h.phase !== "failed" && (h.memberId === m.id || h.replacementId === m.id),
    );
  }

  private pollAll(now: number): void {
    const { ctx } = this;
    const intervalMs = ctx.opts.health.healthIntervalMs;
    const deadlineMs = Math.max(200, intervalMs);
    for (const m of ctx.healing.members) {
      if (!isLive(m) || m.dataAddress === "") continue;
      const shell = shellOf(ctx, m.id);
      if (shell.probeInFlight || now < shell.nextProbeMs) continue;
      shell.nextProbeMs =
        now + (this.recovering(m, shell) ? Math.min(RECOVERY_PROBE_MS, intervalMs) : intervalMs);
      if (shell.statusAddress !== m.dataAddress) {
        shell.statusClient?.close();
        shell.statusClient = ctx.seams.statusProbe(m.dataAddress, ctx.credentials);
        shell.statusAddress = m.dataAddress;
      }
      const client = shell.statusClient as StatusProbe;
      shell.probeInFlight = true;
      client
        .status(deadlineMs)
        .then(
          (status) => this.onProbe(shell, status, null),
          (e: unknown) => this.onProbe(shell, null, fromServiceError(e, "Status").error.message),
        )
        .finally(() => {
          shell.probeInFlight = false;
        });
    }
  }

  /**
   * Automatic failure detection (seed 003: the HFC detects failed servers itself): a member
   * whose process runs but has missed every health check for `serverLostAfterMs` has lost its
   * server. The healing controller then fences it (SIGKILL: a SIGSTOPped process never
   * resumes as a member) and replaces it in another rack, exactly as for `hsmpool kill --server`.
   */
  private declareSilentServersLost(now: number): void {
    const { ctx } = this;
    if (ctx.stopping) return;
    for (const m of ctx.healing.members) {
      if (!isLive(m) || this.declared.has(m.serverId)) continue;
      if (ctx.healing.lostServers.some((s) => s.serverId === m.serverId)) continue;
      const shell = shellOf(ctx, m.id);
      if (!shell.running) continue; // an exited process is restarted (or given up on) instead
      const silentMs = missedHealthChecksFor(shell.health, now, ctx.opts.health);
      if (silentMs === null) continue;
      this.declared.add(m.serverId);
      ctx.log.warn(
        { serverId: m.serverId, nodeId: m.id, silentMs, lastError: shell.health.lastError },
        "server declared lost: its member missed every health check",
      );
      ctx.metrics.serverLost("missed-health-checks");
      void ctx.enqueue({ type: "server-lost", serverId: m.serverId, atMs: now });
    }
  }

  private onProbe(shell: MemberShell, status: NodeStatus | null, error: string | null): void {
    const { ctx } = this;
    const m = specOf(ctx, shell.id);
    if (!m || ctx.stopping) return;
    const now = ctx.nowMs();
    // An answer that raced with the process's exit is not a sign of life.
    const mismatch = !shell.running
      ? "process not running"
      : status
        ? statusMismatch(m, ctx.pool.poolId, status)
        : null;
    const step =
      status && !mismatch
        ? probeSucceeded(m.id, shell.health, status, now)
        : probeFailed(m.id, shell.health, mismatch ?? error ?? "no answer", now, ctx.opts.health);
    this.applyHealth(shell, step);
    this.feedObservation(shell, now);
  }

  /** Tells the healing controller when what a member says about itself changes (not on every poll). */
  private feedObservation(shell: MemberShell, atMs: number): void {
    const last = shell.health.lastStatus;
    const observation: NodeObservation | null =
      shell.health.health === "up" && last ? observationOf(last) : null;
    const key = JSON.stringify(observation);
    if (key === shell.fedObservation) return;
    shell.fedObservation = key;
    void this.ctx.enqueue({ type: "node-status", memberId: shell.id, status: observation, atMs });
  }

  applyHealth(shell: MemberShell, step: HealthStep): void {
    shell.health = step.state;
    for (const event of step.events) {
      if (event.type === "member-up") this.ctx.log.info({ nodeId: event.memberId }, "member up");
      else this.ctx.log.warn({ nodeId: event.memberId, reason: event.reason }, "member down");
    }
    this.logPoolChanges();
  }

  logPoolChanges(): void {
    const s = poolStatus(this.ctx);
    const last = this.lastLogged;
    if (s.state !== last.state || s.primary !== last.primary || s.term !== last.term) {
      this.ctx.log.info({ state: s.state, primary: s.primary, term: s.term }, "pool status changed");
      this.lastLogged = { state: s.state, primary: s.primary, term: s.term };
    }
  }
}

/** The pool status as the control API and `hsmpool status` show it. */
export function poolStatus(ctx: ControllerContext): PoolStatus {
  const h = ctx.healing;
  return aggregatePoolStatus({
    poolId: ctx.pool.poolId,
    memberCount: POOL_SIZE,
    members: h.members.filter(isLive).map((spec) => {
      const shell = shellOf(ctx, spec.id);
      return {
        spec,
        health: shell.health,
        pid: shell.process?.pid ?? 0,
        crashLoop: crashLoopOf(h, spec.id),
      };
    }),
    fabricDir: ctx.fabricDir,
    runDir: ctx.paths.runDir,
    observedMs: ctx.nowMs(),
    metricsUrl: ctx.metricsUrl,
    healing: {
      healing: h.healings,
      healingPaused: h.paused,
      lostServers: h.lostServers.map((s) => s.serverId),
      upgrade: h.upgrade
        ? {
            bundleDir: h.upgrade.bundleDir,
            svn: h.upgrade.svn,
            state: h.upgrade.state,
            reason: h.upgrade.reason,
            launched: h.upgrade.launched,
          }
        : { bundleDir: "", svn: 0, state: "", reason: "", launched: [] },
    },
  });
}

function observationOf(s: NodeStatus): NodeObservation {
  return {
    role: s.role,
    membership: s.membership,
    ownership: s.ownership === "synced" ? "synced" : "pending",
    members: s.members.map((m) => ({ id: m.id, role: m.role })),
    svn: s.svn,
    mrsigner: s.mrsigner,
  };
}
