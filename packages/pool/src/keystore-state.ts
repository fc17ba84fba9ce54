/**
 * The replicated state the pool log builds (genesis, synced members, keys, the
 * request-dedupe window) and its snapshot codec.
 *
 * Snapshot bytes = frame("HPS1", version 1, payload) with an 8-byte SHA-256 checksum:
 *
 *   appliedIndex (u64) | genesis? (command fields) | members: list of (memberId,
 *   partitionCertFingerprint, dekFingerprint, syncedMs) sorted by id | keys: list of
 *   (name, versions: list of version records ascending) sorted by name | requests:
 *   list of (requestId, kind, name, versions) in apply order (oldest first)
 *
 * Version 2 (written only once a member was registered or removed, so a pool that never
 * healed keeps writing version-1 bytes) appends: registered members: list of (memberId,
 * peerAddress, dataAddress, svn u32, replaces list, registeredMs) sorted by id | removed
 * member ids, sorted. Version 3 (written once the security domain exists) appends, after those
 * two lists (which may then be empty), the activation record (security-domain-state.ts). The
 * Version 4 (written once a tenant is bound) holds the lists, the activation record as an
 * optional value, then the access state as canonical JSON (access/state.ts). The
 * decoder reads all three versions.
 *
 * Every collection has one canonical order, so equal states give equal bytes on every
 * member; the decoder rejects any other order (IntegrityError) and re-validates every
 * field, so a restored state is one that apply could have produced.
 */

import { type ByteReader, ByteWriter } from "@hsmpool/codec";
import { fail, isHsmPoolError } from "@hsmpool/errors";
import { AccessState } from "./access/state.js";
import type { KeyOp, KeyShape } from "./algorithms.js";
import {
  type BackupJobRecord,
  readBackupJob,
  validateBackupJob,
  writeBackupJob,
} from "./backup-job-state.js";
import {
  type GenesisCommand,
  type MaterialRead,
  type RegisterMemberCommand,
  readGenesisFields,
  readRegisterMemberFields,
  readRotationPolicy,
  readVersion,
  validateCommand,
  writeGenesisFields,
  writeRegisterMemberFields,
  writeRotationPolicy,
  writeVersion,
} from "./commands.js";
import { frameSteps, unframeVersionsSteps } from "./frame.js";
import { compareStrings, type PublicJwk } from "./jwk.js";
import { type KeyAttributes, requireKeyName, requireVersion } from "./key-request.js";
import { changeSetting, DEFAULT_SETTINGS, isDefaultSettings, type PoolSettings } from "./pool-settings.js";
import { type RotationPolicy, validateRotationPolicy } from "./rotation-policy.js";
import { readRecord, type SecurityDomainRecord, writeRecord } from "./security-domain-state.js";
import { requireFingerprint, requireIdentifier, requireTimeMs } from "./validate.js";

export const SNAPSHOT_FORMAT = { magic: "HPS1", version: 1, what: "pool snapshot" } as const;
/** Snapshot versions this build reads; it writes the lowest one that can hold the state. */
export const SNAPSHOT_VERSIONS: readonly number[] = [1, 2, 3, 4, 5, 6];
/** Largest canonical access-state text in a snapshot. */
const MAX_ACCESS_STATE_BYTES = 16 * 1024 * 1024;
const MAX_STRING_BYTES = 1024;
const MAX_ITEMS = 1_000_000;

/** One version of a key as the log recorded it. */
export interface KeyVersionRecord {
  readonly name: string;
  readonly version: number;
  readonly shape: KeyShape;
  readonly ops: readonly KeyOp[];
  readonly attributes: KeyAttributes;
  readonly createdMs: number;
  readonly updatedMs: number;
  readonly publicJwk: PublicJwk | null;
  /** HSM blob wrapped under the pool DEK. */
  readonly wrappedMaterial: Uint8Array;
}

export interface SyncedMember {
  readonly memberId: string;
  readonly partitionCertFingerprint: string;
  readonly dekFingerprint: string;
  readonly syncedMs: number;
}

/** A member's record from the log (RegisterMember): how to reach it and what it replaces. */
export interface RegisteredMember {
  readonly memberId: string;
  readonly peerAddress: string;
  readonly dataAddress: string;
  readonly svn: number;
  readonly replaces: readonly string[];
  readonly registeredMs: number;
}

export type DedupedKind =
  | "createKey"
  | "updateKeyAttributes"
  | "deleteKey"
  | "rotateKey"
  | "recoverKey"
  | "purgeKey"
  | "restoreKey"
  | "setSetting"
  | "setRotationPolicy";

/** A soft-deleted key: every version kept (still wrapped) until it is recovered or purged. */
export interface DeletedKey {
  readonly name: string;
  readonly versions: readonly KeyVersionRecord[];
  readonly deletedMs: number;
  readonly scheduledPurgeMs: number;
}

export interface RotationPolicyRecord {
  readonly name: string;
  readonly policy: RotationPolicy;
  readonly createdMs: number;
  readonly updatedMs: number;
}

/** A remembered client request: a retry with the same requestId gets this answer again. */
export interface RememberedRequest {
  readonly requestId: string;
  readonly kind: DedupedKind;
  readonly name: string;
  /** Created/updated version, or the deleted versions. */
  readonly versions: readonly number[];
}

export interface KeyStoreState {
  appliedIndex: number;
  genesis: GenesisCommand | null;
  members: Map<string, SyncedMember>;
  /** Versions ascending. */
  keys: Map<string, KeyVersionRecord[]>;
  /** Insertion order = apply order; the oldest is evicted first. */
  requests: Map<string, RememberedRequest>;
  /** Members registered by RegisterMember and not removed since. */
  registry: Map<string, RegisteredMember>;
  /** Ids a membership change removed: never members again. */
  removed: Set<string>;
  /** Set once the security domain was downloaded (or uploaded into a recovering pool). */
  securityDomain: SecurityDomainRecord | null;
  /** Tenant binding, custom roles, role assignments (access/state.ts). */
  access: AccessState;
  /** Soft-deleted keys by name (a name is live or deleted, never both). */
  deleted: Map<string, DeletedKey>;
  settings: PoolSettings;
  /** Rotation policies by key name (live or deleted keys; purge removes it). */
  policies: Map<string, RotationPolicyRecord>;
  /** Full backup and restore jobs by id (backup-job-state.ts). */
  backupJobs: Map<string, BackupJobRecord>;
}

export function emptyState(): KeyStoreState {
  return {
    appliedIndex: 0,
    genesis: null,
    members: new Map(),
    keys: new Map(),
    requests: new Map(),
    registry: new Map(),
    removed: new Set(),
    securityDomain: null,
    access: new AccessState(),
    deleted: new Map(),
    settings: DEFAULT_SETTINGS,
    policies: new Map(),
    backupJobs: new Map(),
  };
}

const DEDUPED_KINDS: readonly DedupedKind[] = [
  "createKey",
  "updateKeyAttributes",
  "deleteKey",
  "rotateKey",
  "recoverKey",
  "purgeKey",
  "restoreKey",
  "setSetting",
  "setRotationPolicy",
];

function hasLifecycleState(state: KeyStoreState): boolean {
  return state.deleted.size > 0 || state.policies.size > 0 || !isDefaultSettings(state.settings);
}

function sortedValues<V>(map: Map<string, V>): V[] {
  return [...map.keys()].sort(compareStrings).map((k) => map.get(k) as V);
}

/** Keys encoded between two pauses of encodeSnapshotSteps (a few ms of work on a loaded machine). */
export const SNAPSHOT_KEYS_PER_STEP = 500;

/** Runs a stepped encoder or decoder to its end in one go. */
function allSteps<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

export function encodeSnapshot(state: KeyStoreState): Uint8Array {
  return allSteps(encodeSnapshotSteps(state));
}

/**
 * encodeSnapshot in steps: the generator pauses (yields) after every
 * SNAPSHOT_KEYS_PER_STEP keys and returns the same bytes encodeSnapshot does, so a
 * caller can let its event loop run between steps while it snapshots a large state
 * (100,000 keys take seconds). The state must not change until it is done.
 */
export function* encodeSnapshotSteps(state: KeyStoreState): Generator<void, Uint8Array, void> {
  const w = new ByteWriter().u64(state.appliedIndex);
  w.optional(state.genesis, writeGenesisFields);
  w.list(sortedValues(state.members), (w, m) =>
    w.string(m.memberId).string(m.partitionCertFingerprint).string(m.dekFingerprint).u64(m.syncedMs),
  );
  const keys = sortedValues(state.keys);
  // w.list's layout (u32 count, then the items), written by hand to pause between keys.
  w.u32(keys.length);
  for (let i = 0; i < keys.length; i++) {
    if (i > 0 && i % SNAPSHOT_KEYS_PER_STEP === 0) yield;
    const versions = keys[i] as KeyVersionRecord[];
    w.string(versions[0]?.name ?? "");
    w.list(versions, writeVersion);
  }
  w.list([...state.requests.values()], (w, q) =>
    w
      .string(q.requestId)
      .u8(DEDUPED_KINDS.indexOf(q.kind) + 1)
      .string(q.name)
      .list(q.versions, (w, v) => w.u64(v)),
  );
  const hasAccess = !state.access.isEmpty();
  const jobs = state.backupJobs.size > 0;
  // Jobs (version 6) come last: a state with jobs writes every earlier section.
  const lifecycle = hasLifecycleState(state) || jobs;
  if (
    state.registry.size === 0 &&
    state.removed.size === 0 &&
    state.securityDomain === null &&
    !hasAccess &&
    !lifecycle
  )
    return yield* frameSteps(SNAPSHOT_FORMAT, w.finish());
  w.list(sortedValues(state.registry), (w, m) =>
    writeRegisterMemberFields(w, {
      memberId: m.memberId,
      peerAddress: m.peerAddress,
      dataAddress: m.dataAddress,
      svn: m.svn,
      replaces: m.replaces,
      at: m.registeredMs,
    }),
  );
  w.list([...state.removed].sort(compareStrings), (w, id) => w.string(id));
  if (state.securityDomain === null && !hasAccess && !lifecycle)
    return yield* frameSteps({ ...SNAPSHOT_FORMAT, version: 2 }, w.finish());
  if (!hasAccess && !lifecycle && state.securityDomain !== null) {
    writeRecord(w, state.securityDomain);
    return yield* frameSteps({ ...SNAPSHOT_FORMAT, version: 3 }, w.finish());
  }
  w.optional(state.securityDomain, writeRecord);
  w.string(state.access.encode());
  if (!lifecycle) return yield* frameSteps({ ...SNAPSHOT_FORMAT, version: 4 }, w.finish());
  // Version 5: soft-deleted keys, settings and rotation policies (the whole key surface in one value).
  w.list(sortedValues(state.deleted), (w, d) => {
    w.string(d.name).u64(d.deletedMs).u64(d.scheduledPurgeMs);
    w.list(d.versions, writeVersion);
  });
  w.u64(state.settings.softDeleteRetentionDays).bool(state.settings.purgeProtection);
  w.list(sortedValues(state.policies), (w, p) => {
    w.string(p.name);
    writeRotationPolicy(w, p.policy);
    w.u64(p.createdMs).u64(p.updatedMs);
  });
  if (!jobs) return yield* frameSteps({ ...SNAPSHOT_FORMAT, version: 5 }, w.finish());
  // Version 6: full backup and restore jobs.
  w.list(sortedValues(state.backupJobs), writeBackupJob);
  return yield* frameSteps({ ...SNAPSHOT_FORMAT, version: 6 }, w.finish());
}

/** `material` "view": the state's wrapped key material is views into `data` (readVersion). */
export function decodeSnapshot(data: Uint8Array, material: MaterialRead = "copy"): KeyStoreState {
  return allSteps(decodeSnapshotSteps(data, material));
}

/**
 * decodeSnapshot in steps (a joiner installing 100,000 keys decodes for seconds): the
 * generator pauses while it checks the checksum and after every SNAPSHOT_KEYS_PER_STEP
 * keys, and returns the state decodeSnapshot does.
 */
export function* decodeSnapshotSteps(
  data: Uint8Array,
  material: MaterialRead = "copy",
): Generator<void, KeyStoreState, void> {
  const { reader: r, version } = yield* unframeVersionsSteps(SNAPSHOT_FORMAT, SNAPSHOT_VERSIONS, data);
  try {
    const state = yield* readStateSteps(r, material);
    if (version >= 2) readMembership(r, state, version);
    if (version === 3) state.securityDomain = readRecord(r);
    if (version >= 4) {
      state.securityDomain = r.optional("securityDomain", readRecord);
      state.access = AccessState.decode(r.string("access state", MAX_ACCESS_STATE_BYTES));
    }
    if (version >= 5) readLifecycle(r, state, material);
    if (version >= 6)
      for (const raw of r.list("backup jobs", MAX_ITEMS, readBackupJob)) {
        const job = validateBackupJob(raw);
        if (state.backupJobs.has(job.jobId)) r.corrupt(`backup job ${job.jobId} appears twice`);
        state.backupJobs.set(job.jobId, job);
      }
    r.end();
    return state;
  } catch (e) {
    if (isHsmPoolError(e, "BadParameter")) {
      fail("IntegrityError", `${SNAPSHOT_FORMAT.what} holds an invalid value: ${e.message}`);
    }
    throw e;
  }
}

function* readStateSteps(r: ByteReader, material: MaterialRead): Generator<void, KeyStoreState, void> {
  const state = emptyState();
  state.appliedIndex = r.u64("appliedIndex");
  state.genesis = r.optional(
    "genesis",
    (r) => validateCommand(readGenesisFields(r, "genesis ")) as GenesisCommand,
  );
  const members = r.list("members", MAX_ITEMS, readMember);
  requireAscending(
    r,
    members.map((m) => m.memberId),
    "members",
  );
  for (const m of members) state.members.set(m.memberId, m);
  // r.list("keys", ...) by hand, to pause between keys.
  const count = r.u32("keys count");
  if (count > MAX_ITEMS) r.corrupt(`keys has ${count} items; the limit is ${MAX_ITEMS}`);
  let previous: string | null = null;
  for (let i = 0; i < count; i++) {
    if (i > 0 && i % SNAPSHOT_KEYS_PER_STEP === 0) yield;
    const versions = readKey(r, material);
    const name = versions[0]?.name ?? r.corrupt("a key has no versions");
    if (previous !== null && compareStrings(previous, name) >= 0)
      r.corrupt("keys are not in canonical order");
    previous = name;
    state.keys.set(name, versions);
  }
  for (const q of r.list("requests", MAX_ITEMS, readRequest)) {
    if (state.requests.has(q.requestId)) r.corrupt(`request ${q.requestId} appears twice`);
    state.requests.set(q.requestId, q);
  }
  return state;
}

function readLifecycle(r: ByteReader, state: KeyStoreState, material: MaterialRead): void {
  const deleted = r.list("deleted keys", MAX_ITEMS, (r): DeletedKey => {
    const name = requireKeyName(r.string("deleted key name", MAX_STRING_BYTES));
    const deletedMs = requireTimeMs(r.u64("deletedMs"), "deletedMs");
    const scheduledPurgeMs = requireTimeMs(r.u64("scheduledPurgeMs"), "scheduledPurgeMs");
    const versions = r.list("versions", MAX_ITEMS, (r) => readVersion(r, name, material));
    if (versions.length === 0) r.corrupt(`deleted key ${name} has no versions`);
    requireAscendingVersions(r, versions, name);
    return Object.freeze({ name, deletedMs, scheduledPurgeMs, versions: Object.freeze(versions) });
  });
  requireAscending(
    r,
    deleted.map((d) => d.name),
    "deleted keys",
  );
  for (const d of deleted) {
    if (state.keys.has(d.name)) r.corrupt(`key ${d.name} is both live and deleted`);
    state.deleted.set(d.name, d);
  }
  const days = r.u64("softDeleteRetentionDays");
  const on = r.bool("purgeProtection");
  state.settings = changeSetting(
    changeSetting(DEFAULT_SETTINGS, "soft-delete-retention-days", String(days)),
    "purge-protection",
    on ? "on" : "off",
  );
  const policies = r.list("rotation policies", MAX_ITEMS, (r): RotationPolicyRecord => {
    const name = requireKeyName(r.string("policy key name", MAX_STRING_BYTES));
    const policy = validateRotationPolicy(readRotationPolicy(r));
    return Object.freeze({
      name,
      policy,
      createdMs: requireTimeMs(r.u64("createdMs"), "createdMs"),
      updatedMs: requireTimeMs(r.u64("updatedMs"), "updatedMs"),
    });
  });
  requireAscending(
    r,
    policies.map((p) => p.name),
    "rotation policies",
  );
  for (const p of policies) state.policies.set(p.name, p);
}

function requireAscendingVersions(r: ByteReader, versions: readonly KeyVersionRecord[], name: string): void {
  versions.forEach((v, i) => {
    const previous = versions[i - 1];
    if (previous && previous.version >= v.version) r.corrupt(`versions of key ${name} are not ascending`);
  });
}

function readMembership(r: ByteReader, state: KeyStoreState, version: number): void {
  const registry = r.list("registered members", MAX_ITEMS, (r) => {
    const c = validateCommand(readRegisterMemberFields(r)) as RegisterMemberCommand;
    return Object.freeze({
      memberId: c.memberId,
      peerAddress: c.peerAddress,
      dataAddress: c.dataAddress,
      svn: c.svn,
      replaces: c.replaces,
      registeredMs: c.at,
    });
  });
  requireAscending(
    r,
    registry.map((m) => m.memberId),
    "registered members",
  );
  const removed = r.list("removed members", MAX_ITEMS, (r) =>
    requireIdentifier(r.string("removed member", MAX_STRING_BYTES), "removed member"),
  );
  requireAscending(r, removed, "removed members");
  if (version === 2 && registry.length === 0 && removed.length === 0)
    r.corrupt("version 2 with no membership records");
  if (version === 2 && registry.length === 0 && removed.length === 0) {
    r.corrupt("version 2 with no membership records");
  }
  for (const m of registry) {
    if (removed.includes(m.memberId)) r.corrupt(`member ${m.memberId} is both registered and removed`);
    state.registry.set(m.memberId, m);
  }
  for (const id of removed) state.removed.add(id);
}

/** Strictly ascending ids: the one canonical order (and no duplicates). */
function requireAscending(r: ByteReader, ids: readonly string[], what: string): void {
  for (let i = 1; i < ids.length; i++) {
    if (compareStrings(ids[i - 1] ?? "", ids[i] ?? "") >= 0) r.corrupt(`${what} are not in canonical order`);
  }
}

function readMember(r: ByteReader): SyncedMember {
  return {
    memberId: requireIdentifier(r.string("memberId", MAX_STRING_BYTES), "memberId"),
    partitionCertFingerprint: requireFingerprint(
      r.string("partitionCertFingerprint", MAX_STRING_BYTES),
      "partitionCertFingerprint",
    ),
    dekFingerprint: requireFingerprint(r.string("dekFingerprint", MAX_STRING_BYTES), "dekFingerprint"),
    syncedMs: r.u64("syncedMs"),
  };
}

function readKey(r: ByteReader, material: MaterialRead): KeyVersionRecord[] {
  const name = requireKeyName(r.string("key name", MAX_STRING_BYTES));
  const versions = r.list("versions", MAX_ITEMS, (r) => readVersion(r, name, material));
  requireAscendingVersions(r, versions, name);
  return versions;
}

function readRequest(r: ByteReader): RememberedRequest {
  const requestId = requireIdentifier(r.string("requestId", MAX_STRING_BYTES), "requestId");
  const kind = DEDUPED_KINDS[r.u8("request kind") - 1] ?? r.corrupt("unknown request kind");
  const name = requireKeyName(r.string("request name", MAX_STRING_BYTES));
  const versions = r.list("request versions", MAX_ITEMS, (r) => requireVersion(r.u64("version")));
  return Object.freeze({ requestId, kind, name, versions: Object.freeze(versions) });
}
