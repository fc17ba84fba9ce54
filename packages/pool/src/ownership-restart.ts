/**
 * Ownership machine, restart path and partition set-up: `start`, zeroize-and-init
 * of a blank partition, and for a member restarted in place the check that its
 * partition still holds the checkpoint's keys (a definite "no" falls back to the
 * blank path; an HSM failure is retried, never taken as "no").
 */
import { fail } from "@hsmpool/errors";
import { sameJwk, validateP384Jwk } from "./jwk.js";
import { advance } from "./ownership-bootstrap.js";
import { type Machine, NO_MATERIAL, uniqueSorted } from "./ownership-machine.js";
import { emitSynced } from "./ownership-secondary-sync.js";
import type { OwnershipInput } from "./ownership-types.js";
import { bad, requireIdentifier, requireKeyId, requireTimeMs } from "./validate.js";

export function onStart(m: Machine, input: Extract<OwnershipInput, { kind: "start" }>): void {
  if (m.s.started) bad("input", `ownership machine of ${m.self} was already started`);
  const incarnation = requireIdentifier(input.incarnation, "incarnation");
  if (incarnation.length > 32 || incarnation.includes(":")) {
    bad("incarnation", "incarnation must be at most 32 characters and contain no ':'");
  }
  m.s.started = true;
  m.s.incarnation = incarnation;
  m.s.nowMs = requireTimeMs(input.nowMs, "nowMs");
  m.s.members = uniqueSorted(input.members.map((id) => requireIdentifier(id, "members[]")));
  if (m.s.pending?.step === "verifyKeys") startKeyCheck(m);
  else startZeroize(m);
}

export function startZeroize(m: Machine): void {
  const correlationId = m.nextId();
  m.setPending("zeroizeAndInit", { correlationId });
  m.emit({ kind: "hsm.zeroizeAndInit", correlationId });
}

function heldKeyIdList(m: Machine): string[] {
  const mat = m.s.material;
  return [
    mat.ownerRoot?.keyId ?? fail("Internal", "resumed without an owner root key"),
    mat.dek?.keyId ?? fail("Internal", "resumed without a DEK"),
    mat.poolKey?.keyId ?? fail("Internal", "resumed without a pool key"),
  ];
}

export function startKeyCheck(m: Machine): void {
  const correlationId = m.nextId();
  m.setPending("verifyKeys", { correlationId });
  m.emit({
    kind: "hsm.checkKeys",
    correlationId,
    partitionId: m.partition().partitionId,
    keyIds: heldKeyIdList(m),
  });
}

export function onKeysChecked(m: Machine, input: Extract<OwnershipInput, { kind: "keysChecked" }>): void {
  const found =
    input.partition === null
      ? null
      : {
          partitionId: requireIdentifier(input.partition?.partitionId, "partition.partitionId"),
          transferPublicKey: validateP384Jwk(
            input.partition?.transferPublicKey,
            "partition.transferPublicKey",
          ),
        };
  if (!Array.isArray(input.missingKeyIds)) bad("missingKeyIds", "missingKeyIds must be a list");
  const missing = input.missingKeyIds.map((id, i) => requireKeyId(id, `missingKeyIds[${i}]`));
  if (!m.isPending("verifyKeys", input.correlationId)) return;
  const asked = heldKeyIdList(m);
  const stranger = missing.find((id) => !asked.includes(id));
  if (stranger !== undefined) bad("missingKeyIds", `key ${stranger} was not asked about`);
  const expected = m.partition();
  const problem =
    found === null
      ? "the stored partition credential opens no partition (zeroized or device replaced)"
      : found.partitionId !== expected.partitionId
        ? `the credential opens partition ${found.partitionId}, not ${expected.partitionId}`
        : !sameJwk(found.transferPublicKey, expected.transferPublicKey)
          ? `partition ${found.partitionId} has a new transfer key (it was re-initialized)`
          : missing.length > 0
            ? `partition ${found.partitionId} no longer holds key(s) ${missing.join(", ")}`
            : null;
  if (problem !== null) {
    fallBackToBlank(m, problem);
    return;
  }
  m.s.lastError = null;
  if (m.s.phase === "ownershipProposed") {
    // A proposer's material is intact: the committed Genesis (now or later) decides its fate.
    m.s.pending = null;
    advance(m);
    return;
  }
  emitSynced(m);
  // The log (replayed by the shell) usually already records this member as synced;
  // announce again only if it still does not by the deadline.
  if (m.s.syncedMembers.includes(m.self)) m.s.pending = null;
  else m.setPending("announceSynced", { deadlineTick: m.deadline() });
}

/** The checkpoint's keys are gone: start over as a blank member (Genesis and the log's facts stay). */
function fallBackToBlank(m: Machine, problem: string): void {
  const what = m.s.phase === "ownershipProposed" ? "its proposed Genesis material" : "ownership";
  m.note("KeyNotFound", `cannot resume ${what} from the checkpoint: ${problem}; re-syncing`);
  // No hsm.deleteKeys: zeroizing wipes whatever is left in the partition.
  m.s.material = NO_MATERIAL;
  m.s.partition = null;
  m.s.phase = "initializingPartition";
  startZeroize(m);
}

export function onPartitionReady(
  m: Machine,
  input: Extract<OwnershipInput, { kind: "partitionReady" }>,
): void {
  if (!m.isPending("zeroizeAndInit", input.correlationId)) return;
  m.s.partition = Object.freeze({
    partitionId: requireIdentifier(input.partitionId, "partitionId"),
    transferPublicKey: validateP384Jwk(input.transferPublicKey, "transferPublicKey"),
  });
  m.s.pending = null;
  m.s.phase = m.s.peersConnected || m.s.leader !== null ? "electing" : "connecting";
  advance(m);
}
