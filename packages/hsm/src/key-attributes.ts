/**
 * Key attributes: what a handle tells the caller about a key (never its material),
 * the generateKey spec and its validation, and the compact encodings the blob and
 * file formats use for them.
 */
import { fail } from "@hsmpool/errors";
import {
  AES_SIZES,
  type AesSizeBits,
  CURVES,
  type Curve,
  isOneOf,
  KEY_OPS,
  KEY_TYPES,
  type KeyOp,
  OPS_BY_TYPE,
  RSA_SIZES,
  type RsaSizeBits,
} from "./algorithms.js";

export const MAX_LABEL_BYTES = 1024;

/** Attributes shared by every key; `label` is opaque caller bytes bound into exports. */
interface CommonAttributes {
  /** 32 lowercase hex chars; stays the same when the key is exported and imported elsewhere. */
  readonly id: string;
  readonly ops: readonly KeyOp[];
  readonly label?: Uint8Array;
}

/** The public face of a key in a partition: attributes only, never private or secret bytes. */
export type KeyHandle =
  | (CommonAttributes & { readonly kty: "RSA"; readonly size: RsaSizeBits })
  | (CommonAttributes & { readonly kty: "EC"; readonly crv: Curve })
  | (CommonAttributes & { readonly kty: "oct"; readonly size: AesSizeBits });

/** A handle or just its id (e.g. an id the caller persisted before a restart). */
export type KeyRef = KeyHandle | string;

export type KeySpec = {
  kty: "RSA" | "EC" | "oct";
  /** RSA: 2048 (default), 3072, 4096. oct: 128, 192, 256 (default). Not for EC. */
  size?: number;
  /** EC only: P-256 (default), P-256K, P-384, P-521. */
  crv?: string;
  ops: readonly string[];
  label?: Uint8Array;
};

export type KeyShape =
  | { kty: "RSA"; size: RsaSizeBits }
  | { kty: "EC"; crv: Curve }
  | { kty: "oct"; size: AesSizeBits };

/** Checks a generateKey request; returns the normalised shape, ops and label or throws BadParameter. */
export function validateKeySpec(spec: unknown): { shape: KeyShape; ops: KeyOp[]; label?: Uint8Array } {
  if (typeof spec !== "object" || spec === null) fail("BadParameter", "key spec must be an object");
  const s = spec as Partial<KeySpec>;
  if (!isOneOf(KEY_TYPES, s.kty)) {
    fail(
      "BadParameter",
      `unknown key type ${JSON.stringify(s.kty)}; expected one of ${KEY_TYPES.join(", ")}`,
    );
  }
  const shape = validateShape(s);
  const ops = validateOps(s.kty, s.ops);
  const label = validateLabel(s.label);
  return label ? { shape, ops, label } : { shape, ops };
}

function validateShape(s: Partial<KeySpec>): KeyShape {
  switch (s.kty) {
    case "RSA": {
      if (s.crv !== undefined) fail("BadParameter", "RSA keys take a size, not a curve (crv)");
      const size = s.size ?? 2048;
      if (!isOneOf(RSA_SIZES, size)) {
        fail(
          "BadParameter",
          `unsupported RSA key size ${size}; expected one of ${RSA_SIZES.join(", ")} bits`,
        );
      }
      return { kty: "RSA", size };
    }
    case "EC": {
      if (s.size !== undefined) fail("BadParameter", "EC keys take a curve (crv), not a size");
      const crv = s.crv ?? "P-256";
      if (!isOneOf(CURVES, crv)) {
        fail(
          "BadParameter",
          `unsupported curve ${JSON.stringify(crv)}; expected one of ${CURVES.join(", ")}`,
        );
      }
      return { kty: "EC", crv };
    }
    default: {
      if (s.crv !== undefined) fail("BadParameter", "oct (AES) keys take a size, not a curve (crv)");
      const size = s.size ?? 256;
      if (!isOneOf(AES_SIZES, size)) {
        fail(
          "BadParameter",
          `unsupported AES key size ${size}; expected one of ${AES_SIZES.join(", ")} bits`,
        );
      }
      return { kty: "oct", size };
    }
  }
}

function validateOps(kty: "RSA" | "EC" | "oct", ops: unknown): KeyOp[] {
  if (!Array.isArray(ops) || ops.length === 0) {
    fail("BadParameter", `key ops must be a non-empty list, e.g. [${OPS_BY_TYPE[kty].join(", ")}]`);
  }
  const allowed = OPS_BY_TYPE[kty];
  for (const op of ops) {
    if (!isOneOf(KEY_OPS, op)) {
      fail(
        "BadParameter",
        `unknown key operation ${JSON.stringify(op)}; expected one of ${KEY_OPS.join(", ")}`,
      );
    }
    if (!allowed.includes(op)) {
      fail("BadParameter", `${kty} keys cannot ${op}; they allow ${allowed.join(", ")}`);
    }
  }
  if (new Set(ops).size !== ops.length) fail("BadParameter", "key ops must not repeat an operation");
  // Canonical order so equal op sets compare and encode equally.
  return KEY_OPS.filter((op) => ops.includes(op));
}

function validateLabel(label: unknown): Uint8Array | undefined {
  if (label === undefined) return undefined;
  if (!(label instanceof Uint8Array)) fail("BadParameter", "key label must be a Uint8Array");
  if (label.length > MAX_LABEL_BYTES) {
    fail("BadParameter", `key label is ${label.length} bytes; the limit is ${MAX_LABEL_BYTES}`);
  }
  return Uint8Array.from(label);
}

/** A fresh frozen handle (label copied, so a caller cannot alter the stored attributes). */
export function makeHandle(
  id: string,
  shape: KeyShape,
  ops: readonly KeyOp[],
  label?: Uint8Array,
): KeyHandle {
  const handle = {
    id,
    ...shape,
    ops: Object.freeze([...ops]),
    ...(label ? { label: Uint8Array.from(label) } : {}),
  };
  return Object.freeze(handle) as KeyHandle;
}

export function copyHandle(h: KeyHandle): KeyHandle {
  return makeHandle(h.id, shapeOf(h), h.ops, h.label);
}

export function shapeOf(h: KeyHandle): KeyShape {
  return h.kty === "EC"
    ? { kty: "EC", crv: h.crv }
    : h.kty === "RSA"
      ? { kty: "RSA", size: h.size }
      : { kty: "oct", size: h.size };
}

export function sameAttributes(a: KeyHandle, b: KeyHandle): boolean {
  return (
    a.id === b.id &&
    a.kty === b.kty &&
    shapeKey(shapeOf(a)) === shapeKey(shapeOf(b)) &&
    opsToMask(a.ops) === opsToMask(b.ops) &&
    Buffer.from(a.label ?? []).equals(Buffer.from(b.label ?? []))
  );
}

function shapeKey(s: KeyShape): string {
  return s.kty === "EC" ? `EC:${s.crv}` : `${s.kty}:${s.size}`;
}

export function describeKey(h: KeyHandle): string {
  return h.kty === "EC" ? `EC ${h.crv} key ${h.id}` : `${h.kty} ${h.size}-bit key ${h.id}`;
}

const KEY_ID = /^[0-9a-f]{32}$/;

export function isKeyId(id: unknown): id is string {
  return typeof id === "string" && KEY_ID.test(id);
}

export function keyIdOf(ref: unknown): string {
  const id =
    typeof ref === "string" ? ref : typeof ref === "object" && ref !== null ? (ref as KeyHandle).id : ref;
  if (!isKeyId(id)) fail("BadParameter", `not a key handle or key id: ${JSON.stringify(id)?.slice(0, 80)}`);
  return id;
}

export function opsToMask(ops: readonly KeyOp[]): number {
  return KEY_OPS.reduce((mask, op, bit) => (ops.includes(op) ? mask | (1 << bit) : mask), 0);
}

export function maskToOps(mask: number): KeyOp[] {
  return KEY_OPS.filter((_, bit) => (mask & (1 << bit)) !== 0);
}
