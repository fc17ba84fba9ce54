/**
 * The data of the healing controller (docs/healing-contract.md): what it knows about
 * members and servers, the healing records it shows in the pool status, the inputs
 * the shell feeds it and the actions it asks the shell to perform. Plain JSON-able
 * values only, so the persisted part can be written to the run dir as is.
 */

import type { HealingEvent, HealingKind, MemberSpec } from "@hsmpool/wire";
import type { InventoryRack } from "./placement.js";

export type { HealingKind, HealingPhase, MemberLifecycle, PhaseMark } from "@hsmpool/wire";

/** Phases in the order they happen; a record only ever moves forward through them. */
export const HEALING_PHASES = [
  "detected",
  "fenced",
  "launching",
  "attesting",
  "catching_up",
  "syncing_ownership",
  "ready",
] as const;
export type ProgressPhase = (typeof HEALING_PHASES)[number];

/** Which of the phases a kind of healing passes through (a restart keeps its state: no fencing, no join). */
export const PHASES_OF: Readonly<Record<HealingKind, readonly ProgressPhase[]>> = Object.freeze({
  restart: ["detected", "launching", "catching_up", "ready"],
  replace: [...HEALING_PHASES],
  upgrade: ["detected", "launching", "attesting", "catching_up", "syncing_ownership", "ready"],
});

/** One healing, as the pool status shows it. */
export type HealingRecord = HealingEvent;

/** A member in the HFC's book: the pool.json entry. */
export type MemberRecord = MemberSpec;

/** What the node's own Status said last (only answers given after its current launch count). */
export interface NodeObservation {
  role: string;
  /** "joining" | "learner" | "voter" | "removed" (node Status `membership`). */
  membership: string;
  ownership: "synced" | "pending";
  /** The Raft configuration as this node sees it. */
  members: { id: string; role: string }[];
  svn: number;
  mrsigner: string;
}

export type ProcessState = "unknown" | "launching" | "running" | "exited" | "stopping";

/** What the controller knows about a member's process (runtime only; rebuilt after an HFC restart). */
export interface MemberRuntime {
  process: ProcessState;
  pid: number;
  launchedAtMs: number | null;
  up: boolean;
  observed: NodeObservation | null;
  /** Set when the last exit says a relaunch cannot help (launch refused, join refused, bad config). */
  refusal: string | null;
  /** Restarts in a row that did not reach ready (for backoff and the crash-loop limit). */
  consecutiveRestarts: number;
  /** The last error line the node logged before its last exit (shown while crash-looping). */
  lastError: string | null;
  restartNotBeforeMs: number;
  /** The shell confirmed a fenced member's process is gone. */
  fenceConfirmed: boolean;
}

export interface LostServer {
  serverId: string;
  atMs: number;
}

export interface UpgradePlan {
  bundleDir: string;
  svn: number;
  mrsigner: string;
  state: "running" | "done" | "failed";
  reason: string;
  requestedMs: number;
  /** Joiners launched by this upgrade, in order. */
  launched: string[];
}

/** The controller's whole state; everything but `runtime` is persisted. */
export interface HealingState {
  members: MemberRecord[];
  runtime: Record<string, MemberRuntime>;
  lostServers: LostServer[];
  healings: HealingRecord[];
  nextHealingNumber: number;
  nextMemberNumber: number;
  paused: boolean;
  upgrade: UpgradePlan | null;
}

export interface HealingConfig {
  /** Voters the pool should have (3). */
  poolSize: number;
  inventory: readonly InventoryRack[];
  /** Seed of the pool's placement; replacement placement derives its seeds from it. */
  placementSeed: number;
  /** A joiner that is not a Raft member after this long is given up (killed, phase failed). */
  joinTimeoutMs: number;
  /** Backoff before the n-th restart in a row that did not reach ready: 0, base, 2·base, ... up to max. */
  restartBackoffBaseMs: number;
  restartBackoffMaxMs: number;
  /**
   * Launches in a row that exit before the member is ready, after which the HFC stops relaunching it
   * in place: a member fences it and is replaced on another server, a joiner fails.
   */
  crashLoopLimit: number;
  /** Finished healing records kept for the status. */
  historyLimit: number;
}

export const DEFAULT_HEALING_TIMING = Object.freeze({
  joinTimeoutMs: 60_000,
  restartBackoffBaseMs: 500,
  restartBackoffMaxMs: 10_000,
  crashLoopLimit: 5,
  historyLimit: 20,
});

export interface ProcessExit {
  code: number | null;
  signal: string | null;
}

export type HealingInput =
  | { type: "tick"; atMs: number }
  /** The member's process is running (found alive after an HFC restart); addresses when pool.json lacked them. */
  | {
      type: "adopted";
      memberId: string;
      pid: number;
      atMs: number;
      peerAddress?: string;
      dataAddress?: string;
    }
  | {
      type: "launched";
      memberId: string;
      pid: number;
      peerAddress: string;
      dataAddress: string;
      atMs: number;
    }
  | { type: "launch-failed"; memberId: string; reason: string; atMs: number }
  /**
   * `refusal`: the reason from the node's own log when the exit says a relaunch cannot help;
   * `lastError`: the last error line of that process's log (null when it logged none).
   */
  | {
      type: "process-exited";
      memberId: string;
      pid: number;
      exit: ProcessExit;
      refusal: string | null;
      lastError?: string | null;
      atMs: number;
    }
  /** A Status probe answered (`status`) or the member counts as down after missed polls (null). */
  | { type: "node-status"; memberId: string; status: NodeObservation | null; atMs: number }
  /** The fenced member's process is confirmed gone. */
  | { type: "fenced"; memberId: string; atMs: number }
  | { type: "server-lost"; serverId: string; atMs: number }
  | { type: "restart-requested"; memberId: string; atMs: number }
  | { type: "set-paused"; paused: boolean; atMs: number }
  | { type: "upgrade-requested"; bundleDir: string; svn: number; mrsigner: string; atMs: number };

export type HealingAction =
  /** Launch the member: its existing config (restart in place), or, with no addresses yet, a new join config. */
  | { type: "launch"; memberId: string }
  /** SIGKILL the member if it runs; it must never come back. Answer with a "fenced" input. */
  | { type: "fence"; memberId: string }
  /** Stop a member the pool no longer needs (SIGTERM) or a joiner given up on (SIGKILL). */
  | { type: "stop"; memberId: string; signal: "SIGTERM" | "SIGKILL" };

export interface HealingStep {
  state: HealingState;
  actions: HealingAction[];
}
