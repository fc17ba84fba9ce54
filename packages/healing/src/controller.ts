/**
 * The healing controller (pure): `healingStep(config, state, input)` applies one
 * observation (a process exit, a Status answer, a lost server, a tick of time, ...)
 * and returns the new state plus the actions the shell must perform. It never reads
 * a clock, a socket or a file; time arrives in the inputs.
 *
 * Policy (docs/healing-contract.md):
 * - a crashed process on a healthy server is restarted in place (same config and
 *   state; it rejoins from its log), with a growing delay while restarts keep failing;
 * - a member on a lost server is fenced first (never launched again), then a blank
 *   joiner replaces it on a spare server in a rack no live member uses;
 * - an upgrade replaces the members one at a time with joiners of the new bundle;
 * - only one joiner at a time (the pool changes its configuration one step at a time);
 * - an exit that says a relaunch cannot help (launch refused, join refused, bad config)
 *   fails the healing with the node's own reason instead of relaunching;
 * - a member that stops answering while its process runs (paused, cut off) is left
 *   alone: restarting it would not reconnect it, and the pool copes without it.
 */
import {
  DEFAULT_HEALING_TIMING,
  type HealingAction,
  type HealingConfig,
  type HealingInput,
  type HealingRecord,
  type HealingState,
  type HealingStep,
  type MemberRecord,
  type MemberRuntime,
  type NodeObservation,
} from "./model.js";
import {
  advance,
  failRecord,
  findLatest,
  findOpen,
  findOpenForJoiner,
  isOpen,
  openRecord,
  trimHistory,
} from "./records.js";
import { placeReplacement } from "./replacement-placement.js";
import { poolMinimumSvn } from "./upgrade-check.js";

export function freshRuntime(): MemberRuntime {
  return {
    process: "unknown",
    pid: 0,
    launchedAtMs: null,
    up: false,
    observed: null,
    refusal: null,
    consecutiveRestarts: 0,
    lastError: null,
    restartNotBeforeMs: 0,
    fenceConfirmed: false,
  };
}

/**
 * A member in a crash loop: at least two launches in a row have not reached ready and it is
 * not up. Null when it is not; else the last error line its node logged.
 */
export function crashLoopOf(state: HealingState, memberId: string): { lastError: string } | null {
  const rt = state.runtime[memberId];
  if (!rt || rt.up || rt.consecutiveRestarts < 2) return null;
  return { lastError: rt.lastError ?? "" };
}

export function initialHealingState(members: MemberRecord[]): HealingState {
  return {
    members: members.map((m) => ({ ...m })),
    runtime: Object.fromEntries(members.map((m) => [m.id, freshRuntime()])),
    lostServers: [],
    healings: [],
    nextHealingNumber: 1,
    nextMemberNumber: nextMemberNumberAfter(members),
    paused: false,
    upgrade: null,
  };
}

/** Member ids are `n<k>`; new ones continue the sequence. */
export function nextMemberNumberAfter(members: readonly { id: string }[]): number {
  const numbers = members.map((m) => /^n(\d+)$/.exec(m.id)?.[1]).map((n) => (n ? Number(n) : 0));
  return Math.max(0, ...numbers) + 1;
}

export function restartDelayMs(config: HealingConfig, restartsInARow: number): number {
  if (restartsInARow <= 0) return 0;
  return Math.min(config.restartBackoffMaxMs, config.restartBackoffBaseMs * 2 ** (restartsInARow - 1));
}

export function defaultHealingConfig(
  partial: Pick<HealingConfig, "poolSize" | "inventory" | "placementSeed"> & Partial<HealingConfig>,
): HealingConfig {
  return { ...DEFAULT_HEALING_TIMING, ...partial };
}

const isLive = (m: MemberRecord) => m.lifecycle === "active" || m.lifecycle === "joining";
/**
 * Where a node stands in the Raft membership: its own `membership` field, or (from a
 * node that does not report it) the configuration it has applied.
 */
function membershipOf(o: NodeObservation, id: string): string {
  if (o.membership !== "") return o.membership;
  const self = o.members.find((m) => m.id === id);
  return self ? self.role : "joining";
}

/**
 * The joiner gets `joinTimeoutMs` in its config and gives up by itself with a reason
 * in its log; the HFC waits this much longer before it gives up on a silent one.
 */
export const JOIN_GIVE_UP_GRACE_MS = 15_000;

/** Context of one step: the state being changed, the actions collected, the time. */
class Step {
  readonly actions: HealingAction[] = [];
  constructor(
    readonly config: HealingConfig,
    readonly state: HealingState,
    readonly atMs: number,
  ) {}

  member(id: string): MemberRecord | undefined {
    return this.state.members.find((m) => m.id === id);
  }

  runtime(id: string): MemberRuntime {
    let rt = this.state.runtime[id];
    if (!rt) {
      rt = freshRuntime();
      this.state.runtime[id] = rt;
    }
    return rt;
  }

  isLost(serverId: string): boolean {
    return this.state.lostServers.some((s) => s.serverId === serverId);
  }

  launch(m: MemberRecord): void {
    const rt = this.runtime(m.id);
    rt.process = "launching";
    rt.consecutiveRestarts += 1;
    this.actions.push({ type: "launch", memberId: m.id });
  }

  /** A joiner's healing failed: it never runs again, and a failed upgrade step stops the upgrade. */
  failJoiner(joiner: MemberRecord, reason: string): void {
    const record = findOpenForJoiner(this.state, joiner.id);
    if (record) failRecord(record, reason, this.atMs);
    joiner.lifecycle = "failed";
    const upgrade = this.state.upgrade;
    if (upgrade?.state === "running" && upgrade.launched.includes(joiner.id)) {
      upgrade.state = "failed";
      upgrade.reason = `${joiner.id}: ${reason}`;
    }
  }
}

export function healingStep(config: HealingConfig, current: HealingState, input: HealingInput): HealingStep {
  const step = new Step(config, structuredClone(current), input.atMs);
  apply(step, input);
  reconcile(step);
  trimHistory(step.state, config.historyLimit);
  return { state: step.state, actions: step.actions };
}

// ---------------------------------------------------------------- inputs

function apply(step: Step, input: HealingInput): void {
  const { state } = step;
  switch (input.type) {
    case "tick":
      return;
    case "server-lost":
      if (!step.isLost(input.serverId))
        state.lostServers.push({ serverId: input.serverId, atMs: input.atMs });
      return;
    case "set-paused":
      state.paused = input.paused;
      return;
    case "upgrade-requested":
      state.upgrade = {
        bundleDir: input.bundleDir,
        svn: input.svn,
        mrsigner: input.mrsigner,
        state: "running",
        reason: "",
        requestedMs: input.atMs,
        launched: [],
      };
      return;
    default:
      break;
  }
  const m = step.member(input.memberId);
  if (!m) return;
  const rt = step.runtime(m.id);
  switch (input.type) {
    case "adopted":
      if (m.peerAddress === "" && input.peerAddress && input.dataAddress) {
        Object.assign(m, { peerAddress: input.peerAddress, dataAddress: input.dataAddress });
      }
      Object.assign(rt, { process: "running", pid: input.pid, launchedAtMs: input.atMs, refusal: null });
      if (!isLive(m)) step.actions.push({ type: "stop", memberId: m.id, signal: "SIGKILL" });
      return;
    case "launched":
      if (m.peerAddress === "")
        Object.assign(m, { peerAddress: input.peerAddress, dataAddress: input.dataAddress });
      Object.assign(rt, {
        process: "running",
        pid: input.pid,
        launchedAtMs: input.atMs,
        up: false,
        observed: null,
        refusal: null,
      });
      // A launch that raced with fencing or giving up must not survive it.
      if (!isLive(m)) step.actions.push({ type: "stop", memberId: m.id, signal: "SIGKILL" });
      else if (m.lifecycle === "joining") {
        const record = findOpenForJoiner(state, m.id);
        if (record) advance(record, "attesting", input.atMs);
      }
      return;
    case "launch-failed":
      onExit(step, m, rt, `could not launch: ${input.reason}`);
      return;
    case "process-exited":
      // Only the exit of the process we know counts: while a launch is in flight, or after
      // the exit was seen, a report can only be about an older process.
      if (rt.process === "launching" || rt.process === "exited") return;
      if (rt.process === "running" && input.pid !== rt.pid) return;
      if (input.lastError) rt.lastError = input.lastError;
      onExit(step, m, rt, input.refusal);
      return;
    case "node-status":
      if (input.status === null) {
        rt.up = false;
        return;
      }
      if (rt.process !== "running") return;
      rt.up = true;
      rt.observed = input.status;
      m.svn = input.status.svn;
      m.mrsigner = input.status.mrsigner;
      return;
    case "fenced":
      rt.fenceConfirmed = true;
      rt.process = "exited";
      rt.up = false;
      return;
    case "restart-requested":
      if (m.lifecycle !== "active" || rt.process === "running" || rt.process === "launching") return;
      Object.assign(rt, { refusal: null, consecutiveRestarts: 0, restartNotBeforeMs: 0, process: "exited" });
      if (!findOpen(state, "restart", m.id))
        openRecord(state, "restart", m.id, input.atMs, "restart requested");
      step.launch(m);
      advanceRestart(step, m);
      return;
  }
}

function onExit(step: Step, m: MemberRecord, rt: MemberRuntime, refusal: string | null): void {
  const wasRunning = rt.process === "running" || rt.process === "launching";
  Object.assign(rt, { process: "exited", up: false, observed: null, refusal });
  rt.restartNotBeforeMs = step.atMs + restartDelayMs(step.config, rt.consecutiveRestarts);
  if (!isLive(m) || !wasRunning) return;
  if (m.lifecycle === "joining") {
    if (refusal !== null) step.failJoiner(m, refusal);
    return;
  }
  const record =
    findOpen(step.state, "restart", m.id) ?? openRecord(step.state, "restart", m.id, step.atMs, "");
  if (refusal !== null) failRecord(record, refusal, step.atMs);
  else record.reason = "process exited";
}

// ---------------------------------------------------------------- reconcile

function reconcile(step: Step): void {
  fenceMembersOnLostServers(step);
  // A joiner's fate (given up, removed, promoted) is settled before anything is restarted:
  // otherwise a crashed joiner past its give-up time is relaunched and abandoned in one step.
  followJoiners(step);
  restartCrashedMembers(step);
  followRestarts(step);
  startOwedReplacement(step);
  continueUpgrade(step);
}

function fenceMembersOnLostServers(step: Step): void {
  for (const m of step.state.members) {
    if (!isLive(m) || !step.isLost(m.serverId)) continue;
    const reason = `server ${m.serverId} lost`;
    const restart = findOpen(step.state, "restart", m.id);
    if (restart) failRecord(restart, `${reason}; replacing it instead`, step.atMs);
    if (m.lifecycle === "joining") step.failJoiner(m, `${reason} while joining`);
    else if (!findOpenForJoinerOf(step, m.id)) openRecord(step.state, "replace", m.id, step.atMs, reason);
    m.lifecycle = "fenced";
    const rt = step.runtime(m.id);
    if (rt.process === "running" || rt.process === "launching") rt.process = "stopping";
    step.actions.push({ type: "fence", memberId: m.id });
  }
  // A confirmed fence moves the member's replace record on.
  for (const m of step.state.members) {
    if (m.lifecycle !== "fenced" || !step.runtime(m.id).fenceConfirmed) continue;
    const record = findOpen(step.state, "replace", m.id);
    if (record) advance(record, "fenced", step.atMs);
  }
}

/** A live joiner already taking `memberId`'s place (e.g. an upgrade step in flight). */
function findOpenForJoinerOf(step: Step, memberId: string): MemberRecord | undefined {
  return step.state.members.find((j) => j.lifecycle === "joining" && j.replaces === memberId);
}

function restartCrashedMembers(step: Step): void {
  for (const m of step.state.members) {
    if (!isLive(m)) continue;
    const rt = step.runtime(m.id);
    if (rt.process !== "exited" || rt.refusal !== null) continue;
    if (m.lifecycle === "active") {
      const record =
        findOpen(step.state, "restart", m.id) ??
        openRecord(step.state, "restart", m.id, step.atMs, "process not running");
      record.reason = step.state.paused ? "healing paused" : "";
    }
    if (step.state.paused || step.atMs < rt.restartNotBeforeMs) continue;
    if (rt.consecutiveRestarts >= step.config.crashLoopLimit) {
      giveUpCrashLoop(step, m, rt);
      continue;
    }
    step.launch(m);
    if (m.lifecycle === "active") advanceRestart(step, m);
  }
}

/**
 * The member exited `crashLoopLimit` launches in a row before it was ready: relaunching it in
 * place is not helping. A member is fenced (never launched again) and replaced on another
 * server like a lost one; a joiner's healing fails with the reason.
 */
function giveUpCrashLoop(step: Step, m: MemberRecord, rt: MemberRuntime): void {
  const why =
    `crash-looping: ${rt.consecutiveRestarts} launches in a row exited before ${m.id} was ready` +
    (rt.lastError ? ` (last error: ${rt.lastError})` : "");
  if (m.lifecycle === "joining") {
    step.failJoiner(m, why);
    return;
  }
  const restart = findOpen(step.state, "restart", m.id);
  if (restart) failRecord(restart, `${why}; replacing it on another server`, step.atMs);
  if (!findOpenForJoinerOf(step, m.id))
    openRecord(step.state, "replace", m.id, step.atMs, `${m.id} on ${m.serverId} ${why}`);
  m.lifecycle = "fenced";
  step.actions.push({ type: "fence", memberId: m.id });
}

function advanceRestart(step: Step, m: MemberRecord): void {
  const record = findOpen(step.state, "restart", m.id);
  if (record) advance(record, "launching", step.atMs);
}

function followRestarts(step: Step): void {
  for (const m of step.state.members) {
    if (m.lifecycle !== "active") continue;
    const record = findOpen(step.state, "restart", m.id);
    const rt = step.runtime(m.id);
    if (!record || rt.process !== "running" || !rt.up || !rt.observed) continue;
    advance(record, "catching_up", step.atMs);
    if (
      rt.observed.ownership === "synced" &&
      (rt.observed.role === "primary" || rt.observed.role === "secondary")
    ) {
      advance(record, "ready", step.atMs);
      record.reason = "";
      rt.consecutiveRestarts = 0;
    }
  }
}

/** attesting → catching_up (learner) → syncing_ownership (voter, ownership pending) → ready. */
function followJoiners(step: Step): void {
  for (const j of step.state.members) {
    if (j.lifecycle !== "joining") continue;
    const rt = step.runtime(j.id);
    const record = findOpenForJoiner(step.state, j.id);
    if (!record) continue;
    const o = rt.process === "running" && rt.up ? rt.observed : null;
    const membership = o ? membershipOf(o, j.id) : "joining";
    if (membership === "removed") {
      step.failJoiner(j, `the pool removed ${j.id} before it was ready`);
      step.actions.push({ type: "stop", memberId: j.id, signal: "SIGKILL" });
      continue;
    }
    if (!o || membership === "joining") {
      const since = record.phases.find((p) => p.phase === "attesting")?.atMs;
      const attesting = record.phase === "attesting" || record.phase === "launching";
      const limitMs = step.config.joinTimeoutMs + JOIN_GIVE_UP_GRACE_MS;
      if (attesting && since !== undefined && step.atMs - since > limitMs) {
        step.failJoiner(
          j,
          `${j.id} did not become a pool member within ${Math.round(limitMs / 1000)} s ` +
            `(\`hsmpool logs ${j.id}\` shows why)`,
        );
        step.actions.push({ type: "stop", memberId: j.id, signal: "SIGKILL" });
      }
      continue;
    }
    if (membership !== "voter") {
      advance(record, "catching_up", step.atMs);
      continue;
    }
    j.wasVoter = true;
    const target = j.replaces ? step.member(j.replaces) : undefined;
    if (target && target.replacedBy === null) target.replacedBy = j.id;
    if (o.ownership !== "synced") {
      advance(record, "syncing_ownership", step.atMs);
      continue;
    }
    if (!o || (j.replaces !== null && o.members.some((x) => x.id === j.replaces))) {
      // Synced, but the pool has not removed the member it replaces yet.
      advance(record, "syncing_ownership", step.atMs);
      continue;
    }
    advance(record, "ready", step.atMs);
    record.reason = "";
    j.lifecycle = "active";
    rt.consecutiveRestarts = 0;
    if (target?.lifecycle === "active") {
      target.lifecycle = "retired";
      step.actions.push({ type: "stop", memberId: target.id, signal: "SIGTERM" });
    }
  }
}

/** A fenced voter nobody has taken over from, whose replacement has not failed. */
function owedReplacement(step: Step): MemberRecord | undefined {
  return step.state.members.find((m) => {
    if (m.lifecycle !== "fenced" || !m.wasVoter || m.replacedBy !== null) return false;
    if (!step.runtime(m.id).fenceConfirmed) return false;
    if (findOpenForJoinerOf(step, m.id)) return false;
    return findLatest(step.state, "replace", m.id)?.phase !== "failed";
  });
}

function startOwedReplacement(step: Step): void {
  if (step.state.paused || step.state.members.some((m) => m.lifecycle === "joining")) return;
  const lost = owedReplacement(step);
  if (!lost) return;
  const record =
    findOpen(step.state, "replace", lost.id) ??
    openRecord(step.state, "replace", lost.id, step.atMs, `${lost.id} was fenced`);
  advance(record, "fenced", step.atMs);
  const upgrade = step.state.upgrade;
  const bundle =
    upgrade?.state === "done"
      ? { bundleDir: upgrade.bundleDir, svn: upgrade.svn, mrsigner: upgrade.mrsigner }
      : { bundleDir: lost.bundleDir, svn: lost.svn, mrsigner: lost.mrsigner };
  launchJoiner(step, record, lost, null, bundle);
}

function continueUpgrade(step: Step): void {
  const upgrade = step.state.upgrade;
  if (upgrade?.state !== "running" || step.state.paused) return;
  // One change at a time, and never while a member is down: the joiner does not count toward quorum.
  if (step.state.members.some((m) => m.lifecycle === "joining") || owedReplacement(step)) return;
  if (step.state.healings.some((r) => isOpen(r))) return;
  const outdated = step.state.members
    .filter((m) => m.lifecycle === "active" && m.bundleDir !== upgrade.bundleDir)
    // Secondaries first: the primary goes last, so the pool elects at most once.
    .sort((a, b) => rankForUpgrade(step, a) - rankForUpgrade(step, b) || byId(a, b));
  const first = outdated[0];
  if (!first) {
    upgrade.state = "done";
    return;
  }
  // The preferred member may have no spare server to move to while another one does.
  const placements = outdated.map((m) => ({ m, placement: placeReplacement(step.config, step.state, m.id) }));
  const chosen = placements.find((p) => p.placement.ok) ?? { m: first, placement: placements[0]?.placement };
  const record = openRecord(
    step.state,
    "upgrade",
    chosen.m.id,
    step.atMs,
    `upgrade to security version ${upgrade.svn}`,
  );
  launchJoiner(step, record, chosen.m, chosen.m.id, upgrade);
  if (record.phase === "failed") {
    upgrade.state = "failed";
    upgrade.reason = record.reason;
  }
}

function rankForUpgrade(step: Step, m: MemberRecord): number {
  return step.runtime(m.id).observed?.role === "primary" ? 1 : 0;
}

function byId(a: { id: string }, b: { id: string }): number {
  const na = Number(a.id.slice(1));
  const nb = Number(b.id.slice(1));
  return na - nb || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function launchJoiner(
  step: Step,
  record: HealingRecord,
  replaced: MemberRecord,
  leaving: string | null,
  bundle: { bundleDir: string; svn: number; mrsigner: string },
): void {
  const { state, config } = step;
  const placement = placeReplacement(config, state, leaving);
  if (!placement.ok) {
    failRecord(record, placement.reason, step.atMs);
    return;
  }
  const joiner: MemberRecord = {
    id: `n${state.nextMemberNumber}`,
    serverId: placement.placed.serverId,
    rackId: placement.placed.rackId,
    partition: 0,
    peerAddress: "",
    dataAddress: "",
    bundleDir: bundle.bundleDir,
    lifecycle: "joining",
    mode: "join",
    replaces: replaced.id,
    // Every active member, the one being upgraded away included (it may be the primary).
    joinPeers: state.members.filter((m) => m.lifecycle === "active").map((m) => m.id),
    minPeerSvn: poolMinimumSvn(state),
    svn: bundle.svn,
    mrsigner: bundle.mrsigner,
    replacedBy: null,
    wasVoter: false,
  };
  state.nextMemberNumber += 1;
  state.members.push(joiner);
  state.runtime[joiner.id] = freshRuntime();
  record.replacementId = joiner.id;
  advance(record, "launching", step.atMs);
  if (state.upgrade?.state === "running" && record.kind === "upgrade") state.upgrade.launched.push(joiner.id);
  step.launch(joiner);
}
