/**
 * Validation of key-management requests (Key Vault semantics): key names, shapes,
 * operations and attributes. Pure functions that either return the normalised value
 * or throw BadParameter naming the field; nothing is changed by a rejected request.
 */
import {
  AES_SIZES,
  CURVES,
  DEFAULT_OPS_BY_TYPE,
  isOneOf,
  KEY_OPS,
  KEY_TYPES,
  type KeyOp,
  type KeyShape,
  type KeyType,
  OPS_BY_TYPE,
  RSA_SIZES,
} from "./algorithms.js";
import { compareStrings } from "./jwk.js";
import { bad, requireBoolean, requireTimeMs } from "./validate.js";

/** Key Vault's key name rule. */
export const KEY_NAME = /^[0-9a-zA-Z-]{1,127}$/;
export const MAX_TAGS = 15;
export const MAX_TAG_NAME_CHARS = 512;
export const MAX_TAG_VALUE_CHARS = 256;

/** Attributes of one key version. Times are wall-clock ms; null = no limit. */
export interface KeyAttributes {
  readonly enabled: boolean;
  readonly notBeforeMs: number | null;
  readonly expiresMs: number | null;
  readonly tags: Readonly<Record<string, string>>;
}

/** What a client asks for when creating a key (or a new version of one). */
export interface CreateKeyRequest {
  name: string;
  kty: string;
  /** RSA: 2048 (default), 3072, 4096. oct: 128, 192, 256 (default). Not for EC. */
  size?: number;
  /** EC: P-256 (default), P-256K, P-384, P-521. */
  crv?: string;
  /** Allowed operations; default: every operation the key type supports. */
  ops?: readonly string[];
  enabled?: boolean;
  notBeforeMs?: number | null;
  expiresMs?: number | null;
  tags?: Record<string, string>;
}

export interface ValidCreateKey {
  readonly name: string;
  readonly shape: KeyShape;
  readonly ops: readonly KeyOp[];
  readonly attributes: KeyAttributes;
}

/** Changes to one key version's attributes; an absent field stays as it is, null clears a time limit. */
export interface KeyAttributeChanges {
  readonly ops?: readonly KeyOp[];
  readonly enabled?: boolean;
  readonly notBeforeMs?: number | null;
  readonly expiresMs?: number | null;
  readonly tags?: Readonly<Record<string, string>>;
}

export interface UpdateKeyRequest {
  name: string;
  /** The version to change; default the latest. */
  version?: number;
  ops?: readonly string[];
  enabled?: boolean;
  notBeforeMs?: number | null;
  expiresMs?: number | null;
  tags?: Record<string, string>;
}

export function requireKeyName(name: unknown, field = "name"): string {
  if (typeof name !== "string" || !KEY_NAME.test(name)) {
    bad(
      field,
      `key ${field} must be 1..127 characters of letters, digits and '-'; got ${JSON.stringify(name)?.slice(0, 80)}`,
    );
  }
  return name;
}

export function requireVersion(version: unknown, field = "version"): number {
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 1) {
    bad(field, `key ${field} must be a positive integer`);
  }
  return version;
}

export function validateShape(kty: unknown, size: unknown, crv: unknown): KeyShape {
  if (!isOneOf(KEY_TYPES, kty)) {
    bad("kty", `unknown key type ${JSON.stringify(kty)}; expected one of ${KEY_TYPES.join(", ")}`);
  }
  switch (kty) {
    case "RSA": {
      if (crv !== undefined) bad("crv", "RSA keys take a size, not a curve (crv)");
      const bits = size ?? 2048;
      if (!isOneOf(RSA_SIZES, bits)) {
        bad("size", `unsupported RSA key size ${bits}; expected one of ${RSA_SIZES.join(", ")} bits`);
      }
      return { kty, size: bits };
    }
    case "EC": {
      if (size !== undefined) bad("size", "EC keys take a curve (crv), not a size");
      const curve = crv ?? "P-256";
      if (!isOneOf(CURVES, curve)) {
        bad("crv", `unsupported curve ${JSON.stringify(curve)}; expected one of ${CURVES.join(", ")}`);
      }
      return { kty, crv: curve };
    }
    default: {
      if (crv !== undefined) bad("crv", "oct (AES) keys take a size, not a curve (crv)");
      const bits = size ?? 256;
      if (!isOneOf(AES_SIZES, bits)) {
        bad("size", `unsupported AES key size ${bits}; expected one of ${AES_SIZES.join(", ")} bits`);
      }
      return { kty: "oct", size: bits };
    }
  }
}

/**
 * Validates an ops list for a key type (null: type not known yet, any known op);
 * returns it in canonical (KEY_OPS) order.
 */
export function validateOps(kty: KeyType | null, ops: unknown, field = "ops"): KeyOp[] {
  const allowed = kty === null ? KEY_OPS : OPS_BY_TYPE[kty];
  if (!Array.isArray(ops) || ops.length === 0) {
    bad(field, `key ${field} must be a non-empty list, e.g. [${allowed.join(", ")}]`);
  }
  for (const op of ops) {
    if (!isOneOf(KEY_OPS, op)) {
      bad(field, `unknown key operation ${JSON.stringify(op)}; expected one of ${KEY_OPS.join(", ")}`);
    }
    if (!allowed.includes(op)) {
      bad(field, `a ${kty} key cannot ${op}; ${kty} keys allow ${allowed.join(", ")}`);
    }
  }
  if (new Set(ops).size !== ops.length) bad(field, `key ${field} must not repeat an operation`);
  if (ops.includes("import") && ops.length > 1) {
    bad(field, "a key-exchange key (ops import) allows import only, as in Key Vault's BYOK");
  }
  return KEY_OPS.filter((op) => ops.includes(op));
}

export function validateTags(tags: unknown, field = "tags"): Readonly<Record<string, string>> {
  if (typeof tags !== "object" || tags === null || Array.isArray(tags)) {
    bad(field, `${field} must be an object of string names to string values`);
  }
  const entries = Object.entries(tags as Record<string, unknown>);
  if (entries.length > MAX_TAGS)
    bad(field, `at most ${MAX_TAGS} ${field} are allowed; got ${entries.length}`);
  const out: Record<string, string> = {};
  for (const [name, value] of entries.sort(([a], [b]) => compareStrings(a, b))) {
    if (name.length === 0 || name.length > MAX_TAG_NAME_CHARS) {
      bad(field, `tag names must be 1..${MAX_TAG_NAME_CHARS} characters`);
    }
    if (typeof value !== "string" || value.length > MAX_TAG_VALUE_CHARS) {
      bad(
        field,
        `tag ${JSON.stringify(name.slice(0, 40))} must have a string value of at most ${MAX_TAG_VALUE_CHARS} characters`,
      );
    }
    out[name] = value;
  }
  return Object.freeze(out);
}

function optionalTime(value: unknown, field: string): number | null {
  return value === undefined || value === null ? null : requireTimeMs(value, field);
}

/** Checks the time window of a key; `nowMs` only rejects an expiry already in the past. */
export function requireTimeWindow(notBeforeMs: number | null, expiresMs: number | null, nowMs: number): void {
  if (notBeforeMs !== null && expiresMs !== null && expiresMs <= notBeforeMs) {
    bad("expiresMs", "expiresMs must be later than notBeforeMs");
  }
  if (expiresMs !== null && expiresMs <= nowMs) {
    bad("expiresMs", `expiresMs (${new Date(expiresMs).toISOString()}) is already in the past`);
  }
}

/** Validates a create request at wall time `nowMs`; returns the normalised key definition. */
export function validateCreateKeyRequest(request: unknown, nowMs: number): ValidCreateKey {
  if (typeof request !== "object" || request === null) bad("request", "create-key request must be an object");
  const r = request as Partial<Record<keyof CreateKeyRequest, unknown>>;
  const name = requireKeyName(r.name);
  const shape = validateShape(r.kty, r.size, r.crv);
  const ops = r.ops === undefined ? [...DEFAULT_OPS_BY_TYPE[shape.kty]] : validateOps(shape.kty, r.ops);
  const attributes = validateAttributes(r, nowMs);
  return { name, shape, ops, attributes };
}

function validateAttributes(
  r: Partial<Record<keyof CreateKeyRequest, unknown>>,
  nowMs: number,
): KeyAttributes {
  const enabled = r.enabled === undefined ? true : requireBoolean(r.enabled, "enabled");
  const notBeforeMs = optionalTime(r.notBeforeMs, "notBeforeMs");
  const expiresMs = optionalTime(r.expiresMs, "expiresMs");
  requireTimeWindow(notBeforeMs, expiresMs, nowMs);
  const tags = r.tags === undefined ? Object.freeze({}) : validateTags(r.tags);
  return Object.freeze({ enabled, notBeforeMs, expiresMs, tags });
}

/** Validates the shape of an update (which fields, their types); the key's kty is checked on apply. */
export function validateAttributeChanges(
  r: Partial<Record<string, unknown>>,
  kty: KeyType | null,
): KeyAttributeChanges {
  const changes: {
    -readonly [K in keyof KeyAttributeChanges]: KeyAttributeChanges[K];
  } = {};
  if (r.ops !== undefined) {
    changes.ops = validateOps(kty, r.ops);
  }
  if (r.enabled !== undefined) changes.enabled = requireBoolean(r.enabled, "enabled");
  if (r.notBeforeMs !== undefined) changes.notBeforeMs = optionalTime(r.notBeforeMs, "notBeforeMs");
  if (r.expiresMs !== undefined) changes.expiresMs = optionalTime(r.expiresMs, "expiresMs");
  if (r.tags !== undefined) changes.tags = validateTags(r.tags);
  if (Object.keys(changes).length === 0) {
    bad("request", "an update must change at least one of ops, enabled, notBeforeMs, expiresMs, tags");
  }
  return Object.freeze(changes);
}

/** The attributes of a version after `changes`. */
export function applyChanges(
  current: { ops: readonly KeyOp[]; attributes: KeyAttributes },
  changes: KeyAttributeChanges,
): { ops: readonly KeyOp[]; attributes: KeyAttributes } {
  const a = current.attributes;
  return {
    ops: changes.ops ?? current.ops,
    attributes: Object.freeze({
      enabled: changes.enabled ?? a.enabled,
      notBeforeMs: changes.notBeforeMs !== undefined ? changes.notBeforeMs : a.notBeforeMs,
      expiresMs: changes.expiresMs !== undefined ? changes.expiresMs : a.expiresMs,
      tags: changes.tags ?? a.tags,
    }),
  };
}
