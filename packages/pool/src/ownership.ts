/**
 * The per-node ownership/bootstrap state machine: inputs → (new state, effects).
 *
 * Primary path (leader of a pool with no committed Genesis, after it has applied its
 * term's first entry): make owner root + DEK + pool key in its partition, self-sign
 * the owner root certificate, certify its own partition, propose Genesis. The first
 * committed Genesis wins; a loser deletes its material and syncs like a secondary.
 *
 * Secondary path (any other member once Genesis is committed): ask a synced member
 * for the owner root key (ECDH-wrapped to this partition), check it is the key of
 * the committed owner root certificate, certify its own partition with it, present
 * that certificate to get the DEK and pool key (ECDH-wrapped), check their
 * fingerprints against Genesis, announce MemberOwnershipSynced.
 *
 * Serving side: only a synced member serves; only to current Raft members; the DEK
 * only to a partition whose certificate chains to this pool's owner root.
 *
 * Restart path (resumeOwnership, ownership-checkpoint.ts): a member restarted in place
 * starts "synced" (or, if it crashed with its own Genesis proposed and undecided,
 * "ownershipProposed") with pending "verifyKeys"; `start` asks the shell to check that its
 * partition still holds the checkpoint's keys. Only a definite "yes" restores ownership
 * (or, for a proposer, lets it wait for the committed Genesis with its material: its own
 * → synced, another's → discard and sync as a secondary); a definite "no" falls back to
 * the blank path (zeroize, re-sync from a synced peer); an HSM failure is retried, never
 * taken as "no" — if every member zeroized on a transient fault at once, the pool's DEK
 * would be gone. Until the answer comes, nothing is served, proposed or discarded.
 *
 * No clocks, no randomness: time and the run's random incarnation id come in as
 * inputs, retries are counted in ticks.
 */

import { fail } from "@hsmpool/errors";
import { certificateFingerprint } from "./certificate.js";
import { validateMessage } from "./messages.js";
import {
  advance,
  onGenesis,
  onKeysCreated,
  onLeaderChanged,
  onSigned,
  proposeGenesis,
  startCreatingOwnership,
  startSigning,
} from "./ownership-bootstrap.js";
import { holdsOwnership, Machine, NO_MATERIAL, progressOf, uniqueSorted } from "./ownership-machine.js";
import {
  onKeysChecked,
  onPartitionReady,
  onStart,
  startKeyCheck,
  startZeroize,
} from "./ownership-restart.js";
import {
  announceSynced,
  onImported,
  onMemberSynced,
  sendDekRequest,
  startRequestingOwnerRoot,
} from "./ownership-secondary-sync.js";
import { onExported, onMessage, refuse } from "./ownership-serving.js";
import type {
  HsmError,
  OwnershipConfig,
  OwnershipInput,
  OwnershipState,
  OwnershipStep,
  Pending,
} from "./ownership-types.js";
import { bad, requireIdentifier, requireTimeMs } from "./validate.js";

export { holdsOwnership } from "./ownership-machine.js";

/** A fresh machine for a blank member. Feed `start` first. */
export function createOwnershipState(config: OwnershipConfig): OwnershipState {
  const retryTicks = config.retryTicks;
  if (!Number.isSafeInteger(retryTicks) || retryTicks < 1)
    bad("retryTicks", "retryTicks must be an integer >= 1");
  const maxConcurrentServes = config.maxConcurrentServes ?? 16;
  if (!Number.isSafeInteger(maxConcurrentServes) || maxConcurrentServes < 1) {
    bad("maxConcurrentServes", "maxConcurrentServes must be an integer >= 1");
  }
  return Object.freeze({
    config: Object.freeze({
      nodeId: requireIdentifier(config.nodeId, "nodeId"),
      poolId: requireIdentifier(config.poolId, "poolId"),
      retryTicks,
      maxConcurrentServes,
    }),
    phase: "initializingPartition",
    started: false,
    incarnation: "",
    seq: 0,
    tick: 0,
    nowMs: 0,
    peersConnected: false,
    leader: null,
    term: 0,
    caughtUpTerm: 0,
    members: [],
    partition: null,
    genesis: null,
    syncedMembers: [],
    material: NO_MATERIAL,
    pending: null,
    serving: [],
    lastError: null,
  });
}

/** One step of the machine. Invalid inputs throw BadParameter and change nothing (the state is immutable). */
export function stepOwnership(state: OwnershipState, input: OwnershipInput): OwnershipStep {
  const m = new Machine({ ...state });
  handle(m, input);
  return { state: Object.freeze(m.s), effects: m.effects };
}

function handle(m: Machine, input: OwnershipInput): void {
  if (typeof input !== "object" || input === null) bad("input", "ownership input must be an object");
  if (input.kind !== "start" && !m.s.started) {
    fail("NotInitialized", `ownership machine of ${m.self} got ${input.kind} before start`);
  }
  switch (input.kind) {
    case "start":
      onStart(m, input);
      return;
    case "tick":
      onTick(m, requireTimeMs(input.nowMs, "nowMs"));
      return;
    case "partitionReady":
      onPartitionReady(m, input);
      return;
    case "peersConnected":
      m.s.peersConnected = true;
      if (m.s.phase === "connecting") m.s.phase = "electing";
      advance(m);
      return;
    case "leaderChanged":
      onLeaderChanged(m, input);
      return;
    case "leaderCaughtUp":
      if (m.s.leader === m.self && input.term === m.s.term) m.s.caughtUpTerm = input.term;
      advance(m);
      return;
    case "membershipChanged":
      m.s.members = uniqueSorted(input.members.map((id) => requireIdentifier(id, "members[]")));
      return;
    case "genesisApplied":
      onGenesis(m, input.genesis);
      return;
    case "memberSyncedApplied":
      onMemberSynced(m, requireIdentifier(input.memberId, "memberId"));
      return;
    case "memberRemovedApplied": {
      const id = requireIdentifier(input.memberId, "memberId");
      m.s.syncedMembers = m.s.syncedMembers.filter((m) => m !== id);
      return;
    }
    case "ownershipKeysCreated":
      onKeysCreated(m, input);
      return;
    case "signed":
      onSigned(m, input.correlationId, input.signature);
      return;
    case "transferExported":
      onExported(m, input.correlationId, input.blobs);
      return;
    case "transferImported":
      onImported(m, input);
      return;
    case "keysChecked":
      onKeysChecked(m, input);
      return;
    case "hsmFailed":
      onHsmFailed(m, input.correlationId, input.error);
      return;
    case "message":
      onMessage(m, requireIdentifier(input.from, "from"), validateMessage(input.message));
      return;
    default:
      bad("input", `unknown ownership input ${JSON.stringify((input as { kind?: unknown }).kind)}`);
  }
}

function onTick(m: Machine, nowMs: number): void {
  m.s.tick += 1;
  m.s.nowMs = Math.max(m.s.nowMs, nowMs);
  const pending = m.s.pending;
  if (!pending || pending.deadlineTick === null || m.s.tick < pending.deadlineTick) return;
  retry(m, pending);
}

export function retry(m: Machine, pending: Pending): void {
  const attempt = pending.attempt + 1;
  switch (pending.step) {
    case "zeroizeAndInit":
      startZeroize(m);
      return;
    case "verifyKeys":
      startKeyCheck(m);
      return;
    case "createOwnershipKeys":
      startCreatingOwnership(m);
      return;
    case "signOwnerRootCert":
    case "signPartitionCert":
      startSigning(m, pending.step, pending.unsigned ?? fail("Internal", "sign step without body"));
      m.s.pending = Object.freeze({ ...(m.s.pending as Pending), target: pending.target });
      return;
    case "proposeGenesis":
      proposeGenesis(m);
      return;
    case "awaitOwnerRoot":
    case "importOwnerRoot":
      startRequestingOwnerRoot(m, attempt);
      return;
    case "awaitDek":
    case "importDek":
      sendDekRequest(m, attempt, null);
      return;
    case "announceSynced": {
      if (m.s.syncedMembers.includes(m.self)) {
        m.s.pending = null;
        return;
      }
      m.setPending("announceSynced", { deadlineTick: m.deadline(), attempt });
      const genesis = m.s.genesis ?? fail("Internal", "synced without Genesis");
      announceSynced(m, m.s.material.partitionCert ?? fail("Internal", "no partition cert"), genesis);
      return;
    }
  }
}

export function onHsmFailed(m: Machine, correlationId: string, error: HsmError): void {
  const serving = m.s.serving.find((x) => x.correlationId === correlationId);
  if (serving) {
    m.s.serving = m.s.serving.filter((x) => x !== serving);
    refuse(m, serving.to, serving.nonce, "ServiceUnavailable", `export failed: ${error.message}`);
    return;
  }
  if (m.s.pending?.correlationId !== correlationId) return;
  m.retryLater(error.code, `HSM ${m.s.pending.step} failed: ${error.message}`);
}

/** Throws OwnershipPending unless this member holds the pool's ownership (owner root, DEK, pool key). */
export function requireOwnership(state: OwnershipState): void {
  if (!holdsOwnership(state)) {
    fail(
      "OwnershipPending",
      `member ${state.config.nodeId} does not hold the pool's ownership yet (${progressOf(state)}); ` +
        "key operations run only on members that have received the DEK: retry on another member or shortly",
      { phase: state.phase },
    );
  }
}

/** A short status for dashboards and `hsmpool status`. */
export function ownershipStatus(state: OwnershipState): {
  nodeId: string;
  phase: string;
  ownerRootFingerprint: string | null;
  dekFingerprint: string | null;
  syncedMembers: string[];
  lastError: HsmError | null;
} {
  const cert = state.material.ownerRootCert;
  return {
    nodeId: state.config.nodeId,
    phase: state.phase,
    ownerRootFingerprint: cert ? certificateFingerprint(cert) : null,
    dekFingerprint: state.material.dek?.fingerprint ?? null,
    syncedMembers: [...state.syncedMembers],
    lastError: state.lastError,
  };
}
