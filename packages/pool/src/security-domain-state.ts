/**
 * The pool's security-domain state in the replicated log: activation (the SD was
 * downloaded, or uploaded into a recovering pool) and full/selective restore from an
 * SD-bound backup. The domain secret travels only sealed under the pool key (HSM
 * AES-256-GCM), so the log and snapshots never hold it in the clear.
 */

import type { ByteReader, ByteWriter } from "@hsmpool/codec";
import { fail } from "@hsmpool/errors";
import { requireKeyName } from "./key-request.js";
import type { KeyStoreState, KeyVersionRecord } from "./keystore-state.js";
import { requireBytes, requireIdentifier, requireTimeMs } from "./validate.js";

const MAX_STRING_BYTES = 1024;
/** A sealed 32-byte secret with the HSM's IV and tag fits easily. */
const MAX_SEALED_SECRET_BYTES = 1024;
/** A restored state rides in one log entry. */
export const MAX_RESTORE_STATE_BYTES = 64 * 1024 * 1024;

/** Activation: the SD exists; later operations may run. A second one is refused on apply. */
export interface ActivateSecurityDomainCommand {
  readonly kind: "activateSecurityDomain";
  readonly requestId: string;
  readonly sdId: string;
  readonly quorum: number;
  readonly shareCount: number;
  /** The domain secret, encrypted by the HSM under the pool key. */
  readonly sealedSecret: Uint8Array;
  /** "download" (a new pool) or "upload" (a recovered pool). */
  readonly origin: "download" | "upload";
  readonly at: number;
}

/** Replaces the key-store contents with a backup's (all of it, or one key's versions). */
export interface RestoreBackupCommand {
  readonly kind: "restoreBackup";
  readonly requestId: string;
  /** The backed-up state: snapshot bytes (HPS1), decrypted inside the TEE. */
  readonly state: Uint8Array;
  /** Selective restore of one key; null = full restore. */
  readonly keyName: string | null;
  readonly at: number;
}

export interface SecurityDomainRecord {
  readonly sdId: string;
  readonly quorum: number;
  readonly shareCount: number;
  readonly sealedSecret: Uint8Array;
  readonly origin: "download" | "upload";
  readonly activatedMs: number;
}

const ORIGINS = ["download", "upload"] as const;

export function validateActivate(c: Record<string, unknown>): ActivateSecurityDomainCommand {
  const shareCount = c.shareCount;
  const quorum = c.quorum;
  if (!Number.isInteger(shareCount) || (shareCount as number) < 3 || (shareCount as number) > 10)
    fail("BadParameter", "shareCount must be 3..10", { field: "shareCount" });
  if (!Number.isInteger(quorum) || (quorum as number) < 2 || (quorum as number) > (shareCount as number))
    fail("BadParameter", "quorum must be 2..shareCount", { field: "quorum" });
  if (!ORIGINS.includes(c.origin as "download"))
    fail("BadParameter", "origin must be download or upload", { field: "origin" });
  return Object.freeze({
    kind: "activateSecurityDomain",
    requestId: requireIdentifier(c.requestId, "requestId"),
    sdId: requireIdentifier(c.sdId, "sdId"),
    quorum: quorum as number,
    shareCount: shareCount as number,
    sealedSecret: requireBytes(c.sealedSecret, "sealedSecret", MAX_SEALED_SECRET_BYTES),
    origin: c.origin as "download" | "upload",
    at: requireTimeMs(c.at, "at"),
  });
}

export function validateRestore(c: Record<string, unknown>): RestoreBackupCommand {
  return Object.freeze({
    kind: "restoreBackup",
    requestId: requireIdentifier(c.requestId, "requestId"),
    state: requireBytes(c.state, "state", MAX_RESTORE_STATE_BYTES),
    keyName: c.keyName === null || c.keyName === undefined ? null : requireKeyName(c.keyName),
    at: requireTimeMs(c.at, "at"),
  });
}

export function writeActivateFields(w: ByteWriter, c: Omit<ActivateSecurityDomainCommand, "kind">): void {
  w.string(c.requestId).string(c.sdId).u8(c.quorum).u8(c.shareCount).bytes(c.sealedSecret);
  w.u8(ORIGINS.indexOf(c.origin) + 1).u64(c.at);
}

export function readActivateFields(r: ByteReader): Record<string, unknown> {
  return {
    kind: "activateSecurityDomain",
    requestId: r.string("requestId", MAX_STRING_BYTES),
    sdId: r.string("sdId", MAX_STRING_BYTES),
    quorum: r.u8("quorum"),
    shareCount: r.u8("shareCount"),
    sealedSecret: r.bytes("sealedSecret", MAX_SEALED_SECRET_BYTES),
    origin: ORIGINS[r.u8("origin") - 1],
    at: r.u64("at"),
  };
}

export function writeRestoreFields(w: ByteWriter, c: RestoreBackupCommand): void {
  w.string(c.requestId)
    .bytes(c.state)
    .optional(c.keyName, (w, n) => w.string(n))
    .u64(c.at);
}

export function readRestoreFields(r: ByteReader): Record<string, unknown> {
  return {
    kind: "restoreBackup",
    requestId: r.string("requestId", MAX_STRING_BYTES),
    state: r.bytes("state", MAX_RESTORE_STATE_BYTES),
    keyName: r.optional("keyName", (r) => r.string("keyName", MAX_STRING_BYTES)),
    at: r.u64("at"),
  };
}

export function recordOf(c: ActivateSecurityDomainCommand): SecurityDomainRecord {
  return Object.freeze({
    sdId: c.sdId,
    quorum: c.quorum,
    shareCount: c.shareCount,
    sealedSecret: c.sealedSecret,
    origin: c.origin,
    activatedMs: c.at,
  });
}

export function writeRecord(w: ByteWriter, r: SecurityDomainRecord): void {
  writeActivateFields(w, { ...r, requestId: "snapshot", at: r.activatedMs });
}

export function readRecord(r: ByteReader): SecurityDomainRecord {
  return recordOf(validateActivate(readActivateFields(r)));
}

/**
 * What a restore keeps from the pool it runs in: its own identity, membership,
 * activation and request window. Everything else in the state (keys, and whatever
 * later features replicate: roles, settings...) comes from the backup.
 */
const POOL_LOCAL: ReadonlySet<string> = new Set([
  "appliedIndex",
  // The pool's own job history: a restore does not bring back the jobs of the pool that made the backup.
  "backupJobs",
  "genesis",
  "members",
  "registry",
  "removed",
  "requests",
  "securityDomain",
]);

/** Versions the restore drops or changes (the shell forgets their partition handles). */
export function restoreInto(
  state: KeyStoreState,
  backup: KeyStoreState,
  keyName: string | null,
): { forgotten: KeyVersionRecord[]; restored: KeyVersionRecord[] } {
  const before = new Map(state.keys);
  if (keyName === null) {
    const target = state as unknown as Record<string, unknown>;
    const source = backup as unknown as Record<string, unknown>;
    for (const field of Object.keys(source)) if (!POOL_LOCAL.has(field)) target[field] = source[field];
  } else {
    const versions = backup.keys.get(keyName);
    if (!versions) fail("KeyNotFound", `the backup holds no key named ${keyName}`);
    state.keys.set(keyName, versions);
  }
  const forgotten: KeyVersionRecord[] = [];
  for (const [name, versions] of before) {
    const now = state.keys.get(name) ?? [];
    for (const v of versions) {
      const kept = now.find((n) => n.version === v.version);
      if (!kept || !sameBytes(kept.wrappedMaterial, v.wrappedMaterial)) forgotten.push(v);
    }
  }
  const restored = keyName === null ? [...state.keys.values()].flat() : (state.keys.get(keyName) ?? []);
  return { forgotten, restored };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
