/**
 * The key-store state machine applied from the Raft log. Deterministic: the result
 * of apply depends only on the entry and the state (times come from `at` inside the
 * entry), so every member that applies the same log holds the same state, and a
 * snapshot of it is the same bytes everywhere.
 *
 * A command that cannot apply (a key that was deleted meanwhile, a second Genesis)
 * is a deterministic no-op with an outcome saying why; a corrupt entry throws
 * IntegrityError and changes nothing, so the shell stops instead of diverging.
 */
import { type ErrorCode, fail, isHsmPoolError } from "@hsmpool/errors";
import type { Entry } from "@hsmpool/raft";
import { decodeConfChange } from "@hsmpool/raft";
import { type AccessOpName, AccessRejection, type AccessState } from "./access/state.js";
import {
  describeShape,
  isOneOf,
  KEY_OPS,
  type KeyOp,
  type KeyShape,
  OPS_BY_TYPE,
  requireAlgorithmFits,
} from "./algorithms.js";
import { applyBackupJob, type BackupJobRecord } from "./backup-job-state.js";
import { certificateFingerprint, verifyOwnerRootCertificate } from "./certificate.js";
import {
  type AccessCommand,
  type CreateKeyCommand,
  type DeleteKeyCommand,
  decodeCommand,
  type GenesisCommand,
  type MemberOwnershipSyncedCommand,
  type PoolCommand,
  type PurgeKeyCommand,
  type RecoverKeyCommand,
  type RegisterMemberCommand,
  type RestoreKeyCommand,
  type RotateKeyCommand,
  type SetRotationPolicyCommand,
  type SetSettingCommand,
  type UpdateKeyAttributesCommand,
} from "./commands.js";
import type { PublicJwk } from "./jwk.js";
import {
  applyChanges,
  type KeyAttributeChanges,
  type KeyAttributes,
  requireKeyName,
  requireTimeWindow,
  requireVersion,
  type UpdateKeyRequest,
  type ValidCreateKey,
  validateAttributeChanges,
  validateCreateKeyRequest,
} from "./key-request.js";
import {
  type DedupedKind,
  type DeletedKey,
  decodeSnapshot,
  decodeSnapshotSteps,
  emptyState,
  encodeSnapshot,
  encodeSnapshotSteps,
  type KeyStoreState,
  type KeyVersionRecord,
  type RegisteredMember,
  type RememberedRequest,
  type SyncedMember,
} from "./keystore-state.js";
import {
  changeSetting,
  DAY_MS,
  type PoolSettings,
  requireSettingName,
  SETTING_NAMES,
  type SettingName,
  settingValue,
} from "./pool-settings.js";
import {
  type DueRotation,
  dueRotations,
  type RotationPolicy,
  rotatedExpiry,
  validateRotationPolicy,
} from "./rotation-policy.js";
import {
  type ActivateSecurityDomainCommand,
  type RestoreBackupCommand,
  recordOf,
  restoreInto,
  type SecurityDomainRecord,
} from "./security-domain-state.js";

export const DEFAULT_MAX_REMEMBERED_REQUESTS = 4096;
/** What an update may change (Key Vault's updatable key attributes). */
const UPDATABLE_ATTRIBUTES: readonly string[] = ["ops", "enabled", "notBeforeMs", "expiresMs", "tags"];

export interface KeyStoreOptions {
  /** When set, a Genesis for another pool is refused on apply. */
  poolId?: string;
  /** Size of the requestId dedupe window (oldest forgotten first). Must be equal on every member. */
  maxRememberedRequests?: number;
}

/** What applying one entry did. `duplicate` marks a retried requestId answered from the dedupe table. */
export type ApplyOutcome =
  | { kind: "noop"; reason: "emptyEntry" | "confChange" }
  | { kind: "memberRemoved"; memberId: string }
  | { kind: "genesisAccepted"; genesis: GenesisCommand }
  | {
      kind: "genesisIgnored";
      proposer: string;
      ownerRootFingerprint: string;
      winnerFingerprint: string;
      /** True when it was a re-proposal of the winning owner root (not a competitor). */
      sameRoot: boolean;
    }
  | { kind: "keyCreated"; requestId: string; name: string; version: number; duplicate: boolean }
  | { kind: "keyUpdated"; requestId: string; name: string; version: number; duplicate: boolean }
  | { kind: "keyDeleted"; requestId: string; name: string; versions: number[]; duplicate: boolean }
  | { kind: "keyRotated"; requestId: string; name: string; version: number; duplicate: boolean }
  | { kind: "keyRecovered"; requestId: string; name: string; versions: number[]; duplicate: boolean }
  | { kind: "keyPurged"; requestId: string; name: string; versions: number[]; duplicate: boolean }
  | { kind: "keyRestored"; requestId: string; name: string; versions: number[]; duplicate: boolean }
  | { kind: "settingChanged"; requestId: string; setting: SettingName; value: string; duplicate: boolean }
  | { kind: "rotationPolicySet"; requestId: string; name: string; duplicate: boolean }
  | { kind: "memberSynced"; memberId: string }
  | { kind: "memberRegistered"; member: RegisteredMember }
  | { kind: "securityDomainActivated"; requestId: string; sdId: string; origin: "download" | "upload" }
  | { kind: "backupRestored"; requestId: string; keyName: string | null; keys: number }
  /** A job record applied; `ignored`: the job had already ended (the first terminal status wins). */
  | { kind: "backupJobRecorded"; requestId: string; job: BackupJobRecord; ignored: boolean }
  /** An access operation applied; `ignored`: a tenant binding after the first one (no change). */
  | { kind: "accessChanged"; requestId: string; op: AccessOpName; ignored: boolean }
  | {
      kind: "rejected";
      command: PoolCommand["kind"];
      requestId: string | null;
      error: { code: ErrorCode; message: string };
    };

/**
 * Work for the node shell. Importing may be lazy (on first use), but the shell must
 * drop a version's partition handle on forgetKeyVersions (a delete, or a restore that
 * replaces live versions; a purge forgets nothing more).
 */
export type KeyStoreEffect =
  | { kind: "importKeyVersion"; name: string; version: number; wrappedMaterial: Uint8Array }
  /** `wrappedMaterial[i]` is the blob of `versions[i]` (the shell reads the HSM key id from its header). */
  | { kind: "forgetKeyVersions"; name: string; versions: number[]; wrappedMaterial: Uint8Array[] };

export interface ApplyResult {
  index: number;
  outcome: ApplyOutcome;
  effects: KeyStoreEffect[];
}

/** A key version as queries return it: attributes and public key, no wrapped material. */
export interface KeyVersionView {
  name: string;
  version: number;
  shape: KeyShape;
  ops: KeyOp[];
  attributes: KeyAttributes;
  createdMs: number;
  updatedMs: number;
  publicJwk: PublicJwk | null;
}

/** A soft-deleted key as queries return it (Key Vault's DeletedKeyBundle: latest version + dates). */
export interface DeletedKeyView {
  name: string;
  latest: KeyVersionView;
  versions: number[];
  deletedMs: number;
  scheduledPurgeMs: number;
}

export interface RotationPolicyView {
  name: string;
  policy: RotationPolicy;
  createdMs: number;
  updatedMs: number;
}

export interface AuthorizedOperation {
  name: string;
  version: number;
  shape: KeyShape;
  op: KeyOp;
  alg: string;
}

export interface ValidUpdate {
  name: string;
  version: number;
  changes: KeyAttributeChanges;
}

class Rejection extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

function reject(code: ErrorCode, message: string): never {
  throw new Rejection(code, message);
}

export class KeyStore {
  private state: KeyStoreState;
  private readonly maxRemembered: number;

  constructor(
    private readonly options: KeyStoreOptions = {},
    state?: KeyStoreState,
  ) {
    const max = options.maxRememberedRequests ?? DEFAULT_MAX_REMEMBERED_REQUESTS;
    if (!Number.isSafeInteger(max) || max < 1) {
      fail("BadParameter", "maxRememberedRequests must be a positive integer", {
        field: "maxRememberedRequests",
      });
    }
    this.maxRemembered = max;
    this.state = state ?? emptyState();
  }

  /**
   * A store restored from snapshot bytes (IntegrityError if they are corrupt). The store
   * keeps views into `snapshot` (its wrapped key material): the bytes must not change.
   */
  static restore(snapshot: Uint8Array, options: KeyStoreOptions = {}): KeyStore {
    return new KeyStore(options, decodeSnapshot(snapshot, "view"));
  }

  /** restore() in steps (keystore-state.ts decodeSnapshotSteps): a caller's loop may run between two. */
  static *restoreSteps(snapshot: Uint8Array, options: KeyStoreOptions = {}): Generator<void, KeyStore, void> {
    return new KeyStore(options, yield* decodeSnapshotSteps(snapshot, "view"));
  }

  /** Deterministic snapshot bytes: equal states give equal bytes. */
  snapshot(): Uint8Array {
    return encodeSnapshot(this.state);
  }

  /** snapshot() in steps (keystore-state.ts encodeSnapshotSteps): apply nothing until it is done. */
  snapshotSteps(): Generator<void, Uint8Array, void> {
    return encodeSnapshotSteps(this.state);
  }

  get appliedIndex(): number {
    return this.state.appliedIndex;
  }

  get genesis(): GenesisCommand | null {
    return this.state.genesis;
  }

  /** Applies one committed Raft entry. Entries must come in order, each exactly once. */
  apply(entry: Entry): ApplyResult {
    if (entry.index !== this.state.appliedIndex + 1) {
      fail(
        "Internal",
        `entry ${entry.index} applied out of order: the store has applied through ${this.state.appliedIndex}`,
      );
    }
    if (entry.type === "confChange") {
      const cc = decodeConfChange(entry.data);
      this.state.appliedIndex = entry.index;
      if (cc.type === "removeNode") {
        // A removed id never comes back (a replacement gets a new id), so its record goes.
        this.state.registry.delete(cc.node);
        this.state.removed.add(cc.node);
      }
      if (cc.type === "removeNode" && this.state.members.delete(cc.node)) {
        return { index: entry.index, outcome: { kind: "memberRemoved", memberId: cc.node }, effects: [] };
      }
      return { index: entry.index, outcome: { kind: "noop", reason: "confChange" }, effects: [] };
    }
    if (entry.data.length === 0) {
      // Raft leaders append an empty entry at the start of each term.
      this.state.appliedIndex = entry.index;
      return { index: entry.index, outcome: { kind: "noop", reason: "emptyEntry" }, effects: [] };
    }
    const command = decodeCommand(entry.data);
    const result = this.execute(command);
    this.state.appliedIndex = entry.index;
    return { index: entry.index, ...result };
  }

  private execute(command: PoolCommand): Omit<ApplyResult, "index"> {
    try {
      switch (command.kind) {
        case "genesis":
          return this.applyGenesis(command);
        case "createKey":
          return this.applyCreate(command);
        case "updateKeyAttributes":
          return this.applyUpdate(command);
        case "deleteKey":
          return this.applyDelete(command);
        case "memberOwnershipSynced":
          return this.applyMemberSynced(command);
        case "registerMember":
          return this.applyRegisterMember(command);
        case "activateSecurityDomain":
          return this.applyActivate(command);
        case "restoreBackup":
          return this.applyRestore(command);
        case "recordBackupJob": {
          const { job, ignored } = applyBackupJob(this.state.backupJobs, command.job);
          return {
            outcome: { kind: "backupJobRecorded", requestId: command.requestId, job, ignored },
            effects: [],
          };
        }
        case "access":
          return this.applyAccess(command);
        case "rotateKey":
          return this.applyRotate(command);
        case "recoverKey":
          return this.applyRecover(command);
        case "purgeKey":
          return this.applyPurge(command);
        case "setSetting":
          return this.applySetSetting(command);
        case "setRotationPolicy":
          return this.applySetRotationPolicy(command);
        case "restoreKey":
          return this.applyRestoreKey(command);
      }
    } catch (e) {
      if (!(e instanceof Rejection)) throw e;
      const requestId = "requestId" in command ? command.requestId : null;
      return {
        outcome: {
          kind: "rejected",
          command: command.kind,
          requestId,
          error: { code: e.code, message: e.message },
        },
        effects: [],
      };
    }
  }

  private applyGenesis(g: GenesisCommand): Omit<ApplyResult, "index"> {
    const winner = this.state.genesis;
    if (winner) {
      const ownerRootFingerprint = certificateFingerprint(g.ownerRootCert);
      const winnerFingerprint = certificateFingerprint(winner.ownerRootCert);
      return {
        outcome: {
          kind: "genesisIgnored",
          proposer: g.proposer,
          ownerRootFingerprint,
          winnerFingerprint,
          sameRoot: ownerRootFingerprint === winnerFingerprint,
        },
        effects: [],
      };
    }
    if (this.options.poolId !== undefined && g.poolId !== this.options.poolId) {
      reject("Forbidden", `Genesis is for pool ${g.poolId}; this is pool ${this.options.poolId}`);
    }
    try {
      verifyOwnerRootCertificate(g.ownerRootCert, g.poolId);
    } catch (e) {
      if (isHsmPoolError(e)) reject(e.code, e.message);
      throw e;
    }
    this.state.genesis = g;
    return { outcome: { kind: "genesisAccepted", genesis: g }, effects: [] };
  }

  /** The activation record, or null while the pool is provisioned (or recovering). */
  get securityDomain(): SecurityDomainRecord | null {
    return this.state.securityDomain;
  }

  /** NotActivated until the security domain has been downloaded (or uploaded when recovering). */
  requireActivated(recovering = false): SecurityDomainRecord {
    return (
      this.state.securityDomain ??
      fail(
        "NotActivated",
        recovering
          ? "the pool is in recovery mode: upload the security domain first (hsmpool sd init-recovery, sd restore-blob, sd upload)"
          : "the pool is not activated: download the security domain first (hsmpool sd download --cert ... --quorum N --out sd.json)",
      )
    );
  }

  private applyActivate(c: ActivateSecurityDomainCommand): Omit<ApplyResult, "index"> {
    this.requireGenesis();
    const current = this.state.securityDomain;
    if (current) {
      reject(
        "Conflict",
        `the security domain ${current.sdId} was already ${current.origin === "download" ? "downloaded" : "uploaded"}; ` +
          "a second download is refused: it would hand out another set of shares of the same secrets, outside the quorum the customer chose",
      );
    }
    this.state.securityDomain = recordOf(c);
    return {
      outcome: { kind: "securityDomainActivated", requestId: c.requestId, sdId: c.sdId, origin: c.origin },
      effects: [],
    };
  }

  private applyRestore(c: RestoreBackupCommand): Omit<ApplyResult, "index"> {
    this.requireGenesis();
    if (!this.state.securityDomain) reject("NotActivated", "a restore needs an activated pool");
    let backup: KeyStoreState;
    try {
      backup = decodeSnapshot(c.state);
    } catch (e) {
      return reject("BadParameter", `the backup does not hold a valid pool state: ${(e as Error).message}`);
    }
    let changes: ReturnType<typeof restoreInto>;
    try {
      changes = restoreInto(this.state, backup, c.keyName);
    } catch (e) {
      if (isHsmPoolError(e)) reject(e.code, e.message);
      throw e;
    }
    const effects: KeyStoreEffect[] = changes.forgotten.map((v) => ({
      kind: "forgetKeyVersions",
      name: v.name,
      versions: [v.version],
      wrappedMaterial: [v.wrappedMaterial],
    }));
    for (const v of changes.restored)
      effects.push({
        kind: "importKeyVersion",
        name: v.name,
        version: v.version,
        wrappedMaterial: v.wrappedMaterial,
      });
    return {
      outcome: {
        kind: "backupRestored",
        requestId: c.requestId,
        keyName: c.keyName,
        keys: c.keyName === null ? this.state.keys.size : 1,
      },
      effects,
    };
  }

  private requireGenesis(): GenesisCommand {
    return (
      this.state.genesis ??
      reject("OwnershipPending", "the pool has no owner yet (no Genesis committed); retry once it is created")
    );
  }

  /** The remembered answer for a retried request, or null for a new one. */
  private remembered(kind: DedupedKind, requestId: string, name: string): RememberedRequest | null {
    const seen = this.state.requests.get(requestId);
    if (!seen) return null;
    if (seen.kind !== kind || seen.name !== name) {
      reject(
        "Conflict",
        `requestId ${requestId} was already used for ${seen.kind} of key ${seen.name}; use a new requestId`,
      );
    }
    return seen;
  }

  private remember(kind: DedupedKind, requestId: string, name: string, versions: number[]): void {
    this.state.requests.set(
      requestId,
      Object.freeze({ requestId, kind, name, versions: Object.freeze(versions) }),
    );
    while (this.state.requests.size > this.maxRemembered) {
      const oldest = this.state.requests.keys().next().value as string;
      this.state.requests.delete(oldest);
    }
  }

  private applyCreate(c: CreateKeyCommand): Omit<ApplyResult, "index"> {
    this.requireGenesis();
    const seen = this.remembered("createKey", c.requestId, c.name);
    if (seen) {
      const version = seen.versions[0] ?? 0;
      return {
        outcome: { kind: "keyCreated", requestId: c.requestId, name: c.name, version, duplicate: true },
        effects: [],
      };
    }
    this.requireNotDeleted(c.name);
    const versions = this.state.keys.get(c.name) ?? [];
    const version = (versions.at(-1)?.version ?? 0) + 1;
    const record: KeyVersionRecord = Object.freeze({
      name: c.name,
      version,
      shape: c.shape,
      ops: c.ops,
      attributes: c.attributes,
      createdMs: c.at,
      updatedMs: c.at,
      publicJwk: c.publicJwk,
      wrappedMaterial: c.wrappedMaterial,
    });
    this.state.keys.set(c.name, [...versions, record]);
    this.remember("createKey", c.requestId, c.name, [version]);
    return {
      outcome: { kind: "keyCreated", requestId: c.requestId, name: c.name, version, duplicate: false },
      effects: [
        {
          kind: "importKeyVersion",
          name: c.name,
          version,
          wrappedMaterial: Uint8Array.from(c.wrappedMaterial),
        },
      ],
    };
  }

  private applyUpdate(c: UpdateKeyAttributesCommand): Omit<ApplyResult, "index"> {
    this.requireGenesis();
    const seen = this.remembered("updateKeyAttributes", c.requestId, c.name);
    if (seen) {
      const version = seen.versions[0] ?? 0;
      return {
        outcome: { kind: "keyUpdated", requestId: c.requestId, name: c.name, version, duplicate: true },
        effects: [],
      };
    }
    const { versions, record } = this.findForApply(c.name, c.version);
    const merged = this.mergeChanges(record, c.changes, (code, message) => reject(code, message));
    const updated: KeyVersionRecord = Object.freeze({ ...record, ...merged, updatedMs: c.at });
    this.state.keys.set(
      c.name,
      versions.map((v) => (v.version === record.version ? updated : v)),
    );
    this.remember("updateKeyAttributes", c.requestId, c.name, [record.version]);
    return {
      outcome: {
        kind: "keyUpdated",
        requestId: c.requestId,
        name: c.name,
        version: record.version,
        duplicate: false,
      },
      effects: [],
    };
  }

  private applyDelete(c: DeleteKeyCommand): Omit<ApplyResult, "index"> {
    this.requireGenesis();
    const seen = this.remembered("deleteKey", c.requestId, c.name);
    if (seen) {
      return {
        outcome: {
          kind: "keyDeleted",
          requestId: c.requestId,
          name: c.name,
          versions: [...seen.versions],
          duplicate: true,
        },
        effects: [],
      };
    }
    const versions = this.state.keys.get(c.name) ?? reject("KeyNotFound", `key ${c.name} does not exist`);
    const numbers = versions.map((v) => v.version);
    this.state.keys.delete(c.name);
    // Soft delete: the versions stay (wrapped) until recovered or purged; the retention in force now counts.
    this.state.deleted.set(
      c.name,
      Object.freeze({
        name: c.name,
        versions: Object.freeze(versions),
        deletedMs: c.at,
        scheduledPurgeMs: c.at + this.state.settings.softDeleteRetentionDays * DAY_MS,
      }),
    );
    this.remember("deleteKey", c.requestId, c.name, numbers);
    return {
      outcome: {
        kind: "keyDeleted",
        requestId: c.requestId,
        name: c.name,
        versions: numbers,
        duplicate: false,
      },
      effects: [
        {
          kind: "forgetKeyVersions",
          name: c.name,
          versions: numbers,
          wrappedMaterial: versions.map((v) => v.wrappedMaterial),
        },
      ],
    };
  }

  private applyAccess(c: AccessCommand): Omit<ApplyResult, "index"> {
    this.requireGenesis();
    try {
      const result = this.state.access.apply(c.op);
      return {
        outcome: {
          kind: "accessChanged",
          requestId: c.requestId,
          op: c.op.op,
          ignored: result === "ignored",
        },
        effects: [],
      };
    } catch (e) {
      if (e instanceof AccessRejection) reject(e.code, e.message);
      throw e;
    }
  }

  /** Tenant binding, role definitions and assignments as committed (read-only use). */
  get access(): AccessState {
    return this.state.access;
  }

  /** A retried request's remembered answer, as the outcome `make` builds from it; null for a new request. */
  private replay(
    kind: DedupedKind,
    requestId: string,
    name: string,
    make: (versions: number[]) => ApplyOutcome,
  ): Omit<ApplyResult, "index"> | null {
    const seen = this.remembered(kind, requestId, name);
    return seen ? { outcome: make([...seen.versions]), effects: [] } : null;
  }

  private requireNotDeleted(name: string): void {
    const deleted = this.state.deleted.get(name);
    if (deleted) {
      reject(
        "Conflict",
        `key ${name} is deleted but not purged (scheduled purge ${new Date(deleted.scheduledPurgeMs).toISOString()}); recover or purge it first`,
      );
    }
  }

  private applyRotate(c: RotateKeyCommand): Omit<ApplyResult, "index"> {
    this.requireGenesis();
    const again = this.replay("rotateKey", c.requestId, c.name, ([version = 0]) => ({
      kind: "keyRotated",
      requestId: c.requestId,
      name: c.name,
      version,
      duplicate: true,
    }));
    if (again) return again;
    this.requireNotDeleted(c.name);
    const versions = this.state.keys.get(c.name) ?? reject("KeyNotFound", `key ${c.name} does not exist`);
    const latest = versions.at(-1) as KeyVersionRecord;
    if (latest.version !== c.basedOnVersion) {
      reject(
        "Conflict",
        `key ${c.name} was rotated meanwhile: its latest version is ${latest.version}, not ${c.basedOnVersion}`,
      );
    }
    if ((c.publicJwk === null) !== (latest.shape.kty === "oct")) {
      reject(
        "BadParameter",
        `the rotated material of ${c.name} does not match its key type ${latest.shape.kty}`,
      );
    }
    const version = latest.version + 1;
    const record: KeyVersionRecord = Object.freeze({
      name: c.name,
      version,
      shape: latest.shape,
      ops: latest.ops,
      attributes: Object.freeze({
        enabled: true,
        notBeforeMs: null,
        expiresMs: rotatedExpiry(this.state.policies.get(c.name)?.policy ?? null, c.at),
        tags: latest.attributes.tags,
      }),
      createdMs: c.at,
      updatedMs: c.at,
      publicJwk: c.publicJwk,
      wrappedMaterial: c.wrappedMaterial,
    });
    this.state.keys.set(c.name, [...versions, record]);
    this.remember("rotateKey", c.requestId, c.name, [version]);
    return {
      outcome: { kind: "keyRotated", requestId: c.requestId, name: c.name, version, duplicate: false },
      effects: [
        {
          kind: "importKeyVersion",
          name: c.name,
          version,
          wrappedMaterial: Uint8Array.from(c.wrappedMaterial),
        },
      ],
    };
  }

  private applyRecover(c: RecoverKeyCommand): Omit<ApplyResult, "index"> {
    this.requireGenesis();
    const make = (versions: number[], duplicate: boolean): ApplyOutcome => ({
      kind: "keyRecovered",
      requestId: c.requestId,
      name: c.name,
      versions,
      duplicate,
    });
    const again = this.replay("recoverKey", c.requestId, c.name, (v) => make(v, true));
    if (again) return again;
    const deleted =
      this.state.deleted.get(c.name) ?? reject("KeyNotFound", `there is no deleted key ${c.name} to recover`);
    this.state.deleted.delete(c.name);
    this.state.keys.set(c.name, [...deleted.versions]);
    const numbers = deleted.versions.map((v) => v.version);
    this.remember("recoverKey", c.requestId, c.name, numbers);
    return { outcome: make(numbers, false), effects: [] };
  }

  private applyPurge(c: PurgeKeyCommand): Omit<ApplyResult, "index"> {
    this.requireGenesis();
    const make = (versions: number[], duplicate: boolean): ApplyOutcome => ({
      kind: "keyPurged",
      requestId: c.requestId,
      name: c.name,
      versions,
      duplicate,
    });
    const again = this.replay("purgeKey", c.requestId, c.name, (v) => make(v, true));
    if (again) return again;
    const deleted =
      this.state.deleted.get(c.name) ?? reject("KeyNotFound", `there is no deleted key ${c.name} to purge`);
    this.requirePurgeAllowed(deleted, c.at, reject);
    this.state.deleted.delete(c.name);
    this.state.policies.delete(c.name);
    const numbers = deleted.versions.map((v) => v.version);
    this.remember("purgeKey", c.requestId, c.name, numbers);
    // No effect: the shell forgot these versions when the key was deleted.
    return { outcome: make(numbers, false), effects: [] };
  }

  private requirePurgeAllowed(
    deleted: DeletedKey,
    atMs: number,
    onError: (code: ErrorCode, message: string) => never,
  ): void {
    if (this.state.settings.purgeProtection && atMs < deleted.scheduledPurgeMs) {
      onError(
        "Forbidden",
        `purge protection is on: key ${deleted.name} cannot be purged before ${new Date(deleted.scheduledPurgeMs).toISOString()}`,
      );
    }
  }

  private applySetSetting(c: SetSettingCommand): Omit<ApplyResult, "index"> {
    const again = this.replay("setSetting", c.requestId, c.setting, () => ({
      kind: "settingChanged",
      requestId: c.requestId,
      setting: c.setting,
      value: c.value,
      duplicate: true,
    }));
    if (again) return again;
    try {
      this.state.settings = changeSetting(this.state.settings, c.setting, c.value);
    } catch (e) {
      if (isHsmPoolError(e)) reject(e.code, e.message);
      throw e;
    }
    this.remember("setSetting", c.requestId, c.setting, []);
    return {
      outcome: {
        kind: "settingChanged",
        requestId: c.requestId,
        setting: c.setting,
        value: c.value,
        duplicate: false,
      },
      effects: [],
    };
  }

  private applySetRotationPolicy(c: SetRotationPolicyCommand): Omit<ApplyResult, "index"> {
    this.requireGenesis();
    const again = this.replay("setRotationPolicy", c.requestId, c.name, () => ({
      kind: "rotationPolicySet",
      requestId: c.requestId,
      name: c.name,
      duplicate: true,
    }));
    if (again) return again;
    this.requireNotDeleted(c.name);
    if (!this.state.keys.has(c.name)) reject("KeyNotFound", `key ${c.name} does not exist`);
    const previous = this.state.policies.get(c.name);
    this.state.policies.set(
      c.name,
      Object.freeze({
        name: c.name,
        policy: c.policy,
        createdMs: previous?.createdMs ?? c.at,
        updatedMs: c.at,
      }),
    );
    this.remember("setRotationPolicy", c.requestId, c.name, []);
    return {
      outcome: { kind: "rotationPolicySet", requestId: c.requestId, name: c.name, duplicate: false },
      effects: [],
    };
  }

  private applyRestoreKey(c: RestoreKeyCommand): Omit<ApplyResult, "index"> {
    this.requireGenesis();
    const make = (versions: number[], duplicate: boolean): ApplyOutcome => ({
      kind: "keyRestored",
      requestId: c.requestId,
      name: c.name,
      versions,
      duplicate,
    });
    const again = this.replay("restoreKey", c.requestId, c.name, (v) => make(v, true));
    if (again) return again;
    this.requireNotDeleted(c.name);
    if (this.state.keys.has(c.name))
      reject("Conflict", `key ${c.name} already exists; restore refuses to overwrite it`);
    this.state.keys.set(c.name, [...c.versions]);
    const numbers = c.versions.map((v) => v.version);
    this.remember("restoreKey", c.requestId, c.name, numbers);
    return {
      outcome: make(numbers, false),
      effects: c.versions.map((v) => ({
        kind: "importKeyVersion" as const,
        name: c.name,
        version: v.version,
        wrappedMaterial: Uint8Array.from(v.wrappedMaterial),
      })),
    };
  }

  private applyMemberSynced(c: MemberOwnershipSyncedCommand): Omit<ApplyResult, "index"> {
    const genesis = this.requireGenesis();
    if (c.dekFingerprint !== genesis.dekFingerprint) {
      reject("Conflict", `member ${c.memberId} reports a DEK that is not this pool's (fingerprint mismatch)`);
    }
    this.state.members.set(
      c.memberId,
      Object.freeze({
        memberId: c.memberId,
        partitionCertFingerprint: c.partitionCertFingerprint,
        dekFingerprint: c.dekFingerprint,
        syncedMs: c.at,
      }),
    );
    return { outcome: { kind: "memberSynced", memberId: c.memberId }, effects: [] };
  }

  private applyRegisterMember(c: RegisterMemberCommand): Omit<ApplyResult, "index"> {
    if (this.state.removed.has(c.memberId)) {
      reject("Conflict", `member id ${c.memberId} was removed from the pool; a new member needs a new id`);
    }
    const member: RegisteredMember = Object.freeze({
      memberId: c.memberId,
      peerAddress: c.peerAddress,
      dataAddress: c.dataAddress,
      svn: c.svn,
      replaces: c.replaces,
      registeredMs: this.state.registry.get(c.memberId)?.registeredMs ?? c.at,
    });
    this.state.registry.set(c.memberId, member);
    return { outcome: { kind: "memberRegistered", member }, effects: [] };
  }

  private findForApply(
    name: string,
    version: number | null,
  ): { versions: KeyVersionRecord[]; record: KeyVersionRecord } {
    const versions = this.state.keys.get(name) ?? reject("KeyNotFound", `key ${name} does not exist`);
    const record =
      version === null
        ? versions.at(-1)
        : (versions.find((v) => v.version === version) ??
          reject("KeyNotFound", `key ${name} has no version ${version}`));
    if (!record) return reject("KeyNotFound", `key ${name} does not exist`);
    return { versions, record };
  }

  /** Merged ops and attributes after `changes`, or `onError` for a change that cannot apply to this key. */
  private mergeChanges(
    record: KeyVersionRecord,
    changes: KeyAttributeChanges,
    onError: (code: ErrorCode, message: string, field: "ops" | "expiresMs") => never,
  ): { ops: readonly KeyOp[]; attributes: KeyAttributes } {
    const allowed = OPS_BY_TYPE[record.shape.kty];
    const refused = (changes.ops ?? []).filter((op) => !allowed.includes(op));
    if (refused.length > 0) {
      onError(
        "BadParameter",
        `${describeShape(record.shape)} cannot ${refused.join(", ")}; it allows ${allowed.join(", ")}`,
        "ops",
      );
    }
    const merged = applyChanges(record, changes);
    const { notBeforeMs, expiresMs } = merged.attributes;
    if (notBeforeMs !== null && expiresMs !== null && expiresMs <= notBeforeMs) {
      onError("BadParameter", "expiresMs must be later than notBeforeMs", "expiresMs");
    }
    return merged;
  }

  // --- queries ---

  /** One version (default: the latest) of a key; KeyNotFound if absent. */
  get(name: string, version?: number): KeyVersionView {
    return view(this.record(name, version));
  }

  has(name: string): boolean {
    return this.state.keys.has(name);
  }

  /** How many live keys the store holds: list().length without copying and sorting every key (status polls read it). */
  get keyCount(): number {
    return this.state.keys.size;
  }

  /** The latest version of every key, ordered by name (ordinal comparison). */
  list(): KeyVersionView[] {
    return [...this.state.keys.keys()]
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .map((name) => view(this.state.keys.get(name)?.at(-1) as KeyVersionRecord));
  }

  /** Every version of a key, oldest first; KeyNotFound if absent. */
  listVersions(name: string): KeyVersionView[] {
    requireKeyName(name);
    const versions = this.state.keys.get(name) ?? fail("KeyNotFound", `key ${name} does not exist`);
    return versions.map(view);
  }

  /** Soft-deleted keys, ordered by name. */
  /** A full backup or restore job's replicated record (null: unknown, or evicted). */
  backupJob(jobId: string): BackupJobRecord | null {
    return this.state.backupJobs.get(jobId) ?? null;
  }

  listDeleted(): DeletedKeyView[] {
    return [...this.state.deleted.keys()].sort(compareNames).map((name) => this.getDeleted(name));
  }

  /** One soft-deleted key; KeyNotFound when there is none of that name. */
  getDeleted(nameInput: string): DeletedKeyView {
    const name = requireKeyName(nameInput);
    const d = this.state.deleted.get(name) ?? fail("KeyNotFound", `there is no deleted key ${name}`);
    return {
      name,
      latest: view(d.versions.at(-1) as KeyVersionRecord),
      versions: d.versions.map((v) => v.version),
      deletedMs: d.deletedMs,
      scheduledPurgeMs: d.scheduledPurgeMs,
    };
  }

  isDeleted(name: string): boolean {
    return this.state.deleted.has(name);
  }

  get settings(): PoolSettings {
    return this.state.settings;
  }

  /** Every setting as name = value, in SETTING_NAMES order. */
  listSettings(): { name: SettingName; value: string }[] {
    return SETTING_NAMES.map((name) => ({ name, value: settingValue(this.state.settings, name) }));
  }

  getSetting(name: unknown): { name: SettingName; value: string } {
    const valid = requireSettingName(name);
    return { name: valid, value: settingValue(this.state.settings, valid) };
  }

  /** A key's rotation policy; KeyNotFound for an unknown key, null when it has none. */
  rotationPolicy(nameInput: string): RotationPolicyView | null {
    const name = requireKeyName(nameInput);
    if (!this.state.keys.has(name)) fail("KeyNotFound", `key ${name} does not exist`);
    const p = this.state.policies.get(name);
    return p ? { ...p } : null;
  }

  /** Pure policy evaluation at `nowMs`: the live keys due a rotation (ordered by name). */
  dueRotations(nowMs: number): DueRotation[] {
    const candidates = [...this.state.policies.values()]
      .filter((p) => this.state.keys.has(p.name))
      .sort((a, b) => compareNames(a.name, b.name))
      .map((p) => {
        const latest = this.state.keys.get(p.name)?.at(-1) as KeyVersionRecord;
        return {
          name: p.name,
          latestVersion: latest.version,
          latestCreatedMs: latest.createdMs,
          latestExpiresMs: latest.attributes.expiresMs,
          policy: p.policy,
        };
      });
    return dueRotations(candidates, nowMs);
  }

  /** Deleted keys whose scheduled purge date has come at `nowMs` (the primary purges them). */
  duePurges(nowMs: number): string[] {
    return [...this.state.deleted.values()]
      .filter((d) => nowMs >= d.scheduledPurgeMs)
      .map((d) => d.name)
      .sort(compareNames);
  }

  /** Every version record of a live key, material still DEK-wrapped: the content of a key backup. */
  versionRecords(nameInput: string): KeyVersionRecord[] {
    const name = requireKeyName(nameInput);
    return [...(this.state.keys.get(name) ?? fail("KeyNotFound", `key ${name} does not exist`))];
  }

  /** The DEK-wrapped blob of a version, for the shell to import into its partition. */
  wrappedMaterialOf(name: string, version: number): Uint8Array {
    return Uint8Array.from(this.record(name, version).wrappedMaterial);
  }

  /** Members that announced ownership sync (and were not removed since), ordered by id. */
  syncedMembers(): SyncedMember[] {
    return sortedById([...this.state.members.values()]);
  }

  /** Members recorded by RegisterMember (and not removed since), ordered by id. */
  registeredMembers(): RegisteredMember[] {
    return sortedById([...this.state.registry.values()]);
  }

  registeredMember(memberId: string): RegisteredMember | null {
    return this.state.registry.get(memberId) ?? null;
  }

  /** True when a membership change removed `memberId` (it may never be a member again). */
  wasRemoved(memberId: string): boolean {
    return this.state.removed.has(memberId);
  }

  private record(name: string, version?: number): KeyVersionRecord {
    requireKeyName(name);
    const versions = this.state.keys.get(name) ?? fail("KeyNotFound", `key ${name} does not exist`);
    if (version === undefined) return versions.at(-1) as KeyVersionRecord;
    requireVersion(version);
    return (
      versions.find((v) => v.version === version) ??
      fail("KeyNotFound", `key ${name} has no version ${version}`)
    );
  }

  // --- request validation (before proposing; nothing changes) ---

  /** Validates a create request at wall time `nowMs`; BadParameter names the field. */
  validateCreate(request: unknown, nowMs: number): ValidCreateKey {
    const valid = validateCreateKeyRequest(request, nowMs);
    this.validateCreateName(valid.name);
    return valid;
  }

  /** Validates an update against the current state at `nowMs` (KeyNotFound, BadParameter). */
  validateUpdate(request: unknown, nowMs: number): ValidUpdate {
    if (typeof request !== "object" || request === null) {
      fail("BadParameter", "update-key request must be an object", { field: "request" });
    }
    const r = request as Partial<Record<keyof UpdateKeyRequest, unknown>>;
    const name = requireKeyName(r.name);
    const record = this.record(name, r.version === undefined ? undefined : requireVersion(r.version));
    const { name: _n, version: _v, ...fields } = r;
    const unknown = Object.keys(fields).filter((f) => !UPDATABLE_ATTRIBUTES.includes(f));
    if (unknown.length > 0) {
      fail(
        "BadParameter",
        `unknown key attribute ${unknown.map((f) => JSON.stringify(f)).join(", ")}; updatable: ${UPDATABLE_ATTRIBUTES.join(", ")}`,
        {
          field: unknown[0],
        },
      );
    }
    const changes = validateAttributeChanges(fields, record.shape.kty);
    const merged = this.mergeChanges(record, changes, (code, message, field) =>
      fail(code, message, { field }),
    );
    if (changes.expiresMs !== undefined) {
      requireTimeWindow(merged.attributes.notBeforeMs, merged.attributes.expiresMs, nowMs);
    }
    return { name, version: record.version, changes };
  }

  /** Checks a create for a name that is soft-deleted (Conflict, as the managed-HSM service answers). */
  validateCreateName(name: string): void {
    const deleted = this.state.deleted.get(name);
    if (deleted) {
      fail(
        "Conflict",
        `key ${name} is deleted but not purged (scheduled purge ${new Date(deleted.scheduledPurgeMs).toISOString()}); recover or purge it first`,
        { field: "name" },
      );
    }
  }

  /**
   * Whether `requestId` already applied as `kind` of key `name`. A retry of such a request
   * (its first attempt committed, the answer was lost) must skip the pre-checks, which read
   * the state that attempt changed: a retried purge found no deleted key and answered
   * KeyNotFound although it had taken effect (chaos rack-loss, linearizability). Its apply
   * then answers from the dedupe table.
   */
  appliedAlready(kind: DedupedKind, requestId: string, name: unknown): boolean {
    const seen = this.state.requests.get(requestId);
    return seen !== undefined && seen.kind === kind && seen.name === name;
  }

  /** Checks a recover request: a deleted key of that name must exist. */
  validateRecover(name: unknown): string {
    return this.getDeleted(requireKeyName(name)).name;
  }

  /** Checks a purge request at `nowMs`: the key must be deleted, and purge protection must allow it. */
  validatePurge(name: unknown, nowMs: number): string {
    const valid = requireKeyName(name);
    const deleted = this.state.deleted.get(valid) ?? fail("KeyNotFound", `there is no deleted key ${valid}`);
    this.requirePurgeAllowed(deleted, nowMs, (code, message) => fail(code, message, { field: "name" }));
    return valid;
  }

  /** Checks a setting change against the current settings (BadParameter; nothing changes). */
  validateSetting(name: unknown, value: unknown): { setting: SettingName; value: string } {
    changeSetting(this.state.settings, name, value);
    return { setting: name as SettingName, value: value as string };
  }

  /** Checks a rotation policy for a live key. */
  validateRotationPolicy(nameInput: unknown, policy: unknown): { name: string; policy: RotationPolicy } {
    const name = requireKeyName(nameInput);
    if (!this.state.keys.has(name)) fail("KeyNotFound", `key ${name} does not exist`);
    return { name, policy: validateRotationPolicy(policy) };
  }

  /** Checks that a key may be restored under `name` (neither live nor deleted). */
  validateRestore(nameInput: unknown): string {
    const name = requireKeyName(nameInput);
    this.validateCreateName(name);
    if (this.state.keys.has(name))
      fail("Conflict", `key ${name} already exists; restore refuses to overwrite it`);
    return name;
  }

  /** Checks a delete request: the key must exist. */
  validateDelete(name: unknown): string {
    const valid = requireKeyName(name);
    if (!this.state.keys.has(valid)) fail("KeyNotFound", `key ${valid} does not exist`);
    return valid;
  }

  /**
   * May `op` with `alg` run on the key (default: latest version) at wall time `nowMs`?
   * KeyNotFound; Forbidden for a disabled, not-yet-valid or expired version;
   * OperationNotAllowed when the version's ops exclude `op`; BadParameter when the
   * algorithm is unknown or does not fit the key's type, size or curve.
   */
  authorizeOperation(
    name: string,
    op: KeyOp,
    alg: string,
    nowMs: number,
    version?: number,
  ): AuthorizedOperation {
    if (!isOneOf(KEY_OPS, op)) {
      fail(
        "BadParameter",
        `unknown key operation ${JSON.stringify(op)}; expected one of ${KEY_OPS.join(", ")}`,
        {
          field: "op",
        },
      );
    }
    const record = this.record(name, version);
    const { attributes } = record;
    const which = `key ${name} version ${record.version}`;
    if (!attributes.enabled) fail("Forbidden", `${which} is disabled; enable it before using it`);
    if (attributes.notBeforeMs !== null && nowMs < attributes.notBeforeMs) {
      fail("Forbidden", `${which} is not valid before ${new Date(attributes.notBeforeMs).toISOString()}`);
    }
    if (attributes.expiresMs !== null && nowMs >= attributes.expiresMs) {
      fail("Forbidden", `${which} expired at ${new Date(attributes.expiresMs).toISOString()}`);
    }
    if (!OPS_BY_TYPE[record.shape.kty].includes(op)) {
      fail("OperationNotAllowed", `${describeShape(record.shape)} cannot ${op}`);
    }
    if (!record.ops.includes(op)) {
      fail(
        "OperationNotAllowed",
        `${which} does not allow ${op}; its operations are ${record.ops.join(", ")}`,
      );
    }
    requireAlgorithmFits(op, alg, record.shape);
    return { name, version: record.version, shape: record.shape, op, alg };
  }
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortedById<T extends { memberId: string }>(items: T[]): T[] {
  return items.sort((a, b) => (a.memberId < b.memberId ? -1 : 1));
}

function view(r: KeyVersionRecord): KeyVersionView {
  return {
    name: r.name,
    version: r.version,
    shape: { ...r.shape },
    ops: [...r.ops],
    attributes: { ...r.attributes, tags: { ...r.attributes.tags } },
    createdMs: r.createdMs,
    updatedMs: r.updatedMs,
    publicJwk: r.publicJwk ? { ...r.publicJwk } : null,
  };
}
