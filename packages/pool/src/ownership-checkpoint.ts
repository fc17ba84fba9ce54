/**
 * Ownership checkpoints: what a member records so that, restarted in place (same server,
 * same HSM partition, its partition credential sealed on disk), it resumes instead of
 * zeroizing the partition — which may hold the only copy of the pool's owner root and DEK.
 *
 * Two kinds (the `phase` field):
 *  - "synced": a member holding the pool's ownership — the committed Genesis, the HSM key
 *    ids of owner root, DEK and pool key, this partition's certificate. Restarted, it
 *    resumes synced (once hsm.checkKeys confirms the keys) instead of re-syncing from a
 *    peer, which, if every member restarted at once, would lose the pool's DEK.
 *  - "ownershipProposed" (provisional): a primary that made owner root, DEK and pool key
 *    and proposed Genesis, which may or may not commit. If it commits, this partition holds
 *    the only copy of the pool's keys until a peer has synced from it, so a crash must not
 *    zeroize it. Restarted, the member checks its keys, then waits for the committed Genesis:
 *    its own → synced; another's → it deletes the material and syncs like any secondary.
 *    It never serves or exports this material before its Genesis is known to have won.
 *
 * Public data only: ids, certificates, fingerprints. The keys never leave the partition.
 *
 * Contract for shells (persist before effects): after every stepOwnership, when
 * ownershipCheckpoint(state) is non-null and differs from the last one written, write it
 * durably before executing any of the step's effects (null: leave the file as it is). The
 * Genesis proposal is emitted in the step that first yields the provisional checkpoint, so
 * the proposal never leaves before the material it names is recorded.
 *
 * Bytes = frame("HPO1", version, payload) with an 8-byte SHA-256 checksum (frame.ts); a
 * checkpoint is written in the lowest version that can hold it (synced ones stay version 1,
 * byte for byte), and the decoder reads both:
 *
 *   v1: phase (u8 1: synced) | poolId | nodeId | genesis (command fields) | ownerRootKeyId
 *       | dekKeyId | poolKeyKeyId | dekFingerprint | poolKeyFingerprint | partitionCert
 *   v2: phase (u8 2: ownershipProposed) | poolId | nodeId | ownerRootCert | ownerRootKeyId
 *       | dekKeyId | poolKeyKeyId | dekFingerprint | poolKeyFingerprint | partitionCert
 */

import { type ByteReader, ByteWriter } from "@hsmpool/codec";
import { fail, isHsmPoolError } from "@hsmpool/errors";
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
import { frame, unframeVersions } from "./frame.js";
import { createOwnershipState, holdsOwnership } from "./ownership.js";
import type { OwnershipConfig, OwnershipState } from "./ownership-types.js";
import { bad, requireFingerprint, requireIdentifier, requireKeyId } from "./validate.js";

export const CHECKPOINT_FORMAT = { magic: "HPO1", version: 1, what: "ownership checkpoint" } as const;
/** Versions this build reads: 1 (synced), 2 (adds the provisional "ownershipProposed" kind). */
export const CHECKPOINT_VERSIONS: readonly number[] = [1, 2];
const MAX_STRING_BYTES = 1024;
/** Phases a checkpoint can record, by their byte, and the format version each needs. */
const PHASES = ["synced", "ownershipProposed"] as const;
const VERSION_OF_PHASE = { synced: 1, ownershipProposed: 2 } as const;

/** The HSM keys a checkpoint names, and this member's partition certificate. */
interface CheckpointKeys {
  readonly poolId: string;
  readonly nodeId: string;
  /** HSM key ids in this member's partition. */
  readonly ownerRootKeyId: string;
  readonly dekKeyId: string;
  readonly poolKeyKeyId: string;
  readonly dekFingerprint: string;
  readonly poolKeyFingerprint: string;
  /** This member's partition certificate: names its partition id and transfer public key. */
  readonly partitionCert: PoolCertificate;
}

/** A member that holds the pool's ownership. */
export interface SyncedOwnershipCheckpoint extends CheckpointKeys {
  readonly phase: "synced";
  /** The pool's committed Genesis (owner root certificate, DEK and pool-key fingerprints). */
  readonly genesis: GenesisCommand;
}

/**
 * A primary whose Genesis (with this material) was proposed but not yet known to have
 * committed: its keys are kept, and used only once its own Genesis is the committed one.
 */
export interface ProvisionalOwnershipCheckpoint extends CheckpointKeys {
  readonly phase: "ownershipProposed";
  /** The owner root certificate this member made and proposed (self-signed, its subject). */
  readonly ownerRootCert: PoolCertificate;
}

export type OwnershipCheckpoint = SyncedOwnershipCheckpoint | ProvisionalOwnershipCheckpoint;

type Fields = Partial<Record<keyof SyncedOwnershipCheckpoint | "ownerRootCert", unknown>>;

/**
 * Checks a checkpoint's fields and that they agree with each other (pool, node, Genesis or
 * owner root certificate, key-id fingerprints). Signatures are checked by resumeOwnership.
 * Throws BadParameter.
 */
export function validateOwnershipCheckpoint(input: unknown): OwnershipCheckpoint {
  if (typeof input !== "object" || input === null)
    bad("checkpoint", "ownership checkpoint must be an object");
  const c = input as Fields;
  if (c.phase !== "synced" && c.phase !== "ownershipProposed") {
    bad("phase", `checkpoint phase must be "synced" or "ownershipProposed"; got ${JSON.stringify(c.phase)}`);
  }
  const poolId = requireIdentifier(c.poolId, "poolId");
  const nodeId = requireIdentifier(c.nodeId, "nodeId");
  const keys = {
    poolId,
    nodeId,
    ownerRootKeyId: requireKeyId(c.ownerRootKeyId, "ownerRootKeyId"),
    dekKeyId: requireKeyId(c.dekKeyId, "dekKeyId"),
    poolKeyKeyId: requireKeyId(c.poolKeyKeyId, "poolKeyKeyId"),
    dekFingerprint: requireFingerprint(c.dekFingerprint, "dekFingerprint"),
    poolKeyFingerprint: requireFingerprint(c.poolKeyFingerprint, "poolKeyFingerprint"),
    partitionCert: validateCertificate(c.partitionCert, "partitionCert"),
  };
  const { partitionCert } = keys;
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
  if (c.phase === "ownershipProposed") return validateProvisional(c, keys);
  const genesis = validateCommand(c.genesis);
  if (genesis.kind !== "genesis") bad("genesis", "checkpoint genesis must be a genesis command");
  if (genesis.poolId !== poolId || genesis.ownerRootCert.poolId !== poolId) {
    bad("genesis", `checkpoint genesis is for pool ${genesis.poolId}, not ${poolId}`);
  }
  if (genesis.ownerRootCert.role !== "ownerRoot") {
    bad("genesis", "checkpoint genesis holds no owner root certificate");
  }
  const { dekFingerprint, poolKeyFingerprint } = keys;
  if (dekFingerprint !== genesis.dekFingerprint || dekFingerprint !== keyFingerprint(keys.dekKeyId)) {
    bad(
      "dekFingerprint",
      "checkpoint DEK is not the pool's (fingerprint differs from Genesis or its key id)",
    );
  }
  if (
    poolKeyFingerprint !== genesis.poolKeyFingerprint ||
    poolKeyFingerprint !== keyFingerprint(keys.poolKeyKeyId)
  ) {
    bad(
      "poolKeyFingerprint",
      "checkpoint pool key is not the pool's (fingerprint differs from Genesis or its key id)",
    );
  }
  return Object.freeze({ phase: "synced", ...keys, genesis });
}

function validateProvisional(c: Fields, keys: CheckpointKeys): ProvisionalOwnershipCheckpoint {
  if (keys.dekFingerprint !== keyFingerprint(keys.dekKeyId)) {
    bad("dekFingerprint", "checkpoint DEK fingerprint is not the fingerprint of its key id");
  }
  if (keys.poolKeyFingerprint !== keyFingerprint(keys.poolKeyKeyId)) {
    bad("poolKeyFingerprint", "checkpoint pool-key fingerprint is not the fingerprint of its key id");
  }
  const ownerRootCert = validateCertificate(c.ownerRootCert, "ownerRootCert");
  if (
    ownerRootCert.role !== "ownerRoot" ||
    ownerRootCert.poolId !== keys.poolId ||
    ownerRootCert.subject !== keys.nodeId ||
    ownerRootCert.partitionId !== keys.partitionCert.partitionId
  ) {
    bad(
      "ownerRootCert",
      `checkpoint ownerRootCert must be the owner root certificate ${keys.nodeId} made in its own partition ` +
        `for pool ${keys.poolId}`,
    );
  }
  return Object.freeze({ phase: "ownershipProposed", ...keys, ownerRootCert });
}

/**
 * What a member must have on disk before it acts on `state` (see the contract above): the
 * synced checkpoint once it holds the pool's ownership; the provisional one while its own
 * Genesis is proposed and undecided; otherwise null (keep whatever was written last).
 */
export function ownershipCheckpoint(state: OwnershipState): OwnershipCheckpoint | null {
  const { ownerRoot, ownerRootCert, dek, poolKey, partitionCert } = state.material;
  if (!ownerRoot || !dek || !poolKey || !partitionCert) return null;
  const keys = {
    poolId: state.config.poolId,
    nodeId: state.config.nodeId,
    ownerRootKeyId: ownerRoot.keyId,
    dekKeyId: dek.keyId,
    poolKeyKeyId: poolKey.keyId,
    dekFingerprint: dek.fingerprint,
    poolKeyFingerprint: poolKey.fingerprint,
    partitionCert,
  };
  if (state.phase === "ownershipProposed" && ownerRootCert) {
    return validateOwnershipCheckpoint({ phase: "ownershipProposed", ...keys, ownerRootCert });
  }
  if (!holdsOwnership(state) || !state.genesis) return null;
  return validateOwnershipCheckpoint({ phase: "synced", ...keys, genesis: state.genesis });
}

/**
 * A machine for a member restarted in place, pending "verifyKeys": phase "synced" (from a
 * synced checkpoint) or "ownershipProposed" (from a provisional one), with the checkpoint's
 * material. Feed `start` as for a blank member; it emits hsm.checkKeys instead of
 * hsm.zeroizeAndInit. Nothing is served, proposed or discarded until keysChecked confirms
 * the partition and keys; if they are gone the machine zeroizes and re-syncs like a blank
 * member. A provisional member then waits for the committed Genesis (re-proposing its own
 * while none is committed and it is the caught-up primary). A checkpoint of another node
 * or pool, or whose certificates do not verify, is a BadParameter.
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
  const root = c.phase === "synced" ? c.genesis.ownerRootCert : c.ownerRootCert;
  try {
    verifyOwnerRootCertificate(root, poolId);
    verifyPartitionCertificate(c.partitionCert, root);
  } catch (e) {
    if (!isHsmPoolError(e)) throw e;
    bad("checkpoint", `the checkpoint's certificates do not verify: ${e.message}`);
  }
  return Object.freeze({
    ...fresh,
    phase: c.phase,
    partition: Object.freeze({
      partitionId: c.partitionCert.partitionId,
      transferPublicKey: c.partitionCert.publicKey,
    }),
    // A provisional member learns which Genesis won from the log, like everyone else.
    genesis: c.phase === "synced" ? c.genesis : null,
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
  if (c.phase === "synced") writeGenesisFields(w, c.genesis);
  else writeCertificate(w, c.ownerRootCert);
  w.string(c.ownerRootKeyId)
    .string(c.dekKeyId)
    .string(c.poolKeyKeyId)
    .string(c.dekFingerprint)
    .string(c.poolKeyFingerprint);
  writeCertificate(w, c.partitionCert);
  return frame({ ...CHECKPOINT_FORMAT, version: VERSION_OF_PHASE[c.phase] }, w.finish());
}

/** Decodes a checkpoint (either version); corrupt, truncated or inconsistent bytes are an IntegrityError. */
export function decodeOwnershipCheckpoint(data: Uint8Array): OwnershipCheckpoint {
  const { reader: r, version } = unframeVersions(CHECKPOINT_FORMAT, CHECKPOINT_VERSIONS, data);
  try {
    const checkpoint = validateOwnershipCheckpoint(readFields(r, version));
    r.end();
    return checkpoint;
  } catch (e) {
    if (isHsmPoolError(e, "BadParameter")) {
      fail("IntegrityError", `${CHECKPOINT_FORMAT.what} holds an invalid value: ${e.message}`);
    }
    throw e;
  }
}

function readFields(r: ByteReader, version: number): Record<string, unknown> {
  const phase = PHASES[r.u8("phase") - 1] ?? r.corrupt("unknown phase");
  // Canonical bytes only: each kind has exactly one version (a synced one stays readable by older builds).
  if (VERSION_OF_PHASE[phase] !== version)
    r.corrupt(`a checkpoint of phase ${phase} in format version ${version}`);
  const poolId = r.string("poolId", MAX_STRING_BYTES);
  const nodeId = r.string("nodeId", MAX_STRING_BYTES);
  const proposal =
    phase === "synced"
      ? { genesis: readGenesisFields(r, "genesis ") }
      : { ownerRootCert: readCertificate(r, "ownerRootCert") };
  return {
    phase,
    poolId,
    nodeId,
    ...proposal,
    ownerRootKeyId: r.string("ownerRootKeyId", MAX_STRING_BYTES),
    dekKeyId: r.string("dekKeyId", MAX_STRING_BYTES),
    poolKeyKeyId: r.string("poolKeyKeyId", MAX_STRING_BYTES),
    dekFingerprint: r.string("dekFingerprint", MAX_STRING_BYTES),
    poolKeyFingerprint: r.string("poolKeyFingerprint", MAX_STRING_BYTES),
    partitionCert: readCertificate(r, "partitionCert"),
  };
}
