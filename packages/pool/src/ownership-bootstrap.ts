/**
 * Ownership machine, bootstrap (primary path): a caught-up leader of a pool with no
 * committed Genesis makes owner root + DEK + pool key, self-signs the owner root
 * certificate, certifies its own partition and proposes Genesis. The first
 * committed Genesis wins; a loser discards its material and syncs as a secondary.
 */
import { fail } from "@hsmpool/errors";
import {
  certificateFingerprint,
  certificateSigningBytes,
  keyFingerprint,
  publicKeyFingerprint,
  signatureValid,
  type UnsignedCertificate,
  validateCertificate,
} from "./certificate.js";
import { type GenesisCommand, validateCommand } from "./commands.js";
import { validateP384Jwk } from "./jwk.js";
import { onHsmFailed } from "./ownership.js";
import { type Machine, NO_MATERIAL } from "./ownership-machine.js";
import { becomeSynced, sendDekRequest, startRequestingOwnerRoot } from "./ownership-secondary-sync.js";
import type { OwnershipInput } from "./ownership-types.js";
import { bad, requireIdentifier, requireKeyId } from "./validate.js";

export function onLeaderChanged(m: Machine, input: Extract<OwnershipInput, { kind: "leaderChanged" }>): void {
  if (!Number.isSafeInteger(input.term) || input.term < 0) bad("term", "term must be a non-negative integer");
  m.s.leader = input.leader === null ? null : requireIdentifier(input.leader, "leader");
  m.s.term = input.term;
  if (m.s.phase === "connecting" && m.s.leader !== null) m.s.phase = "electing";
  advance(m);
}

/** Decides what to do next whenever leadership, Genesis or this node's material changed. */
export function advance(m: Machine): void {
  const { phase, genesis } = m.s;
  if (phase === "initializingPartition" || phase === "connecting") return;
  // Restarted: until the partition is confirmed, its material may be neither used nor discarded.
  if (m.s.pending?.step === "verifyKeys") return;
  const onPrimaryPath =
    phase === "electing" || phase === "creatingOwnership" || phase === "ownershipProposed";
  if (genesis) {
    if (!onPrimaryPath) return;
    if (holdsGenesisMaterial(m, genesis)) {
      becomeSynced(m);
      return;
    }
    if (m.s.material.ownerRoot || m.s.pending?.step === "createOwnershipKeys") {
      m.note("Conflict", `another member's Genesis (by ${genesis.proposer}) was committed first`);
    }
    discardMaterial(m);
    startRequestingOwnerRoot(m, 0);
    return;
  }
  if (!m.isCaughtUpLeader()) return;
  if (phase === "electing") {
    if (hasCompleteMaterial(m)) {
      proposeGenesis(m);
      return;
    }
    startCreatingOwnership(m);
    return;
  }
  if (phase === "ownershipProposed" && m.s.pending?.step !== "proposeGenesis") proposeGenesis(m);
}

function holdsGenesisMaterial(m: Machine, genesis: GenesisCommand): boolean {
  const { ownerRootCert, dek, poolKey, partitionCert } = m.s.material;
  return (
    ownerRootCert !== null &&
    partitionCert !== null &&
    certificateFingerprint(ownerRootCert) === certificateFingerprint(genesis.ownerRootCert) &&
    dek?.fingerprint === genesis.dekFingerprint &&
    poolKey?.fingerprint === genesis.poolKeyFingerprint
  );
}

function hasCompleteMaterial(m: Machine): boolean {
  const mat = m.s.material;
  return (
    mat.ownerRoot !== null &&
    mat.ownerRootCert !== null &&
    mat.dek !== null &&
    mat.poolKey !== null &&
    mat.partitionCert !== null
  );
}

/** Deletes every pool key this partition holds (they belong to a Genesis that lost, or were never confirmed). */
function discardMaterial(m: Machine): void {
  const mat = m.s.material;
  const keyIds = [mat.ownerRoot?.keyId, mat.dek?.keyId, mat.poolKey?.keyId].filter(
    (id): id is string => !!id,
  );
  if (keyIds.length > 0) m.emit({ kind: "hsm.deleteKeys", keyIds });
  m.s.material = NO_MATERIAL;
  m.s.pending = null;
}

export function startCreatingOwnership(m: Machine): void {
  m.s.phase = "creatingOwnership";
  const correlationId = m.nextId();
  m.setPending("createOwnershipKeys", { correlationId });
  m.emit({ kind: "hsm.createOwnershipKeys", correlationId });
}

export function onKeysCreated(
  m: Machine,
  input: Extract<OwnershipInput, { kind: "ownershipKeysCreated" }>,
): void {
  const ownerRoot = {
    keyId: requireKeyId(input.ownerRoot?.keyId, "ownerRoot.keyId"),
    publicKey: validateP384Jwk(input.ownerRoot?.publicKey, "ownerRoot.publicKey"),
  };
  const dekKeyId = requireKeyId(input.dekKeyId, "dekKeyId");
  const poolKeyKeyId = requireKeyId(input.poolKeyKeyId, "poolKeyKeyId");
  if (!m.isPending("createOwnershipKeys", input.correlationId) || m.s.phase !== "creatingOwnership") {
    // Made for a creation that was abandoned (another Genesis won meanwhile): not ours to keep.
    m.emit({ kind: "hsm.deleteKeys", keyIds: [ownerRoot.keyId, dekKeyId, poolKeyKeyId] });
    return;
  }
  m.setMaterial({
    ownerRoot: Object.freeze(ownerRoot),
    dek: Object.freeze({ keyId: dekKeyId, fingerprint: keyFingerprint(dekKeyId) }),
    poolKey: Object.freeze({ keyId: poolKeyKeyId, fingerprint: keyFingerprint(poolKeyKeyId) }),
  });
  startSigning(m, "signOwnerRootCert", {
    role: "ownerRoot",
    poolId: m.s.config.poolId,
    subject: m.self,
    partitionId: m.partition().partitionId,
    publicKey: ownerRoot.publicKey,
    issuerFingerprint: publicKeyFingerprint(ownerRoot.publicKey),
  });
}

export function startSigning(
  m: Machine,
  step: "signOwnerRootCert" | "signPartitionCert",
  unsigned: UnsignedCertificate,
): void {
  const keyId = m.s.material.ownerRoot?.keyId ?? fail("Internal", `${m.self} holds no owner root key`);
  const correlationId = m.nextId();
  m.setPending(step, { correlationId, unsigned });
  m.emit({
    kind: "hsm.signWithOwnerRoot",
    correlationId,
    keyId,
    data: certificateSigningBytes(unsigned),
  });
}

export function ownPartitionCertBody(m: Machine): UnsignedCertificate {
  const rootKey = m.s.material.ownerRoot?.publicKey ?? fail("Internal", "no owner root key");
  const { partitionId, transferPublicKey } = m.partition();
  return {
    role: "partition",
    poolId: m.s.config.poolId,
    subject: m.self,
    partitionId,
    publicKey: transferPublicKey,
    issuerFingerprint: publicKeyFingerprint(rootKey),
  };
}

export function onSigned(m: Machine, correlationId: string, signature: Uint8Array): void {
  const pending = m.s.pending;
  const step = pending?.step;
  if (
    (step !== "signOwnerRootCert" && step !== "signPartitionCert") ||
    pending?.correlationId !== correlationId
  ) {
    return;
  }
  const unsigned = pending.unsigned ?? fail("Internal", "sign step without a certificate body");
  const cert = validateCertificate({ ...unsigned, signature }, "signed certificate");
  const rootKey = m.s.material.ownerRoot?.publicKey ?? fail("Internal", "no owner root key");
  if (!signatureValid(cert, rootKey)) {
    // The HSM signed with a key other than the owner root, or returned garbage: retry later.
    onHsmFailed(m, correlationId, {
      code: "DeviceFault",
      message: "the HSM's signature does not verify under the owner root key",
    });
  }
  if (step === "signOwnerRootCert") {
    m.setMaterial({ ownerRootCert: cert });
    startSigning(m, "signPartitionCert", ownPartitionCertBody(m));
    return;
  }
  m.setMaterial({ partitionCert: cert });
  if (m.s.phase === "creatingOwnership") {
    proposeGenesis(m);
    return;
  }
  m.s.phase = "receivingDek";
  sendDekRequest(m, 0, m.s.pending?.target ?? null);
}

export function proposeGenesis(m: Machine): void {
  m.s.phase = "ownershipProposed";
  m.setPending("proposeGenesis", { deadlineTick: m.deadline() });
  if (!m.isCaughtUpLeader()) return; // wait: only a caught-up leader may establish the pool
  const mat = m.s.material;
  m.propose({
    kind: "genesis",
    poolId: m.s.config.poolId,
    ownerRootCert: mat.ownerRootCert ?? fail("Internal", "no owner root certificate"),
    dekFingerprint: mat.dek?.fingerprint ?? fail("Internal", "no DEK"),
    poolKeyFingerprint: mat.poolKey?.fingerprint ?? fail("Internal", "no pool key"),
    proposer: m.self,
    at: m.s.nowMs,
  });
}

export function onGenesis(m: Machine, input: GenesisCommand): void {
  const genesis = validateCommand(input);
  if (genesis.kind !== "genesis") bad("genesis", "genesisApplied needs a genesis command");
  if (genesis.poolId !== m.s.config.poolId) {
    bad("genesis", `Genesis is for pool ${genesis.poolId}; this node belongs to pool ${m.s.config.poolId}`);
  }
  const known = m.s.genesis;
  if (known) {
    if (certificateFingerprint(known.ownerRootCert) !== certificateFingerprint(genesis.ownerRootCert)) {
      fail(
        "IntegrityError",
        "two different Genesis commands were reported as committed; the log has diverged",
      );
    }
    return;
  }
  m.s.genesis = genesis;
  advance(m);
}
