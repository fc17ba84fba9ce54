/**
 * Ownership machine, secondary sync: ask a synced member for the owner root key
 * (ECDH-wrapped to this partition), check it against the committed owner root
 * certificate, certify this partition, present that certificate for the DEK and
 * pool key, check their fingerprints against Genesis, announce MemberOwnershipSynced.
 */
import { fail, isHsmPoolError } from "@hsmpool/errors";
import {
  certificateFingerprint,
  keyFingerprint,
  type PoolCertificate,
  verifyPartitionCertificate,
} from "./certificate.js";
import type { GenesisCommand } from "./commands.js";
import { compareStrings, sameJwk, validateP384Jwk } from "./jwk.js";
import type { DekRequest, OwnershipMessage, OwnershipRequest } from "./messages.js";
import { ownPartitionCertBody, startSigning } from "./ownership-bootstrap.js";
import { type Machine, uniqueInOrder, uniqueSorted } from "./ownership-machine.js";
import type { OwnershipInput, Pending } from "./ownership-types.js";
import { bad, requireKeyId } from "./validate.js";

/** Synced members that can serve, the leader first, excluding this node; rotated by attempt. */
function chooseServer(m: Machine, attempt: number): string | null {
  const { genesis, leader, members } = m.s;
  const known = new Set([...m.s.syncedMembers, ...(genesis ? [genesis.proposer] : [])]);
  const ordered = [
    ...(leader !== null && known.has(leader) ? [leader] : []),
    ...[...known].sort(compareStrings),
  ];
  const candidates = uniqueInOrder(ordered).filter(
    (id) => id !== m.self && (members.length === 0 || members.includes(id)),
  );
  return candidates.length === 0 ? null : (candidates[attempt % candidates.length] ?? null);
}

export function startRequestingOwnerRoot(m: Machine, attempt: number): void {
  m.s.phase = "requestingOwnerRoot";
  const target = chooseServer(m, attempt);
  if (target === null) {
    m.setPending("awaitOwnerRoot", { deadlineTick: m.deadline(), attempt });
    return;
  }
  const { partitionId, transferPublicKey } = m.partition();
  const nonce = m.nextId();
  m.setPending("awaitOwnerRoot", {
    correlationId: nonce,
    deadlineTick: m.deadline(),
    target,
    attempt,
  });
  m.emit({
    kind: "send",
    to: target,
    message: {
      kind: "ownershipRequest",
      poolId: m.s.config.poolId,
      nonce,
      partitionId,
      transferPublicKey,
    },
  });
}

export function sendDekRequest(m: Machine, attempt: number, preferred: string | null): void {
  const target = preferred ?? chooseServer(m, attempt);
  const partitionCert = m.s.material.partitionCert ?? fail("Internal", "no partition certificate");
  if (target === null) {
    m.setPending("awaitDek", { deadlineTick: m.deadline(), attempt });
    return;
  }
  const nonce = m.nextId();
  m.setPending("awaitDek", { correlationId: nonce, deadlineTick: m.deadline(), target, attempt });
  m.emit({
    kind: "send",
    to: target,
    message: { kind: "dekRequest", poolId: m.s.config.poolId, nonce, partitionCert },
  });
}

/** Checks a server's partition certificate against the committed owner root; null if it fails. */
function verifiedSource(m: Machine, from: string, cert: PoolCertificate): PoolCertificate | null {
  const genesis = m.s.genesis;
  if (!genesis) return null;
  try {
    verifyPartitionCertificate(cert, genesis.ownerRootCert);
    if (cert.subject !== from)
      fail("Forbidden", `certificate subject ${cert.subject} is not the sender ${from}`);
    return cert;
  } catch (e) {
    if (!isHsmPoolError(e)) throw e;
    m.note(e.code, `answer from ${from} refused: ${e.message}`);
    return null;
  }
}

export function onResponse(
  m: Machine,
  from: string,
  message: Exclude<OwnershipMessage, OwnershipRequest | DekRequest>,
): void {
  const pending = m.s.pending;
  const waiting = pending?.step === "awaitOwnerRoot" || pending?.step === "awaitDek";
  if (!waiting || pending.correlationId !== message.nonce || pending.target !== from) return;
  if (message.kind === "refused") {
    m.note(message.code, `${from} refused: ${message.reason}`);
    return; // re-sent to the next candidate at the deadline
  }
  if (message.kind === "ownershipResponse" && pending.step === "awaitOwnerRoot") {
    const source = verifiedSource(m, from, message.sourcePartitionCert);
    if (!source) return;
    const correlationId = m.nextId();
    m.setPending("importOwnerRoot", { correlationId, target: from, attempt: pending.attempt });
    m.emit({
      kind: "hsm.importFromTransfer",
      correlationId,
      items: [{ role: "ownerRoot", blob: message.ownerRootBlob }],
      sourcePartitionId: source.partitionId,
      sourceTransferPublicKey: source.publicKey,
    });
    return;
  }
  if (message.kind === "dekResponse" && pending.step === "awaitDek") {
    const source = verifiedSource(m, from, message.sourcePartitionCert);
    if (!source) return;
    const correlationId = m.nextId();
    m.setPending("importDek", { correlationId, target: from, attempt: pending.attempt });
    m.emit({
      kind: "hsm.importFromTransfer",
      correlationId,
      items: [
        { role: "dek", blob: message.dekBlob },
        { role: "poolKey", blob: message.poolKeyBlob },
      ],
      sourcePartitionId: source.partitionId,
      sourceTransferPublicKey: source.publicKey,
    });
  }
}

export function onImported(m: Machine, input: Extract<OwnershipInput, { kind: "transferImported" }>): void {
  if (!Array.isArray(input.keys)) bad("keys", "transferImported.keys must be a list");
  const keys = input.keys.map((k, i) => ({
    role: k.role,
    keyId: requireKeyId(k.keyId, `keys[${i}].keyId`),
    publicKey: k.publicKey === undefined ? undefined : validateP384Jwk(k.publicKey, `keys[${i}].publicKey`),
  }));
  const pending = m.s.pending;
  const genesis = m.s.genesis;
  const mine = m.heldKeyIds();
  const deleteUnowned = () => {
    const stray = keys.map((k) => k.keyId).filter((id) => !mine.has(id));
    if (stray.length > 0) m.emit({ kind: "hsm.deleteKeys", keyIds: stray });
  };
  const step = pending?.step;
  if (
    (step !== "importOwnerRoot" && step !== "importDek") ||
    pending?.correlationId !== input.correlationId ||
    !genesis
  ) {
    deleteUnowned();
    return;
  }
  if (step === "importOwnerRoot") {
    const root = keys.find((k) => k.role === "ownerRoot");
    if (!root?.publicKey || !sameJwk(root.publicKey, genesis.ownerRootCert.publicKey)) {
      deleteUnowned();
      m.retryLater("Forbidden", `the owner root key from ${pending.target} is not the pool's owner root`);
      return;
    }
    m.setMaterial({
      ownerRoot: Object.freeze({ keyId: root.keyId, publicKey: root.publicKey }),
      ownerRootCert: genesis.ownerRootCert,
    });
    m.s.phase = "issuingPartitionCert";
    startSigning(m, "signPartitionCert", ownPartitionCertBody(m));
    m.s.pending = Object.freeze({ ...(m.s.pending as Pending), target: pending.target });
    return;
  }
  const dek = keys.find((k) => k.role === "dek");
  const poolKey = keys.find((k) => k.role === "poolKey");
  if (
    !dek ||
    !poolKey ||
    keyFingerprint(dek.keyId) !== genesis.dekFingerprint ||
    keyFingerprint(poolKey.keyId) !== genesis.poolKeyFingerprint
  ) {
    deleteUnowned();
    m.retryLater(
      "Forbidden",
      `the DEK or pool key from ${pending.target} is not the pool's (fingerprint mismatch)`,
    );
    return;
  }
  m.setMaterial({
    dek: Object.freeze({ keyId: dek.keyId, fingerprint: genesis.dekFingerprint }),
    poolKey: Object.freeze({ keyId: poolKey.keyId, fingerprint: genesis.poolKeyFingerprint }),
  });
  becomeSynced(m);
}

export function becomeSynced(m: Machine): void {
  m.s.phase = "synced";
  const genesis = m.s.genesis ?? fail("Internal", "synced without Genesis");
  const partitionCert =
    m.s.material.partitionCert ?? fail("Internal", "synced without a partition certificate");
  m.setPending("announceSynced", { deadlineTick: m.deadline() });
  m.s.lastError = null;
  emitSynced(m);
  announceSynced(m, partitionCert, genesis);
}

export function emitSynced(m: Machine): void {
  const mat = m.s.material;
  const genesis = m.s.genesis ?? fail("Internal", "synced without Genesis");
  m.emit({
    kind: "ownershipSynced",
    ownerRootKeyId: mat.ownerRoot?.keyId ?? fail("Internal", "no owner root key"),
    dekKeyId: mat.dek?.keyId ?? fail("Internal", "no DEK"),
    poolKeyKeyId: mat.poolKey?.keyId ?? fail("Internal", "no pool key"),
    ownerRootFingerprint: certificateFingerprint(genesis.ownerRootCert),
    dekFingerprint: genesis.dekFingerprint,
  });
}

export function announceSynced(m: Machine, partitionCert: PoolCertificate, genesis: GenesisCommand): void {
  m.propose({
    kind: "memberOwnershipSynced",
    memberId: m.self,
    partitionCertFingerprint: certificateFingerprint(partitionCert),
    dekFingerprint: genesis.dekFingerprint,
    at: m.s.nowMs,
  });
}

export function onMemberSynced(m: Machine, memberId: string): void {
  m.s.syncedMembers = uniqueSorted([...m.s.syncedMembers, memberId]);
  if (memberId === m.self && m.s.pending?.step === "announceSynced") m.s.pending = null;
}
