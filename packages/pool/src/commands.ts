/**
 * Pool commands: the payloads of normal Raft log entries, and their versioned codec.
 *
 * Entry bytes = frame("HPC1", version 1, kind (u8) | fields) with an 8-byte SHA-256
 * checksum (see frame.ts). Field order per kind is the order of the interfaces below;
 * strings are u32-length UTF-8, times are u64 ms, optional values carry a 0/1 flag.
 * encodeCommand validates (BadParameter, nothing encoded); decodeCommand turns any
 * corrupt, truncated or semantically invalid entry into an IntegrityError, so a bad
 * entry stops the applier instead of being applied as something else.
 *
 * `at` is the proposer's wall time carried in the entry, so every member applies
 * the same timestamps. `requestId` makes client retries idempotent.
 */

import { type ByteReader, ByteWriter } from "@hsmpool/codec";
import { fail, isHsmPoolError } from "@hsmpool/errors";
import { type AccessOp, validateAccessOp } from "./access/state.js";
import { KEY_OPS, type KeyOp, type KeyShape } from "./algorithms.js";
import {
  type RecordBackupJobCommand,
  readBackupJob,
  validateRecordBackupJob,
  writeBackupJob,
} from "./backup-job-state.js";
import {
  type PoolCertificate,
  readCertificate,
  validateCertificate,
  writeCertificate,
} from "./certificate.js";
import { frame, unframe } from "./frame.js";
import { compareStrings, type PublicJwk, readJwk, validatePublicJwk, writeJwk } from "./jwk.js";
import {
  type KeyAttributeChanges,
  type KeyAttributes,
  MAX_TAGS,
  requireKeyName,
  requireTimeWindow,
  requireVersion,
  validateAttributeChanges,
  validateOps,
  validateShape,
  validateTags,
} from "./key-request.js";
import type { KeyVersionRecord } from "./keystore-state.js";
import { requireSettingName, type SettingName } from "./pool-settings.js";
import { POLICY_FIELDS, type RotationPolicy, validateRotationPolicy } from "./rotation-policy.js";
import {
  type ActivateSecurityDomainCommand,
  type RestoreBackupCommand,
  readActivateFields,
  readRestoreFields,
  validateActivate,
  validateRestore,
  writeActivateFields,
  writeRestoreFields,
} from "./security-domain-state.js";
import {
  bad,
  requireBytes,
  requireBytesInPlace,
  requireFingerprint,
  requireHostPort,
  requireIdentifier,
  requireTimeMs,
} from "./validate.js";

export const COMMAND_FORMAT = { magic: "HPC1", version: 1, what: "pool log entry" } as const;
/** Upper bound for a DEK-wrapped key blob (RSA-4096 PKCS#8 plus the HSM blob header is ~2.6 KiB). */
export const MAX_WRAPPED_MATERIAL_BYTES = 16 * 1024;
const MAX_STRING_BYTES = 1024;

/** The first committed Genesis fixes the pool's owner root, DEK and pool key; later ones are no-ops. */
export interface GenesisCommand {
  readonly kind: "genesis";
  readonly poolId: string;
  readonly ownerRootCert: PoolCertificate;
  readonly dekFingerprint: string;
  readonly poolKeyFingerprint: string;
  readonly proposer: string;
  readonly at: number;
}

/** Creates version 1 of a key, or the next version when the name exists (Key Vault semantics). */
export interface CreateKeyCommand {
  readonly kind: "createKey";
  readonly requestId: string;
  readonly name: string;
  readonly shape: KeyShape;
  readonly ops: readonly KeyOp[];
  readonly attributes: KeyAttributes;
  /** The key as an HSM blob wrapped under the pool DEK (never plaintext material). */
  readonly wrappedMaterial: Uint8Array;
  /** Public key of RSA/EC keys; null for oct. */
  readonly publicJwk: PublicJwk | null;
  readonly at: number;
}

export interface UpdateKeyAttributesCommand {
  readonly kind: "updateKeyAttributes";
  readonly requestId: string;
  readonly name: string;
  /** null: the latest version at apply time. */
  readonly version: number | null;
  readonly changes: KeyAttributeChanges;
  readonly at: number;
}

/** Deletes every version of a key. */
export interface DeleteKeyCommand {
  readonly kind: "deleteKey";
  readonly requestId: string;
  readonly name: string;
  readonly at: number;
}

/** A member announces it holds the pool's owner root, its partition certificate and the DEK. */
export interface MemberOwnershipSyncedCommand {
  readonly kind: "memberOwnershipSynced";
  readonly memberId: string;
  readonly partitionCertFingerprint: string;
  readonly dekFingerprint: string;
  readonly at: number;
}

/**
 * The primary records a member's network addresses and attested security version in
 * the log (healing: a replacement joins), so every member, and every later snapshot,
 * knows how to reach it. `replaces` lists the members the primary removes once this
 * one is a voter. Re-registering the same id updates its record.
 */
export interface RegisterMemberCommand {
  readonly kind: "registerMember";
  readonly memberId: string;
  /** host:port of its attested peer endpoint. */
  readonly peerAddress: string;
  /** host:port of its data plane (KeyVault), for NotLeader redirects. */
  readonly dataAddress: string;
  /** The SVN the primary verified in the member's attestation. */
  readonly svn: number;
  readonly replaces: readonly string[];
  readonly at: number;
}

/**
 * A change to the access state (tenant binding, JWKS rollover, role definitions and
 * assignments; access/state.ts). `op` travels as canonical JSON inside the entry.
 * The proposer authorised the caller before proposing; apply checks the rules that
 * need the whole state (lockout protection, roles in use).
 */
export interface AccessCommand {
  readonly kind: "access";
  readonly requestId: string;
  readonly op: AccessOp;
  readonly at: number;
}

/** Largest encoded access operation (a custom role with many actions, a JWKS). */
export const MAX_ACCESS_OP_BYTES = 64 * 1024;

/**
 * A new version of a live key with the latest version's parameters (shape, ops, tags),
 * made in the proposer's partition. Applies only while `basedOnVersion` is still the
 * latest, so a policy rotation re-proposed after a failover cannot rotate twice.
 */
export interface RotateKeyCommand {
  readonly kind: "rotateKey";
  readonly requestId: string;
  readonly name: string;
  readonly basedOnVersion: number;
  readonly wrappedMaterial: Uint8Array;
  readonly publicJwk: PublicJwk | null;
  readonly at: number;
}

/** Brings a soft-deleted key back with every version. */
export interface RecoverKeyCommand {
  readonly kind: "recoverKey";
  readonly requestId: string;
  readonly name: string;
  readonly at: number;
}

/** Removes a soft-deleted key for good (refused under purge protection before its scheduled purge date). */
export interface PurgeKeyCommand {
  readonly kind: "purgeKey";
  readonly requestId: string;
  readonly name: string;
  readonly at: number;
}

/** Changes a pool setting (pool-settings.ts). */
export interface SetSettingCommand {
  readonly kind: "setSetting";
  readonly requestId: string;
  readonly setting: SettingName;
  readonly value: string;
  readonly at: number;
}

export interface SetRotationPolicyCommand {
  readonly kind: "setRotationPolicy";
  readonly requestId: string;
  readonly name: string;
  readonly policy: RotationPolicy;
  readonly at: number;
}

/** Restores a key from a backup: every version as recorded (material still wrapped under the pool DEK). */
export interface RestoreKeyCommand {
  readonly kind: "restoreKey";
  readonly requestId: string;
  readonly name: string;
  readonly versions: readonly KeyVersionRecord[];
  readonly at: number;
}

export type PoolCommand =
  | AccessCommand
  | GenesisCommand
  | CreateKeyCommand
  | UpdateKeyAttributesCommand
  | DeleteKeyCommand
  | MemberOwnershipSyncedCommand
  | RegisterMemberCommand
  | ActivateSecurityDomainCommand
  | RestoreBackupCommand
  | RotateKeyCommand
  | RecoverKeyCommand
  | PurgeKeyCommand
  | SetSettingCommand
  | SetRotationPolicyCommand
  | RestoreKeyCommand
  | RecordBackupJobCommand;

export type PoolCommandKind = PoolCommand["kind"];

const KINDS: readonly PoolCommandKind[] = [
  "genesis",
  "createKey",
  "updateKeyAttributes",
  "deleteKey",
  "memberOwnershipSynced",
  "registerMember",
  "activateSecurityDomain",
  "restoreBackup",
  "access",
  "rotateKey",
  "recoverKey",
  "purgeKey",
  "setSetting",
  "setRotationPolicy",
  "restoreKey",
  "recordBackupJob",
];
/** Most versions one restored key may carry (one log entry). */
export const MAX_RESTORED_VERSIONS = 256;
/** Largest security version number (the platform's SIGSTRUCT field is a u16). */
export const MAX_SVN = 65535;
const MAX_REPLACES = 8;

/** Validates a command (BadParameter naming the field); returns a normalised deep copy. */
export function validateCommand(input: unknown): PoolCommand {
  if (typeof input !== "object" || input === null) bad("command", "pool command must be an object");
  const c = input as Record<string, unknown>;
  switch (c.kind) {
    case "genesis":
      return Object.freeze({
        kind: "genesis",
        poolId: requireIdentifier(c.poolId, "poolId"),
        ownerRootCert: validateCertificate(c.ownerRootCert, "ownerRootCert"),
        dekFingerprint: requireFingerprint(c.dekFingerprint, "dekFingerprint"),
        poolKeyFingerprint: requireFingerprint(c.poolKeyFingerprint, "poolKeyFingerprint"),
        proposer: requireIdentifier(c.proposer, "proposer"),
        at: requireTimeMs(c.at, "at"),
      });
    case "createKey":
      return validateCreateKeyCommand(c);
    case "updateKeyAttributes":
      return Object.freeze({
        kind: "updateKeyAttributes",
        requestId: requireIdentifier(c.requestId, "requestId"),
        name: requireKeyName(c.name),
        version: c.version === null || c.version === undefined ? null : requireVersion(c.version),
        changes: validateAttributeChanges((c.changes ?? {}) as Record<string, unknown>, null),
        at: requireTimeMs(c.at, "at"),
      });
    case "deleteKey":
      return Object.freeze({
        kind: "deleteKey",
        requestId: requireIdentifier(c.requestId, "requestId"),
        name: requireKeyName(c.name),
        at: requireTimeMs(c.at, "at"),
      });
    case "memberOwnershipSynced":
      return Object.freeze({
        kind: "memberOwnershipSynced",
        memberId: requireIdentifier(c.memberId, "memberId"),
        partitionCertFingerprint: requireFingerprint(c.partitionCertFingerprint, "partitionCertFingerprint"),
        dekFingerprint: requireFingerprint(c.dekFingerprint, "dekFingerprint"),
        at: requireTimeMs(c.at, "at"),
      });
    case "registerMember":
      return validateRegisterMember(c);
    case "activateSecurityDomain":
      return validateActivate(c);
    case "restoreBackup":
      return validateRestore(c);
    case "recordBackupJob":
      return validateRecordBackupJob(c);
    case "access":
      return Object.freeze({
        kind: "access",
        requestId: requireIdentifier(c.requestId, "requestId"),
        op: validateAccessOp(c.op),
        at: requireTimeMs(c.at, "at"),
      });
    case "rotateKey":
      return Object.freeze({
        kind: "rotateKey",
        requestId: requireIdentifier(c.requestId, "requestId"),
        name: requireKeyName(c.name),
        basedOnVersion: requireVersion(c.basedOnVersion, "basedOnVersion"),
        wrappedMaterial: requireBytes(c.wrappedMaterial, "wrappedMaterial", MAX_WRAPPED_MATERIAL_BYTES),
        publicJwk:
          c.publicJwk === null || c.publicJwk === undefined
            ? null
            : validatePublicJwk(c.publicJwk, "publicJwk"),
        at: requireTimeMs(c.at, "at"),
      });
    case "recoverKey":
    case "purgeKey":
      return Object.freeze({
        kind: c.kind,
        requestId: requireIdentifier(c.requestId, "requestId"),
        name: requireKeyName(c.name),
        at: requireTimeMs(c.at, "at"),
      });
    case "setSetting": {
      const setting = requireSettingName(c.setting);
      if (typeof c.value !== "string" || c.value.length === 0 || c.value.length > 16)
        bad("value", "a setting value is 1..16 characters");
      return Object.freeze({
        kind: "setSetting",
        requestId: requireIdentifier(c.requestId, "requestId"),
        setting,
        value: c.value,
        at: requireTimeMs(c.at, "at"),
      });
    }
    case "setRotationPolicy":
      return Object.freeze({
        kind: "setRotationPolicy",
        requestId: requireIdentifier(c.requestId, "requestId"),
        name: requireKeyName(c.name),
        policy: validateRotationPolicy(c.policy),
        at: requireTimeMs(c.at, "at"),
      });
    case "restoreKey":
      return validateRestoreKey(c);
    default:
      return bad(
        "kind",
        `unknown pool command kind ${JSON.stringify(c.kind)}; expected one of ${KINDS.join(", ")}`,
      );
  }
}

function validateRegisterMember(c: Record<string, unknown>): RegisterMemberCommand {
  const memberId = requireIdentifier(c.memberId, "memberId");
  const svn = c.svn;
  if (typeof svn !== "number" || !Number.isInteger(svn) || svn < 0 || svn > MAX_SVN) {
    bad("svn", `svn must be a whole number from 0 to ${MAX_SVN}`);
  }
  if (!Array.isArray(c.replaces) || c.replaces.length > MAX_REPLACES) {
    bad("replaces", `replaces must be a list of at most ${MAX_REPLACES} member ids`);
  }
  const replaces = (c.replaces as unknown[]).map((id, i) => requireIdentifier(id, `replaces[${i}]`));
  if (replaces.includes(memberId)) bad("replaces", `member ${memberId} cannot replace itself`);
  if (new Set(replaces).size !== replaces.length) bad("replaces", "replaces lists a member twice");
  return Object.freeze({
    kind: "registerMember",
    memberId,
    peerAddress: requireHostPort(c.peerAddress, "peerAddress"),
    dataAddress: requireHostPort(c.dataAddress, "dataAddress"),
    svn,
    replaces: Object.freeze(replaces),
    at: requireTimeMs(c.at, "at"),
  });
}

function validateRestoreKey(c: Record<string, unknown>): RestoreKeyCommand {
  const name = requireKeyName(c.name);
  if (!Array.isArray(c.versions) || c.versions.length === 0 || c.versions.length > MAX_RESTORED_VERSIONS) {
    bad("versions", `a restored key carries 1..${MAX_RESTORED_VERSIONS} versions`);
  }
  const versions = (c.versions as unknown[]).map((v) => validateVersionRecord(v, name));
  versions.forEach((v, i) => {
    const previous = versions[i - 1];
    if (previous && previous.version >= v.version)
      bad("versions", `versions of key ${name} must be ascending`);
  });
  return Object.freeze({
    kind: "restoreKey",
    requestId: requireIdentifier(c.requestId, "requestId"),
    name,
    versions: Object.freeze(versions),
    at: requireTimeMs(c.at, "at"),
  });
}

/** Checks one version record (from a restore command or a snapshot); returns a frozen normalised copy. */
/**
 * Frozen parts that many version records have alike: a store of 100,000 keys holds a
 * handful of distinct shapes, op sets and plain attributes (no times, no tags), so each
 * is one shared object rather than one per key. Bounded: the keys name validated values.
 */
const sharedParts = new Map<string, object>();
function shared<T extends object>(key: string, make: () => T): Readonly<T> {
  let part = sharedParts.get(key) as T | undefined;
  if (part === undefined) {
    part = Object.freeze(make());
    sharedParts.set(key, part);
  }
  return part;
}

/**
 * A version record from an object. `decoded`: it was just read by readVersion, so its
 * wrapped material is the decoder's own (kept as it is, not copied again).
 */
export function validateVersionRecord(input: unknown, name: string, decoded = false): KeyVersionRecord {
  if (typeof input !== "object" || input === null) bad("version", "a key version record must be an object");
  const v = input as Record<string, unknown>;
  if (v.name !== undefined && v.name !== name)
    bad("name", `a version of ${v.name} cannot belong to key ${name}`);
  const version = requireVersion(v.version);
  const rawShape = (v.shape ?? {}) as Record<string, unknown>;
  const shape = validateShape(
    rawShape.kty,
    rawShape.kty === "EC" ? undefined : rawShape.size,
    rawShape.kty === "EC" ? rawShape.crv : undefined,
  );
  const ops = validateOps(shape.kty, v.ops);
  const a = (v.attributes ?? {}) as Record<string, unknown>;
  if (typeof a.enabled !== "boolean") bad("attributes.enabled", "attributes.enabled must be true or false");
  const notBeforeMs = a.notBeforeMs === null ? null : requireTimeMs(a.notBeforeMs, "attributes.notBeforeMs");
  const expiresMs = a.expiresMs === null ? null : requireTimeMs(a.expiresMs, "attributes.expiresMs");
  requireTimeWindow(notBeforeMs, expiresMs, -1);
  const publicJwk =
    v.publicJwk === null || v.publicJwk === undefined ? null : validatePublicJwk(v.publicJwk, "publicJwk");
  const tags = validateTags(a.tags ?? {}, "attributes.tags");
  const plain = notBeforeMs === null && expiresMs === null && Object.keys(tags).length === 0;
  const enabled = a.enabled;
  return Object.freeze({
    name,
    version,
    shape: shared(`shape ${shape.kty} ${shape.kty === "EC" ? shape.crv : shape.size}`, () => shape),
    ops: shared(`ops ${ops.join(" ")}`, () => ops),
    attributes: plain
      ? shared(`attributes ${enabled}`, () => ({ enabled, notBeforeMs, expiresMs, tags }))
      : Object.freeze({ enabled, notBeforeMs, expiresMs, tags }),
    createdMs: requireTimeMs(v.createdMs, "createdMs"),
    updatedMs: requireTimeMs(v.updatedMs, "updatedMs"),
    publicJwk,
    wrappedMaterial: (decoded ? requireBytesInPlace : requireBytes)(
      v.wrappedMaterial,
      "wrappedMaterial",
      MAX_WRAPPED_MATERIAL_BYTES,
    ),
  });
}

/** One version record (without its key name); shared by restore commands, snapshots and key backups. */
export function writeVersion(w: ByteWriter, v: KeyVersionRecord): void {
  w.u64(v.version);
  writeShape(w, v.shape);
  w.u8(opsMask(v.ops));
  writeAttributes(w, v.attributes);
  w.u64(v.createdMs).u64(v.updatedMs).optional(v.publicJwk, writeJwk).bytes(v.wrappedMaterial);
}

/** Reads what writeVersion wrote and validates it (BadParameter for an invalid value). */
/**
 * How a decoded version holds its wrapped material: "view" into the reader's input (a
 * snapshot, which outlives the state decoded from it) rather than a "copy"; a log
 * entry's record copies (its input may be a slice of a larger buffer).
 */
export type MaterialRead = "copy" | "view";

/** One version record (its wrapped material read as `material` says). */
export function readVersion(r: ByteReader, name: string, material: MaterialRead = "copy"): KeyVersionRecord {
  return validateVersionRecord(
    {
      version: r.u64("version"),
      shape: readShape(r),
      ops: readOpsMask(r),
      attributes: readAttributes(r),
      createdMs: r.u64("createdMs"),
      updatedMs: r.u64("updatedMs"),
      publicJwk: r.optional("publicJwk", (r) => readJwk(r, "publicJwk")),
      wrappedMaterial:
        material === "view"
          ? r.bytesView("wrappedMaterial", MAX_WRAPPED_MATERIAL_BYTES)
          : r.bytes("wrappedMaterial", MAX_WRAPPED_MATERIAL_BYTES),
    },
    name,
    true,
  );
}

function validateCreateKeyCommand(c: Record<string, unknown>): CreateKeyCommand {
  const shapeInput = (c.shape ?? {}) as Record<string, unknown>;
  const shape = validateShape(
    shapeInput.kty,
    shapeInput.kty === "EC" ? undefined : shapeInput.size,
    shapeInput.kty === "EC" ? shapeInput.crv : undefined,
  );
  const a = (c.attributes ?? {}) as Record<string, unknown>;
  if (typeof a.enabled !== "boolean") bad("attributes.enabled", "attributes.enabled must be true or false");
  const notBeforeMs = a.notBeforeMs === null ? null : requireTimeMs(a.notBeforeMs, "attributes.notBeforeMs");
  const expiresMs = a.expiresMs === null ? null : requireTimeMs(a.expiresMs, "attributes.expiresMs");
  // The proposer validated against its clock; the log only needs a consistent window.
  requireTimeWindow(notBeforeMs, expiresMs, -1);
  const publicJwk =
    c.publicJwk === null || c.publicJwk === undefined ? null : validatePublicJwk(c.publicJwk, "publicJwk");
  if (shape.kty === "oct" && publicJwk !== null) bad("publicJwk", "an oct (AES) key has no public key");
  if (shape.kty !== "oct" && publicJwk?.kty !== undefined && publicJwk.kty !== shape.kty) {
    bad("publicJwk", `publicJwk.kty ${publicJwk.kty} does not match key type ${shape.kty}`);
  }
  return Object.freeze({
    kind: "createKey",
    requestId: requireIdentifier(c.requestId, "requestId"),
    name: requireKeyName(c.name),
    shape: Object.freeze(shape),
    ops: Object.freeze(validateOps(shape.kty, c.ops)),
    attributes: Object.freeze({
      enabled: a.enabled,
      notBeforeMs,
      expiresMs,
      tags: validateTags(a.tags ?? {}, "attributes.tags"),
    }),
    wrappedMaterial: requireBytes(c.wrappedMaterial, "wrappedMaterial", MAX_WRAPPED_MATERIAL_BYTES),
    publicJwk,
    at: requireTimeMs(c.at, "at"),
  });
}

export function encodeCommand(command: PoolCommand): Uint8Array {
  const c = validateCommand(command);
  const w = new ByteWriter().u8(KINDS.indexOf(c.kind) + 1);
  switch (c.kind) {
    case "genesis":
      writeGenesisFields(w, c);
      break;
    case "createKey":
      w.string(c.requestId).string(c.name);
      writeShape(w, c.shape);
      w.u8(opsMask(c.ops));
      writeAttributes(w, c.attributes);
      w.bytes(c.wrappedMaterial).optional(c.publicJwk, writeJwk).u64(c.at);
      break;
    case "updateKeyAttributes":
      w.string(c.requestId)
        .string(c.name)
        .optional(c.version, (w, v) => w.u64(v));
      writeChanges(w, c.changes);
      w.u64(c.at);
      break;
    case "deleteKey":
      w.string(c.requestId).string(c.name).u64(c.at);
      break;
    case "memberOwnershipSynced":
      w.string(c.memberId).string(c.partitionCertFingerprint).string(c.dekFingerprint).u64(c.at);
      break;
    case "registerMember":
      writeRegisterMemberFields(w, c);
      break;
    case "activateSecurityDomain":
      writeActivateFields(w, c);
      break;
    case "restoreBackup":
      writeRestoreFields(w, c);
      break;
    case "recordBackupJob":
      w.string(c.requestId);
      writeBackupJob(w, c.job);
      w.u64(c.at);
      break;
    case "access":
      w.string(c.requestId).string(JSON.stringify(c.op)).u64(c.at);
      break;
    case "rotateKey":
      w.string(c.requestId).string(c.name).u64(c.basedOnVersion);
      w.bytes(c.wrappedMaterial).optional(c.publicJwk, writeJwk).u64(c.at);
      break;
    case "recoverKey":
    case "purgeKey":
      w.string(c.requestId).string(c.name).u64(c.at);
      break;
    case "setSetting":
      w.string(c.requestId).string(c.setting).string(c.value).u64(c.at);
      break;
    case "setRotationPolicy":
      w.string(c.requestId).string(c.name);
      writeRotationPolicy(w, c.policy);
      w.u64(c.at);
      break;
    case "restoreKey":
      w.string(c.requestId).string(c.name).list(c.versions, writeVersion).u64(c.at);
      break;
  }
  return frame(COMMAND_FORMAT, w.finish());
}

/** Decodes and validates an entry; anything but a valid command is an IntegrityError. */
export function decodeCommand(data: Uint8Array): PoolCommand {
  const r = unframe(COMMAND_FORMAT, data);
  try {
    const command = validateCommand(readCommandFields(r));
    r.end();
    return command;
  } catch (e) {
    if (isHsmPoolError(e, "BadParameter")) {
      fail("IntegrityError", `${COMMAND_FORMAT.what} holds an invalid command: ${e.message}`, {
        cause: e.code,
      });
    }
    throw e;
  }
}

function readCommandFields(r: ByteReader): Record<string, unknown> {
  const kind = KINDS[r.u8("kind") - 1];
  switch (kind) {
    case "genesis":
      return readGenesisFields(r, "");
    case "createKey":
      return {
        kind,
        requestId: r.string("requestId", MAX_STRING_BYTES),
        name: r.string("name", MAX_STRING_BYTES),
        shape: readShape(r),
        ops: readOpsMask(r),
        attributes: readAttributes(r),
        wrappedMaterial: r.bytes("wrappedMaterial", MAX_WRAPPED_MATERIAL_BYTES),
        publicJwk: r.optional("publicJwk", (r) => readJwk(r, "publicJwk")),
        at: r.u64("at"),
      };
    case "updateKeyAttributes":
      return {
        kind,
        requestId: r.string("requestId", MAX_STRING_BYTES),
        name: r.string("name", MAX_STRING_BYTES),
        version: r.optional("version", (r) => r.u64("version")),
        changes: readChanges(r),
        at: r.u64("at"),
      };
    case "deleteKey":
      return {
        kind,
        requestId: r.string("requestId", MAX_STRING_BYTES),
        name: r.string("name", MAX_STRING_BYTES),
        at: r.u64("at"),
      };
    case "memberOwnershipSynced":
      return {
        kind,
        memberId: r.string("memberId", MAX_STRING_BYTES),
        partitionCertFingerprint: r.string("partitionCertFingerprint", MAX_STRING_BYTES),
        dekFingerprint: r.string("dekFingerprint", MAX_STRING_BYTES),
        at: r.u64("at"),
      };
    case "registerMember":
      return readRegisterMemberFields(r);
    case "activateSecurityDomain":
      return readActivateFields(r);
    case "restoreBackup":
      return readRestoreFields(r);
    case "recordBackupJob":
      return {
        kind,
        requestId: r.string("requestId", MAX_STRING_BYTES),
        job: readBackupJob(r),
        at: r.u64("at"),
      };
    case "access": {
      const requestId = r.string("requestId", MAX_STRING_BYTES);
      const text = r.string("op", MAX_ACCESS_OP_BYTES);
      let op: unknown;
      try {
        op = JSON.parse(text);
      } catch {
        return r.corrupt("access op is not JSON");
      }
      return { kind, requestId, op, at: r.u64("at") };
    }
    case "rotateKey":
      return {
        kind,
        requestId: r.string("requestId", MAX_STRING_BYTES),
        name: r.string("name", MAX_STRING_BYTES),
        basedOnVersion: r.u64("basedOnVersion"),
        wrappedMaterial: r.bytes("wrappedMaterial", MAX_WRAPPED_MATERIAL_BYTES),
        publicJwk: r.optional("publicJwk", (r) => readJwk(r, "publicJwk")),
        at: r.u64("at"),
      };
    case "recoverKey":
    case "purgeKey":
      return {
        kind,
        requestId: r.string("requestId", MAX_STRING_BYTES),
        name: r.string("name", MAX_STRING_BYTES),
        at: r.u64("at"),
      };
    case "setSetting":
      return {
        kind,
        requestId: r.string("requestId", MAX_STRING_BYTES),
        setting: r.string("setting", MAX_STRING_BYTES),
        value: r.string("value", MAX_STRING_BYTES),
        at: r.u64("at"),
      };
    case "setRotationPolicy":
      return {
        kind,
        requestId: r.string("requestId", MAX_STRING_BYTES),
        name: r.string("name", MAX_STRING_BYTES),
        policy: readRotationPolicy(r),
        at: r.u64("at"),
      };
    case "restoreKey": {
      const requestId = r.string("requestId", MAX_STRING_BYTES);
      const name = r.string("name", MAX_STRING_BYTES);
      const versions = r.list("versions", MAX_RESTORED_VERSIONS, (r) => readVersion(r, requireKeyName(name)));
      return { kind, requestId, name, versions, at: r.u64("at") };
    }
    default:
      return r.corrupt("unknown command kind");
  }
}

// --- field encoders shared with the snapshot codec ---

/** Each policy field as an optional string, in POLICY_FIELDS order. */
export function writeRotationPolicy(w: ByteWriter, p: RotationPolicy): void {
  for (const field of POLICY_FIELDS) w.optional(p[field], (w, v) => w.string(v));
}

/** Reads what writeRotationPolicy wrote (unvalidated). */
export function readRotationPolicy(r: ByteReader): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of POLICY_FIELDS) out[field] = r.optional(field, (r) => r.string(field, 64));
  return out;
}

/** RegisterMember fields in command order (without the kind); shared with the snapshot codec. */
export function writeRegisterMemberFields(w: ByteWriter, c: Omit<RegisterMemberCommand, "kind">): void {
  w.string(c.memberId).string(c.peerAddress).string(c.dataAddress).u32(c.svn);
  w.list(c.replaces, (w, id) => w.string(id)).u64(c.at);
}

/** Reads what writeRegisterMemberFields wrote (unvalidated: pass it to validateCommand). */
export function readRegisterMemberFields(r: ByteReader): Record<string, unknown> {
  return {
    kind: "registerMember",
    memberId: r.string("memberId", MAX_STRING_BYTES),
    peerAddress: r.string("peerAddress", MAX_STRING_BYTES),
    dataAddress: r.string("dataAddress", MAX_STRING_BYTES),
    svn: r.u32("svn"),
    replaces: r.list("replaces", MAX_REPLACES, (r) => r.string("replaces[]", MAX_STRING_BYTES)),
    at: r.u64("at"),
  };
}

const KTY_CODES = ["RSA", "EC", "oct"] as const;
const CRV_CODES = ["P-256", "P-256K", "P-384", "P-521"] as const;

/** Genesis fields in command order; shared by log entries, snapshots and ownership checkpoints. */
export function writeGenesisFields(w: ByteWriter, g: GenesisCommand): void {
  w.string(g.poolId);
  writeCertificate(w, g.ownerRootCert);
  w.string(g.dekFingerprint).string(g.poolKeyFingerprint).string(g.proposer).u64(g.at);
}

/** Reads what writeGenesisFields wrote (unvalidated: pass it to validateCommand). */
export function readGenesisFields(r: ByteReader, fieldPrefix: string): Record<string, unknown> {
  return {
    kind: "genesis",
    poolId: r.string(`${fieldPrefix}poolId`, MAX_STRING_BYTES),
    ownerRootCert: readCertificate(r, `${fieldPrefix}ownerRootCert`),
    dekFingerprint: r.string(`${fieldPrefix}dekFingerprint`, MAX_STRING_BYTES),
    poolKeyFingerprint: r.string(`${fieldPrefix}poolKeyFingerprint`, MAX_STRING_BYTES),
    proposer: r.string(`${fieldPrefix}proposer`, MAX_STRING_BYTES),
    at: r.u64(`${fieldPrefix}at`),
  };
}

export function writeShape(w: ByteWriter, shape: KeyShape): void {
  w.u8(KTY_CODES.indexOf(shape.kty) + 1);
  if (shape.kty === "EC") w.u8(CRV_CODES.indexOf(shape.crv) + 1);
  else w.u32(shape.size);
}

export function readShape(r: ByteReader): { kty: unknown; size?: unknown; crv?: unknown } {
  const kty = KTY_CODES[r.u8("kty") - 1];
  if (!kty) r.corrupt("unknown key type code");
  if (kty === "EC") {
    const crv = CRV_CODES[r.u8("crv") - 1];
    if (!crv) r.corrupt("unknown curve code");
    return { kty, crv };
  }
  return { kty, size: r.u32("size") };
}

export function opsMask(ops: readonly KeyOp[]): number {
  return KEY_OPS.reduce((mask, op, bit) => (ops.includes(op) ? mask | (1 << bit) : mask), 0);
}

export function readOpsMask(r: ByteReader): KeyOp[] {
  const mask = r.u8("ops");
  if (mask >= 1 << KEY_OPS.length) r.corrupt("ops has unknown operation bits");
  return KEY_OPS.filter((_, bit) => (mask & (1 << bit)) !== 0);
}

export function writeAttributes(w: ByteWriter, a: KeyAttributes): void {
  w.bool(a.enabled)
    .optional(a.notBeforeMs, (w, v) => w.u64(v))
    .optional(a.expiresMs, (w, v) => w.u64(v));
  writeTags(w, a.tags);
}

export function readAttributes(r: ByteReader): Record<string, unknown> {
  return {
    enabled: r.bool("enabled"),
    notBeforeMs: r.optional("notBeforeMs", (r) => r.u64("notBeforeMs")),
    expiresMs: r.optional("expiresMs", (r) => r.u64("expiresMs")),
    tags: readTags(r),
  };
}

function writeTags(w: ByteWriter, tags: Readonly<Record<string, string>>): void {
  // Sorted explicitly: JS objects enumerate integer-like names ("0") first, whatever the insertion order.
  const names = Object.keys(tags).sort(compareStrings);
  w.list(names, (w, name) => w.string(name).string(tags[name] ?? ""));
}

function readTags(r: ByteReader): Record<string, string> {
  const out: Record<string, string> = {};
  let previous: string | null = null;
  for (const [name, value] of r.list("tags", MAX_TAGS, (r): [string, string] => [
    r.string("tag name", 2048),
    r.string("tag value", 1024),
  ])) {
    if (previous !== null && compareStrings(previous, name) >= 0)
      r.corrupt("tags are not in canonical order");
    previous = name;
    out[name] = value;
  }
  return out;
}

/** Change set: presence byte per field; for the times 0 keep, 1 clear, 2 set. */
function writeChanges(w: ByteWriter, c: KeyAttributeChanges): void {
  w.optional(c.ops, (w, ops) => w.u8(opsMask(ops)));
  w.optional(c.enabled, (w, v) => w.bool(v));
  writeTimeChange(w, c.notBeforeMs);
  writeTimeChange(w, c.expiresMs);
  w.optional(c.tags, writeTags);
}

function writeTimeChange(w: ByteWriter, value: number | null | undefined): void {
  if (value === undefined) w.u8(0);
  else if (value === null) w.u8(1);
  else w.u8(2).u64(value);
}

function readChanges(r: ByteReader): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const ops = r.optional("ops", readOpsMask);
  if (ops !== null) out.ops = ops;
  const enabled = r.optional("enabled", (r) => r.bool("enabled"));
  if (enabled !== null) out.enabled = enabled;
  for (const field of ["notBeforeMs", "expiresMs"] as const) {
    const tag = r.u8(`${field} change`);
    if (tag === 1) out[field] = null;
    else if (tag === 2) out[field] = r.u64(field);
    else if (tag !== 0) r.corrupt(`${field} change has an unknown tag`);
  }
  const tags = r.optional("tags", readTags);
  if (tags !== null) out.tags = tags;
  return out;
}
