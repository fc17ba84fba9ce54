/**
 * Health of one pool member as seen by the HFC's status polling (pure). A member
 * is "up" once a Status probe succeeds, and "down" again after `failureThreshold`
 * consecutive failed probes. The shell feeds probe results in and acts on the
 * returned events; the (later) healing controller consumes the same events.
 */
import { fail } from "@hsmpool/errors";
import type { MemberHealthState, NodeStatus } from "@hsmpool/wire";

export interface HealthConfig {
  /** How often the HFC polls each member's Status. */
  healthIntervalMs: number;
  /** Consecutive missed polls after which an up member counts as down. */
  failureThreshold: number;
  /**
   * A member whose process runs but has answered no health check for this long (after
   * answering since its launch) has lost its server: the HFC fences it and replaces it in
   * another rack. Long enough that a GC pause or a short SIGSTOP is not a lost server.
   */
  serverLostAfterMs: number;
}

export const DEFAULT_HEALTH_CONFIG: Readonly<HealthConfig> = Object.freeze({
  healthIntervalMs: 250,
  failureThreshold: 3,
  serverLostAfterMs: 30_000,
});

/** `serverLostAfterMs` defaults to DEFAULT_HEALTH_CONFIG's. */
export function validateHealthConfig(
  config: Omit<HealthConfig, "serverLostAfterMs"> & { serverLostAfterMs?: number },
): HealthConfig {
  const { healthIntervalMs, failureThreshold } = config;
  const serverLostAfterMs = config.serverLostAfterMs ?? DEFAULT_HEALTH_CONFIG.serverLostAfterMs;
  if (!Number.isInteger(healthIntervalMs) || healthIntervalMs < 20 || healthIntervalMs > 60_000) {
    fail("BadParameter", `healthIntervalMs must be an integer from 20 to 60000, got ${healthIntervalMs}`, {
      field: "healthIntervalMs",
    });
  }
  if (!Number.isInteger(failureThreshold) || failureThreshold < 1 || failureThreshold > 100) {
    fail("BadParameter", `failureThreshold must be an integer from 1 to 100, got ${failureThreshold}`, {
      field: "failureThreshold",
    });
  }
  const minLostMs = healthIntervalMs * failureThreshold;
  if (
    !Number.isInteger(serverLostAfterMs) ||
    serverLostAfterMs < minLostMs ||
    serverLostAfterMs > 86_400_000
  ) {
    fail(
      "BadParameter",
      `serverLostAfterMs must be an integer from ${minLostMs} (health interval × failure threshold) to 86400000, got ${serverLostAfterMs}`,
      { field: "serverLostAfterMs" },
    );
  }
  return { healthIntervalMs, failureThreshold, serverLostAfterMs };
}

/**
 * Whether a member has missed every health check for `serverLostAfterMs` after answering
 * since its launch (a member still starting is never "lost": its launch may be slow).
 */
export function missedHealthChecksFor(
  health: MemberHealth,
  nowMs: number,
  config: HealthConfig,
): number | null {
  if (!health.everUp || health.lastOkMs === null || health.health === "up") return null;
  const silentMs = nowMs - health.lastOkMs;
  return silentMs >= config.serverLostAfterMs ? silentMs : null;
}

export interface MemberHealth {
  readonly health: MemberHealthState;
  /** Failed probes since the last success. */
  readonly consecutiveFailures: number;
  /** The last Status the member answered (kept while down so the pool status can show its last role). */
  readonly lastStatus: NodeStatus | null;
  readonly lastOkMs: number | null;
  readonly lastError: string | null;
  /** Whether the member has ever answered; a member that never did is still starting. */
  readonly everUp: boolean;
}

export type HealthEvent =
  | { type: "member-up"; memberId: string; atMs: number }
  | { type: "member-down"; memberId: string; atMs: number; reason: string };

export interface HealthStep {
  state: MemberHealth;
  events: HealthEvent[];
}

/** A member that has not answered yet: not up (contract: a node without its data-plane cert is not up). */
export const STARTING: MemberHealth = Object.freeze({
  health: "down",
  consecutiveFailures: 0,
  lastStatus: null,
  lastOkMs: null,
  lastError: null,
  everUp: false,
});

/**
 * A process this HFC adopted (a previous HFC launched it and it still runs): not up
 * until it answers, but its silence counts toward a lost server from the adoption on,
 * as if it had just answered. Found by the simulator: a server lost while the HFC was
 * down left a member that never answered the new HFC, so it was never declared lost.
 */
export function adoptedHealth(nowMs: number): MemberHealth {
  return { ...STARTING, everUp: true, lastOkMs: nowMs };
}

export function probeSucceeded(
  memberId: string,
  state: MemberHealth,
  status: NodeStatus,
  nowMs: number,
): HealthStep {
  const next: MemberHealth = {
    health: "up",
    consecutiveFailures: 0,
    lastStatus: status,
    lastOkMs: nowMs,
    lastError: null,
    everUp: true,
  };
  const events: HealthEvent[] = state.health === "up" ? [] : [{ type: "member-up", memberId, atMs: nowMs }];
  return { state: next, events };
}

export function probeFailed(
  memberId: string,
  state: MemberHealth,
  error: string,
  nowMs: number,
  config: HealthConfig,
): HealthStep {
  const consecutiveFailures = state.consecutiveFailures + 1;
  const goesDown = state.health === "up" && consecutiveFailures >= config.failureThreshold;
  const next: MemberHealth = {
    ...state,
    health: goesDown ? "down" : state.health,
    consecutiveFailures,
    lastError: error,
  };
  const events: HealthEvent[] = goesDown
    ? [
        {
          type: "member-down",
          memberId,
          atMs: nowMs,
          reason: `${consecutiveFailures} missed polls: ${error}`,
        },
      ]
    : [];
  return { state: next, events };
}

/**
 * The member's process is known to have exited (the HFC is its parent and saw the
 * exit): down at once, without waiting for missed polls.
 */
export function processExited(
  memberId: string,
  state: MemberHealth,
  reason: string,
  nowMs: number,
): HealthStep {
  const next: MemberHealth = { ...state, health: "down", lastError: reason };
  const events: HealthEvent[] =
    state.health === "up" ? [{ type: "member-down", memberId, atMs: nowMs, reason }] : [];
  return { state: next, events };
}
