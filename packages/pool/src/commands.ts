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
import { fail, isHsmPoolError } from "@hsmpool/errors";
import { type AccessOp, validateAccessOp } from "./access/state.js";
import { KEY_OPS, type KeyOp, type KeyShape } from "./algorithms.js";
import { type ByteReader, ByteWriter } from "./bytes.js";
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

export type PoolCommand =
  | AccessCommand
  | GenesisCommand
  | CreateKeyCommand
  | UpdateKeyAttributesCommand
  | DeleteKeyCommand
  | MemberOwnershipSyncedCommand
  | RegisterMemberCommand
  | ActivateSecurityDomainCommand
  | RestoreBackupCommand;

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
];
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
    case "access":
      return Object.freeze({
        kind: "access",
        requestId: requireIdentifier(c.requestId, "requestId"),
        op: validateAccessOp(c.op),
        at: requireTimeMs(c.at, "at"),
      });
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
      w.bytes(c.wrappedMaterial).optional(c.publicJwk, writeJwk).uint(c.at);
      break;
    case "updateKeyAttributes":
      w.string(c.requestId)
        .string(c.name)
        .optional(c.version, (w, v) => w.uint(v));
      writeChanges(w, c.changes);
      w.uint(c.at);
      break;
    case "deleteKey":
      w.string(c.requestId).string(c.name).uint(c.at);
      break;
    case "memberOwnershipSynced":
      w.string(c.memberId).string(c.partitionCertFingerprint).string(c.dekFingerprint).uint(c.at);
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
    case "access":
      w.string(c.requestId).string(JSON.stringify(c.op)).uint(c.at);
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
        at: r.uint("at"),
      };
    case "updateKeyAttributes":
      return {
        kind,
        requestId: r.string("requestId", MAX_STRING_BYTES),
        name: r.string("name", MAX_STRING_BYTES),
        version: r.optional("version", (r) => r.uint("version")),
        changes: readChanges(r),
        at: r.uint("at"),
      };
    case "deleteKey":
      return {
        kind,
        requestId: r.string("requestId", MAX_STRING_BYTES),
        name: r.string("name", MAX_STRING_BYTES),
        at: r.uint("at"),
      };
    case "memberOwnershipSynced":
      return {
        kind,
        memberId: r.string("memberId", MAX_STRING_BYTES),
        partitionCertFingerprint: r.string("partitionCertFingerprint", MAX_STRING_BYTES),
        dekFingerprint: r.string("dekFingerprint", MAX_STRING_BYTES),
        at: r.uint("at"),
      };
    case "registerMember":
      return readRegisterMemberFields(r);
    case "activateSecurityDomain":
      return readActivateFields(r);
    case "restoreBackup":
      return readRestoreFields(r);
    case "access": {
      const requestId = r.string("requestId", MAX_STRING_BYTES);
      const text = r.string("op", MAX_ACCESS_OP_BYTES);
      let op: unknown;
      try {
        op = JSON.parse(text);
      } catch {
        return r.corrupt("access op is not JSON");
      }
      return { kind, requestId, op, at: r.uint("at") };
    }
    default:
      return r.corrupt("unknown command kind");
  }
}

// --- field encoders shared with the snapshot codec ---

/** RegisterMember fields in command order (without the kind); shared with the snapshot codec. */
export function writeRegisterMemberFields(w: ByteWriter, c: Omit<RegisterMemberCommand, "kind">): void {
  w.string(c.memberId).string(c.peerAddress).string(c.dataAddress).u32(c.svn);
  w.list(c.replaces, (w, id) => w.string(id)).uint(c.at);
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
    at: r.uint("at"),
  };
}

const KTY_CODES = ["RSA", "EC", "oct"] as const;
const CRV_CODES = ["P-256", "P-256K", "P-384", "P-521"] as const;

/** Genesis fields in command order; shared by log entries, snapshots and ownership checkpoints. */
export function writeGenesisFields(w: ByteWriter, g: GenesisCommand): void {
  w.string(g.poolId);
  writeCertificate(w, g.ownerRootCert);
  w.string(g.dekFingerprint).string(g.poolKeyFingerprint).string(g.proposer).uint(g.at);
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
    at: r.uint(`${fieldPrefix}at`),
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
    .optional(a.notBeforeMs, (w, v) => w.uint(v))
    .optional(a.expiresMs, (w, v) => w.uint(v));
  writeTags(w, a.tags);
}

export function readAttributes(r: ByteReader): Record<string, unknown> {
  return {
    enabled: r.bool("enabled"),
    notBeforeMs: r.optional("notBeforeMs", (r) => r.uint("notBeforeMs")),
    expiresMs: r.optional("expiresMs", (r) => r.uint("expiresMs")),
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
  else w.u8(2).uint(value);
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
    else if (tag === 2) out[field] = r.uint(field);
    else if (tag !== 0) r.corrupt(`${field} change has an unknown tag`);
  }
  const tags = r.optional("tags", readTags);
  if (tags !== null) out.tags = tags;
  return out;
}
