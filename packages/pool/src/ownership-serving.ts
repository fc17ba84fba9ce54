/**
 * Ownership machine, serving side: only a synced member serves; only to current
 * Raft members; the DEK only to a partition whose certificate chains to this
 * pool's owner root. At most `maxConcurrentServes` exports run at once.
 */
import { fail, isHsmPoolError } from "@hsmpool/errors";
import { verifyPartitionCertificate } from "./certificate.js";
import type { P384PublicJwk } from "./jwk.js";
import type { DekRequest, OwnershipMessage, OwnershipRequest } from "./messages.js";
import { holdsOwnership, type Machine, progressOf } from "./ownership-machine.js";
import { onResponse } from "./ownership-secondary-sync.js";
import type { HsmError, Serving } from "./ownership-types.js";
import { bad, requireBytes } from "./validate.js";

export function onMessage(m: Machine, from: string, message: OwnershipMessage): void {
  switch (message.kind) {
    case "ownershipRequest":
      serveOwnerRoot(m, from, message);
      return;
    case "dekRequest":
      serveDek(m, from, message);
      return;
    default:
      onResponse(m, from, message);
      return;
  }
}

export function refuse(m: Machine, to: string, nonce: string, code: HsmError["code"], reason: string): void {
  m.emit({ kind: "send", to, message: { kind: "refused", nonce, code, reason: reason.slice(0, 512) } });
}

/** Why this node must not serve `from` now, or null. */
function refusalFor(m: Machine, from: string, poolId: string): HsmError | null {
  if (!holdsOwnership(m.s)) {
    return {
      code: "OwnershipPending",
      message: `${m.self} does not hold the pool's ownership yet (${progressOf(m.s)}); ask a synced member`,
    };
  }
  if (poolId !== m.s.config.poolId) {
    return {
      code: "Forbidden",
      message: `request is for pool ${poolId}; ${m.self} serves pool ${m.s.config.poolId}`,
    };
  }
  if (from === m.self || !m.s.members.includes(from)) {
    return {
      code: "Forbidden",
      message: `${from} is not a member of pool ${m.s.config.poolId}; only current Raft members receive ownership`,
    };
  }
  if (m.s.serving.length >= m.s.config.maxConcurrentServes) {
    return {
      code: "ServiceUnavailable",
      message: `${m.self} is serving too many requests; retry shortly`,
    };
  }
  return null;
}

function serveOwnerRoot(m: Machine, from: string, request: OwnershipRequest): void {
  const refusal = refusalFor(m, from, request.poolId);
  if (refusal) {
    refuse(m, from, request.nonce, refusal.code, refusal.message);
    return;
  }
  const keyId = m.s.material.ownerRoot?.keyId ?? fail("Internal", "synced without owner root");
  exportForTransfer(
    m,
    from,
    request.nonce,
    "ownerRoot",
    [keyId],
    request.partitionId,
    request.transferPublicKey,
  );
}

function serveDek(m: Machine, from: string, request: DekRequest): void {
  const refusal = refusalFor(m, from, request.poolId);
  if (refusal) {
    refuse(m, from, request.nonce, refusal.code, refusal.message);
    return;
  }
  const root = m.s.material.ownerRootCert ?? fail("Internal", "synced without owner root certificate");
  const cert = request.partitionCert;
  try {
    verifyPartitionCertificate(cert, root);
  } catch (e) {
    if (!isHsmPoolError(e)) throw e;
    refuse(m, from, request.nonce, "Forbidden", `DEK refused: ${e.message}`);
    return;
  }
  if (cert.subject !== from) {
    refuse(
      m,
      from,
      request.nonce,
      "Forbidden",
      `DEK refused: certificate is for ${cert.subject}, not ${from}`,
    );
    return;
  }
  const mat = m.s.material;
  const keyIds = [
    mat.dek?.keyId ?? fail("Internal", "no DEK"),
    mat.poolKey?.keyId ?? fail("Internal", "no pool key"),
  ];
  exportForTransfer(m, from, request.nonce, "dek", keyIds, cert.partitionId, cert.publicKey);
}

function exportForTransfer(
  m: Machine,
  to: string,
  nonce: string,
  kind: Serving["kind"],
  keyIds: string[],
  targetPartitionId: string,
  targetTransferPublicKey: P384PublicJwk,
): void {
  const correlationId = m.nextId();
  m.s.serving = [...m.s.serving, Object.freeze({ correlationId, to, nonce, kind })];
  m.emit({
    kind: "hsm.exportForTransfer",
    correlationId,
    keyIds,
    targetPartitionId,
    targetTransferPublicKey,
  });
}

export function onExported(m: Machine, correlationId: string, blobs: Uint8Array[]): void {
  const serving = m.s.serving.find((x) => x.correlationId === correlationId);
  if (!serving) return;
  m.s.serving = m.s.serving.filter((x) => x !== serving);
  const partitionCert =
    m.s.material.partitionCert ?? fail("Internal", "synced without partition certificate");
  const expected = serving.kind === "ownerRoot" ? 1 : 2;
  if (!Array.isArray(blobs) || blobs.length !== expected) {
    bad("blobs", `transferExported for a ${serving.kind} request needs ${expected} blob(s)`);
  }
  const [first, second] = blobs.map((b, i) => requireBytes(b, `blobs[${i}]`, 64 * 1024));
  if (serving.kind === "ownerRoot") {
    m.emit({
      kind: "send",
      to: serving.to,
      message: {
        kind: "ownershipResponse",
        nonce: serving.nonce,
        ownerRootBlob: first as Uint8Array,
        sourcePartitionCert: partitionCert,
      },
    });
    return;
  }
  m.emit({
    kind: "send",
    to: serving.to,
    message: {
      kind: "dekResponse",
      nonce: serving.nonce,
      dekBlob: first as Uint8Array,
      poolKeyBlob: second as Uint8Array,
      sourcePartitionCert: partitionCert,
    },
  });
}
