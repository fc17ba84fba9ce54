/**
 * Ownership checkpoints: what a synced member records so that, restarted in place (same
 * server, same HSM partition, its partition credential sealed on disk), it resumes as a
 * synced member instead of zeroizing and re-syncing from a peer — which, if every member
 * restarted at once, would lose the pool's DEK.
 *
 * Public data only: ids, the committed Genesis (owner root certificate, DEK and pool-key
 * fingerprints), the HSM key ids of owner root, DEK and pool key, and this partition's
 * certificate. The keys never leave the partition; resumeOwnership makes the shell
 * confirm the partition still holds them before the member serves anything.
 *
 * Bytes = frame("HPO1", version 1, payload) with an 8-byte SHA-256 checksum (frame.ts):
 *
 *   phase (u8: 1 synced) | poolId | nodeId | genesis (command fields) | ownerRootKeyId
 *   | dekKeyId | poolKeyKeyId | dekFingerprint | poolKeyFingerprint | partitionCert
 */
import { fail, isHsmPoolError } from "@hsmpool/errors";
import { type ByteReader, ByteWriter } from "./bytes.js";
import {
  keyFingerprint,
  type PoolCertificate,
  readCertificate,
  validateCertificate,
  verifyOwnerRootCertificate,
  verifyPartitionCertificate,
  writeCertificate,
} from "./certificate.js";
import { type GenesisCommand, readGenesisFields, validateCommand, writeGenesisFields } from "./commands.js";
import { frame, unframe } from "./frame.js";
import { createOwnershipState, holdsOwnership } from "./ownership.js";
import type { OwnershipConfig, OwnershipState } from "./ownership-types.js";
import { bad, requireFingerprint, requireIdentifier, requireKeyId } from "./validate.js";

export const CHECKPOINT_FORMAT = { magic: "HPO1", version: 1, what: "ownership checkpoint" } as const;
const MAX_STRING_BYTES = 1024;
/** Phases a checkpoint can record, by their byte (only "synced" so far). */
const PHASES = ["synced"] as const;

export interface OwnershipCheckpoint {
  /** The phase the member had reached when it was written. */
  readonly phase: "synced";
  readonly poolId: string;
  readonly nodeId: string;
  /** The pool's committed Genesis (owner root certificate, DEK and pool-key fingerprints). */
  readonly genesis: GenesisCommand;
  /** HSM key ids in this member's partition. */
  readonly ownerRootKeyId: string;
  readonly dekKeyId: string;
  readonly poolKeyKeyId: string;
  readonly dekFingerprint: string;
  readonly poolKeyFingerprint: string;
  /** This member's partition certificate: names its partition id and transfer public key. */
  readonly partitionCert: PoolCertificate;
}

/**
 * Checks a checkpoint's fields and that they agree with each other (pool, node, Genesis,
 * key-id fingerprints). Signatures are checked by resumeOwnership. Throws BadParameter.
 */
export function validateOwnershipCheckpoint(input: unknown): OwnershipCheckpoint {
  if (typeof input !== "object" || input === null)
    bad("checkpoint", "ownership checkpoint must be an object");
  const c = input as Partial<Record<keyof OwnershipCheckpoint, unknown>>;
  if (c.phase !== "synced") bad("phase", `checkpoint phase must be "synced"; got ${JSON.stringify(c.phase)}`);
  const poolId = requireIdentifier(c.poolId, "poolId");
  const nodeId = requireIdentifier(c.nodeId, "nodeId");
  const genesis = validateCommand(c.genesis);
  if (genesis.kind !== "genesis") bad("genesis", "checkpoint genesis must be a genesis command");
  if (genesis.poolId !== poolId || genesis.ownerRootCert.poolId !== poolId) {
    bad("genesis", `checkpoint genesis is for pool ${genesis.poolId}, not ${poolId}`);
  }
  if (genesis.ownerRootCert.role !== "ownerRoot") {
    bad("genesis", "checkpoint genesis holds no owner root certificate");
  }
  const ownerRootKeyId = requireKeyId(c.ownerRootKeyId, "ownerRootKeyId");
  const dekKeyId = requireKeyId(c.dekKeyId, "dekKeyId");
  const poolKeyKeyId = requireKeyId(c.poolKeyKeyId, "poolKeyKeyId");
  const dekFingerprint = requireFingerprint(c.dekFingerprint, "dekFingerprint");
  const poolKeyFingerprint = requireFingerprint(c.poolKeyFingerprint, "poolKeyFingerprint");
  if (dekFingerprint !== genesis.dekFingerprint || dekFingerprint !== keyFingerprint(dekKeyId)) {
    bad(
      "dekFingerprint",
      "checkpoint DEK is not the pool's (fingerprint differs from Genesis or its key id)",
    );
  }
  if (
    poolKeyFingerprint !== genesis.poolKeyFingerprint ||
    poolKeyFingerprint !== keyFingerprint(poolKeyKeyId)
  ) {
    bad(
      "poolKeyFingerprint",
      "checkpoint pool key is not the pool's (fingerprint differs from Genesis or its key id)",
    );
  }
  const partitionCert = validateCertificate(c.partitionCert, "partitionCert");
  if (
    partitionCert.role !== "partition" ||
    partitionCert.poolId !== poolId ||
    partitionCert.subject !== nodeId
  ) {
    bad(
      "partitionCert",
      `checkpoint partitionCert must be a partition certificate of ${nodeId} in pool ${poolId}`,
    );
  }
  return Object.freeze({
    phase: "synced",
    poolId,
    nodeId,
    genesis,
    ownerRootKeyId,
    dekKeyId,
    poolKeyKeyId,
    dekFingerprint,
    poolKeyFingerprint,
    partitionCert,
  });
}

/** The member's checkpoint once it holds the pool's ownership, else null. Record it whenever it changes. */
export function ownershipCheckpoint(state: OwnershipState): OwnershipCheckpoint | null {
  const { ownerRoot, dek, poolKey, partitionCert } = state.material;
  if (!holdsOwnership(state) || !state.genesis || !ownerRoot || !dek || !poolKey || !partitionCert)
    return null;
  return validateOwnershipCheckpoint({
    phase: "synced",
    poolId: state.config.poolId,
    nodeId: state.config.nodeId,
    genesis: state.genesis,
    ownerRootKeyId: ownerRoot.keyId,
    dekKeyId: dek.keyId,
    poolKeyKeyId: poolKey.keyId,
    dekFingerprint: dek.fingerprint,
    poolKeyFingerprint: poolKey.fingerprint,
    partitionCert,
  });
}

/**
 * A machine for a member restarted in place: phase "synced" with the checkpoint's
 * material, pending "verifyKeys". Feed `start` as for a blank member; it emits
 * hsm.checkKeys instead of hsm.zeroizeAndInit. Ownership (requireOwnership, serving
 * peers, the ownershipSynced effect) comes only once keysChecked confirms the partition
 * and keys; if they are gone the machine zeroizes and re-syncs like a blank member.
 * A checkpoint of another node or pool, or whose certificates do not verify, is a
 * BadParameter.
 */
export function resumeOwnership(config: OwnershipConfig, checkpoint: OwnershipCheckpoint): OwnershipState {
  const fresh = createOwnershipState(config);
  const c = validateOwnershipCheckpoint(checkpoint);
  const { nodeId, poolId } = fresh.config;
  if (c.nodeId !== nodeId || c.poolId !== poolId) {
    bad(
      "checkpoint",
      `the checkpoint belongs to ${c.nodeId} in pool ${c.poolId}, not ${nodeId} in pool ${poolId}; ` +
        "a checkpoint resumes only the member that wrote it",
    );
  }
  const root = c.genesis.ownerRootCert;
  try {
    verifyOwnerRootCertificate(root, poolId);
    verifyPartitionCertificate(c.partitionCert, root);
  } catch (e) {
    if (!isHsmPoolError(e)) throw e;
    bad("checkpoint", `the checkpoint's certificates do not verify: ${e.message}`);
  }
  return Object.freeze({
    ...fresh,
    phase: "synced",
    partition: Object.freeze({
      partitionId: c.partitionCert.partitionId,
      transferPublicKey: c.partitionCert.publicKey,
    }),
    genesis: c.genesis,
    material: Object.freeze({
      ownerRoot: Object.freeze({ keyId: c.ownerRootKeyId, publicKey: root.publicKey }),
      ownerRootCert: root,
      dek: Object.freeze({ keyId: c.dekKeyId, fingerprint: c.dekFingerprint }),
      poolKey: Object.freeze({ keyId: c.poolKeyKeyId, fingerprint: c.poolKeyFingerprint }),
      partitionCert: c.partitionCert,
    }),
    pending: Object.freeze({
      step: "verifyKeys",
      correlationId: "",
      deadlineTick: null,
      target: null,
      attempt: 0,
      unsigned: null,
    }),
  });
}

export function encodeOwnershipCheckpoint(checkpoint: OwnershipCheckpoint): Uint8Array {
  const c = validateOwnershipCheckpoint(checkpoint);
  const w = new ByteWriter()
    .u8(PHASES.indexOf(c.phase) + 1)
    .string(c.poolId)
    .string(c.nodeId);
  writeGenesisFields(w, c.genesis);
  w.string(c.ownerRootKeyId)
    .string(c.dekKeyId)
    .string(c.poolKeyKeyId)
    .string(c.dekFingerprint)
    .string(c.poolKeyFingerprint);
  writeCertificate(w, c.partitionCert);
  return frame(CHECKPOINT_FORMAT, w.finish());
}

/** Decodes a checkpoint; corrupt, truncated or inconsistent bytes are an IntegrityError. */
export function decodeOwnershipCheckpoint(data: Uint8Array): OwnershipCheckpoint {
  const r = unframe(CHECKPOINT_FORMAT, data);
  try {
    const checkpoint = validateOwnershipCheckpoint(readFields(r));
    r.end();
    return checkpoint;
  } catch (e) {
    if (isHsmPoolError(e, "BadParameter")) {
      fail("IntegrityError", `${CHECKPOINT_FORMAT.what} holds an invalid value: ${e.message}`);
    }
    throw e;
  }
}

function readFields(r: ByteReader): Record<string, unknown> {
  const phase = PHASES[r.u8("phase") - 1] ?? r.corrupt("unknown phase");
  return {
    phase,
    poolId: r.string("poolId", MAX_STRING_BYTES),
    nodeId: r.string("nodeId", MAX_STRING_BYTES),
    genesis: readGenesisFields(r, "genesis "),
    ownerRootKeyId: r.string("ownerRootKeyId", MAX_STRING_BYTES),
    dekKeyId: r.string("dekKeyId", MAX_STRING_BYTES),
    poolKeyKeyId: r.string("poolKeyKeyId", MAX_STRING_BYTES),
    dekFingerprint: r.string("dekFingerprint", MAX_STRING_BYTES),
    poolKeyFingerprint: r.string("poolKeyFingerprint", MAX_STRING_BYTES),
    partitionCert: readCertificate(r, "partitionCert"),
  };
}
