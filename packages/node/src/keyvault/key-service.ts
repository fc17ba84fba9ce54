/**
 * The KeyVault operations, transport-free. Writes: only on the primary; the key is
 * generated in this node's partition, leaves it only wrapped under the pool DEK,
 * goes into the log as a CreateKey command and is answered once that entry has
 * applied. Reads and crypto operations: on any member holding ownership, after a
 * ReadIndex barrier (linearizable), from local state and the local partition.
 */
import { createPublicKey } from "node:crypto";
import { fail, HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import type { KeySpec } from "@hsmpool/hsm";
import { type KeyHandle, parseByokBlob, rsaThumbprint } from "@hsmpool/hsm";
import {
  type AccessCommand,
  type AccessOp,
  type AccessState,
  type ApplyOutcome,
  type CreateKeyCommand,
  type DeletedKeyView,
  type DeleteKeyCommand,
  decodeKeyBackup,
  describeQuorum,
  encodeCommand,
  encodeKeyBackup,
  type KeyAttributes,
  type KeyShape,
  type KeyStore,
  type KeyVersionView,
  type PoolCommand,
  type PublicJwk,
  policyRotationRequestId,
  type QuorumReport,
  type RotationPolicyView,
  type SettingName,
  validatePublicJwk,
} from "@hsmpool/pool";
import type { PartitionAccess } from "../hsm/partition-access.js";
import type { RaftDriver } from "../raft/raft-driver.js";
import type { Clock } from "../seams/clock.js";
import type { HsmSession } from "../seams/hsm.js";
import type { NodeObserver } from "../seams/observer.js";
import type { Randomness } from "../seams/random.js";
import { NO_VARIANTS, type ShellVariants } from "../seams/variants.js";
import { openKeyBackup, sealKeyBackup } from "./key-backup-protection.js";
import { deleteHsmKeys, type KeyIndex } from "./key-index.js";
import type { KeyReserve, PreparedKey } from "./key-reserve.js";
import type { ProposalWaiters } from "./proposals.js";

export interface LeaderView {
  isLeader: boolean;
  leaderId: string | null;
  /** The primary's data-plane address, when known. */
  leaderAddress: string | null;
}

export interface KeyServiceContext {
  nodeId: string;
  store(): KeyStore;
  raft: RaftDriver;
  access: PartitionAccess;
  index: KeyIndex;
  proposals: ProposalWaiters;
  /** Keys generated and wrapped ahead of the creates that take them. */
  reserve: KeyReserve;
  /** The DEK's HSM key id; OwnershipPending until this member is synced. */
  dekKeyId(): string;
  leader(): LeaderView;
  /** Which voters this node can reach now (to refuse writes without quorum, saying so). */
  quorum(): QuorumReport;
  clock: Clock;
  random: Randomness;
  /**
   * Broken variants for checker self-tests (seams/variants.ts): readWithoutBarrier,
   * serveWithoutOwnership, ackBeforeCommit (answer a write when proposed and skip the
   * quorum precheck). Empty in a real node.
   */
  variants?: ShellVariants;
  observer?: NodeObserver;
}

export interface CreateKeyInput {
  name: string;
  kty: string;
  size?: number;
  crv?: string;
  ops?: string[];
  enabled: boolean;
  notBeforeMs: number | null;
  expiresMs: number | null;
  tags: Record<string, string>;
  requestId?: string;
}

/** Attributes of a key made from outside material (import, BYOK); the shape comes from the key itself. */
export interface ImportAttributesInput {
  name: string;
  ops?: string[];
  enabled: boolean;
  notBeforeMs: number | null;
  expiresMs: number | null;
  tags: Record<string, string>;
  requestId?: string;
}

export interface UpdateKeyInput {
  name: string;
  /** Undefined: the latest version. */
  version?: number;
  ops?: string[];
  enabled?: boolean;
  /** null clears the limit. */
  notBeforeMs?: number | null;
  expiresMs?: number | null;
  tags?: Record<string, string>;
  requestId?: string;
}

/** Bytes the random-number operation returns at most (Key Vault's getRandomBytes limit). */
export const MAX_RANDOM_BYTES = 128;

export interface KeyRefInput {
  name: string;
  /** Undefined: the latest version. */
  version?: number;
}

type CryptoOp = "sign" | "verify" | "encrypt" | "decrypt" | "wrapKey" | "unwrapKey";

const REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

export class KeyService {
  private readonly variants: ShellVariants;
  private readonly ackBeforeCommitVariant: boolean;

  constructor(private readonly ctx: KeyServiceContext) {
    this.variants = ctx.variants ?? NO_VARIANTS;
    this.ackBeforeCommitVariant = this.variants.has("ackBeforeCommit");
  }

  private notLeaderError(): HsmPoolError {
    const { leaderId, leaderAddress } = this.ctx.leader();
    return new HsmPoolError(
      "NotLeader",
      leaderId
        ? `${this.ctx.nodeId} is not the primary; send writes to ${leaderId}${leaderAddress ? ` at ${leaderAddress}` : ""}`
        : `${this.ctx.nodeId} is not the primary and no primary is elected yet; retry shortly`,
      { leader: leaderId, leaderAddress },
    );
  }

  /**
   * Writes need the primary and a reachable majority. Without a majority the write is
   * refused before anything is proposed (NoQuorum naming who is unreachable), rather
   * than left waiting; a follower that knows no primary says the same when it cannot
   * reach a majority either (no election can succeed), else NotLeader (one is coming).
   */
  requireLeader(): void {
    const view = this.ctx.leader();
    if (this.ackBeforeCommitVariant && view.isLeader) return;
    if (view.isLeader || view.leaderId === null) {
      const quorum = this.ctx.quorum();
      if (!quorum.hasQuorum) {
        throw new HsmPoolError(
          "NoQuorum",
          `${describeQuorum(quorum)}: writes are refused until a majority of the pool's members is back`,
          { retryable: true, reachable: quorum.reachable, unreachable: quorum.unreachable },
        );
      }
    }
    if (!view.isLeader) throw this.notLeaderError();
  }

  private requestIdOf(given: string | undefined): string {
    if (given === undefined || given === "") return this.ctx.random.uuid();
    if (!REQUEST_ID.test(given)) {
      fail(
        "BadParameter",
        "requestId must be 1..128 of letters, digits and . _ : / - (starting alphanumeric)",
        {
          field: "requestId",
        },
      );
    }
    return given;
  }

  /**
   * Proposes `data` and waits for its apply outcome (the single acknowledgement path
   * for writes). Throws NotLeader when the proposal could not be made, NoQuorum when
   * it did not apply in time (it may still commit later).
   */
  async commit(
    requestId: string,
    data: Uint8Array,
    onApplied?: (outcome: ApplyOutcome) => void,
  ): Promise<ApplyOutcome> {
    const outcome = this.ctx.proposals.wait(requestId, onApplied);
    try {
      this.ctx.raft.propose(data);
    } catch (e) {
      this.ctx.proposals.abandon(requestId, isHsmPoolError(e, "NotLeader") ? this.notLeaderError() : e);
    }
    return outcome;
  }

  /** The broken variant's "acknowledgement": proposed, not committed (ackBeforeCommit). */
  private ackBeforeCommit<T>(data: Uint8Array, answer: T): T {
    try {
      this.ctx.raft.propose(data);
    } catch (e) {
      throw isHsmPoolError(e, "NotLeader") ? this.notLeaderError() : e;
    }
    return answer;
  }

  async createKey(input: CreateKeyInput): Promise<KeyVersionView> {
    // Leadership before the checks: a secondary's store may lag (see writable()). No barrier on this
    // hot path: the checks that read state (a deleted name) are re-made when the entry applies.
    this.requireLeader();
    const store = this.ctx.store();
    const now = this.ctx.clock.now();
    const valid = store.validateCreate(
      {
        name: input.name,
        kty: input.kty,
        ...(input.size !== undefined ? { size: input.size } : {}),
        ...(input.crv !== undefined ? { crv: input.crv } : {}),
        ...(input.ops !== undefined ? { ops: input.ops } : {}),
        enabled: input.enabled,
        notBeforeMs: input.notBeforeMs,
        expiresMs: input.expiresMs,
        tags: input.tags,
      },
      now,
    );
    const requestId = this.requestIdOf(input.requestId);
    const dekKeyId = this.ctx.dekKeyId();
    this.ctx.observer?.serving?.("createKey");
    const spec = keySpecOf(valid.shape, valid.ops);
    return this.commitNewMaterial(
      await this.ctx.reserve.take(spec, dekKeyId),
      requestId,
      (wrappedMaterial, publicJwk) => ({
        kind: "createKey",
        requestId,
        name: valid.name,
        shape: valid.shape,
        ops: valid.ops,
        attributes: valid.attributes,
        wrappedMaterial,
        publicJwk,
        at: now,
      }),
      () => this.ctx.reserve.refill(spec, dekKeyId),
    );
  }

  /** A key this partition just made (import, BYOK) as a create carries it: wrapped under the DEK, public JWK. */
  private async prepared(handle: KeyHandle): Promise<PreparedKey> {
    const session = this.ctx.access.session;
    try {
      return {
        handle,
        wrappedMaterial: await session.exportWrapped(handle, this.ctx.dekKeyId()),
        publicJwk: handle.kty === "oct" ? null : await session.getPublicJwk(handle),
      };
    } catch (e) {
      await deleteHsmKeys(session, [handle.id]);
      throw e;
    }
  }

  /**
   * Proposes a command carrying a key this partition made (generated, imported,
   * unwrapped by BYOK), wrapped under the DEK, and answers its version once applied.
   * The partition's copy is removed unless that very command stored it. `done` runs
   * once the proposal is settled either way (the reserve's refill).
   */
  private async commitNewMaterial(
    prepared: PreparedKey,
    requestId: string,
    command: (wrappedMaterial: Uint8Array, publicJwk: PublicJwk | null) => PoolCommand,
    done: () => void = () => {},
  ): Promise<KeyVersionView> {
    const session = this.ctx.access.session;
    const { handle } = prepared;
    this.ctx.index.markImported(handle.id);
    let outcome: ApplyOutcome;
    let made: KeyVersionView | null = null;
    try {
      const publicJwk =
        prepared.publicJwk === null ? null : publicJwkOf(prepared.publicJwk as Record<string, unknown>);
      const c = command(prepared.wrappedMaterial, publicJwk);
      if (this.ackBeforeCommitVariant && c.kind === "createKey")
        return this.ackBeforeCommit(encodeCommand(c), predictedView(c, this.ctx.store()));
      // Read the new version the moment its entry applies: a later entry applied in the same
      // batch (a delete of the name) may remove it before this call resumes — the pool
      // simulator caught a create answered KeyNotFound that had taken effect (seed 50).
      outcome = await this.commit(requestId, encodeCommand(c), (o) => {
        if ((o.kind === "keyCreated" || o.kind === "keyRotated") && !o.duplicate)
          made = this.ctx.store().get(o.name, o.version);
      });
    } catch (e) {
      // Not proposed: our key can never be stored. (After a NoQuorum timeout it may still be: keep it.)
      if (!isHsmPoolError(e, "NoQuorum")) await deleteHsmKeys(session, [handle.id]);
      throw e;
    } finally {
      done();
    }
    const stored = (outcome.kind === "keyCreated" || outcome.kind === "keyRotated") && !outcome.duplicate;
    // Refused, or a retried requestId that had made another version: ours is not the stored one.
    if (!stored) await deleteHsmKeys(session, [handle.id]);
    if (outcome.kind === "rejected") throw new HsmPoolError(outcome.error.code, outcome.error.message);
    if (outcome.kind !== "keyCreated" && outcome.kind !== "keyRotated")
      fail("Internal", `key applied as ${outcome.kind}`);
    return made ?? this.ctx.store().get(outcome.name, outcome.version);
  }

  /** A write whose apply outcome must be `kind`; a refusal becomes its HsmPoolError. */
  private async commitExpecting<K extends ApplyOutcome["kind"]>(
    requestId: string,
    command: PoolCommand,
    kind: K,
  ): Promise<Extract<ApplyOutcome, { kind: K }>> {
    const outcome = await this.commit(requestId, encodeCommand(command));
    if (outcome.kind === "rejected") throw new HsmPoolError(outcome.error.code, outcome.error.message);
    if (outcome.kind !== kind) fail("Internal", `${command.kind} applied as ${outcome.kind}`);
    return outcome as Extract<ApplyOutcome, { kind: K }>;
  }

  /** A new version of `name` with its latest version's parameters (`basedOnVersion`: only if still the latest). */
  async rotateKey(input: {
    name: string;
    basedOnVersion?: number;
    requestId?: string;
  }): Promise<KeyVersionView> {
    const latest = (await this.writable()).get(input.name);
    const basedOnVersion = input.basedOnVersion ?? latest.version;
    const requestId = this.requestIdOf(input.requestId);
    const dekKeyId = this.ctx.dekKeyId();
    const spec = keySpecOf(latest.shape, latest.ops);
    return this.commitNewMaterial(
      await this.ctx.reserve.take(spec, dekKeyId),
      requestId,
      (wrappedMaterial, publicJwk) => ({
        kind: "rotateKey",
        requestId,
        name: latest.name,
        basedOnVersion,
        wrappedMaterial,
        publicJwk,
        at: this.ctx.clock.now(),
      }),
      () => this.ctx.reserve.refill(spec, dekKeyId),
    );
  }

  /** Validates the attributes of an import before any key material is touched (shape checked later). */
  private validImportAttributes(input: ImportAttributesInput): {
    name: string;
    attributes: KeyAttributes;
    requestId: string;
  } {
    const now = this.ctx.clock.now();
    // Shape-free fields are checked with a placeholder type; the real shape is checked once the HSM read the key.
    const valid = this.ctx.store().validateCreate(
      {
        name: input.name,
        kty: "RSA",
        enabled: input.enabled,
        notBeforeMs: input.notBeforeMs,
        expiresMs: input.expiresMs,
        tags: input.tags,
      },
      now,
    );
    return { name: valid.name, attributes: valid.attributes, requestId: this.requestIdOf(input.requestId) };
  }

  private async commitImported(
    handle: KeyHandle,
    valid: { name: string; attributes: KeyAttributes; requestId: string },
  ): Promise<KeyVersionView> {
    const shape =
      handle.kty === "EC"
        ? ({ kty: "EC", crv: handle.crv } as const)
        : handle.kty === "RSA"
          ? ({ kty: "RSA", size: handle.size } as const)
          : ({ kty: "oct", size: handle.size } as const);
    return this.commitNewMaterial(
      await this.prepared(handle),
      valid.requestId,
      (wrappedMaterial, publicJwk) => ({
        kind: "createKey",
        requestId: valid.requestId,
        name: valid.name,
        shape,
        ops: handle.ops,
        attributes: valid.attributes,
        wrappedMaterial,
        publicJwk,
        at: this.ctx.clock.now(),
      }),
    );
  }

  /** Imports a private JWK sent over the protected channel (the managed-HSM API's import). */
  async importKey(input: ImportAttributesInput & { jwk: unknown }): Promise<KeyVersionView> {
    this.requireLeader();
    const valid = this.validImportAttributes(input);
    this.ctx.dekKeyId();
    const handle = await this.ctx.access.session.importJwk(input.jwk, input.ops);
    return this.commitImported(handle, valid);
  }

  /**
   * BYOK: the `.byok` blob is unwrapped by the key-exchange key inside this node's
   * partition; the target key never exists in this process in plaintext.
   */
  async importByok(
    input: ImportAttributesInput & { byok: string; kek: KeyRefInput },
  ): Promise<KeyVersionView> {
    const store = await this.writable();
    const valid = this.validImportAttributes(input);
    const blob = parseByokBlob(input.byok);
    const kek = store.authorizeOperation(
      input.kek.name,
      "import",
      "CKM_RSA_AES_KEY_WRAP",
      this.ctx.clock.now(),
      input.kek.version,
    );
    const kekView = store.get(kek.name, kek.version);
    const kekKeyId = await this.ctx.index.ensureImported(
      this.ctx.access.session,
      store,
      this.ctx.dekKeyId(),
      kek.name,
      kek.version,
    );
    const thumbprint = kekView.publicJwk ? thumbprintOf(kekView.publicJwk) : "";
    // The kid names the KEK by thumbprint, name[/version], or its Key Vault key id (what the REST API's BYOK tools write).
    const named = [thumbprint, `${kek.name}/${kek.version}`, kek.name];
    if (!named.includes(blob.kid) && !blob.kid.endsWith(`/keys/${kek.name}/${kek.version}`)) {
      fail(
        "BadParameter",
        `the BYOK blob was made for another key-exchange key (kid ${blob.kid.slice(0, 60)}), not ${kek.name} version ${kek.version}`,
        { field: "byok" },
      );
    }
    const handle = await this.ctx.access.session.importByok(kekKeyId, blob.ciphertext, input.ops);
    return this.commitImported(handle, valid);
  }

  /** Changes one version's attributes (default: the latest); refusals name the attribute. */
  async updateKey(input: UpdateKeyInput): Promise<KeyVersionView> {
    const { requestId: given, ...request } = input;
    const valid = (await this.writable()).validateUpdate(request, this.ctx.clock.now());
    const requestId = this.requestIdOf(given);
    const outcome = await this.commitExpecting(
      requestId,
      {
        kind: "updateKeyAttributes",
        requestId,
        name: valid.name,
        version: valid.version,
        changes: valid.changes,
        at: this.ctx.clock.now(),
      },
      "keyUpdated",
    );
    return this.ctx.store().get(outcome.name, outcome.version);
  }

  async listDeletedKeys(): Promise<DeletedKeyView[]> {
    return (await this.readable()).listDeleted();
  }

  async getDeletedKey(name: string): Promise<DeletedKeyView> {
    return (await this.readable()).getDeleted(name);
  }

  async recoverKey(nameInput: string, requestIdInput?: string): Promise<KeyVersionView> {
    const store = await this.writable();
    const name = unlessApplied(store, "recoverKey", requestIdInput, nameInput, () =>
      store.validateRecover(nameInput),
    );
    const requestId = this.requestIdOf(requestIdInput);
    await this.commitExpecting(
      requestId,
      { kind: "recoverKey", requestId, name, at: this.ctx.clock.now() },
      "keyRecovered",
    );
    return this.ctx.store().get(name);
  }

  async purgeKey(nameInput: string, requestIdInput?: string): Promise<string> {
    const store = await this.writable();
    const name = unlessApplied(store, "purgeKey", requestIdInput, nameInput, () =>
      store.validatePurge(nameInput, this.ctx.clock.now()),
    );
    const requestId = this.requestIdOf(requestIdInput);
    await this.commitExpecting(
      requestId,
      { kind: "purgeKey", requestId, name, at: this.ctx.clock.now() },
      "keyPurged",
    );
    return name;
  }

  async listSettings(): Promise<{ name: SettingName; value: string }[]> {
    return (await this.readable()).listSettings();
  }

  async getSetting(name: string): Promise<{ name: SettingName; value: string }> {
    return (await this.readable()).getSetting(name);
  }

  async setSetting(input: {
    name: string;
    value: string;
    requestId?: string;
  }): Promise<{ name: SettingName; value: string }> {
    const valid = (await this.writable()).validateSetting(input.name, input.value);
    const requestId = this.requestIdOf(input.requestId);
    await this.commitExpecting(
      requestId,
      { kind: "setSetting", requestId, setting: valid.setting, value: valid.value, at: this.ctx.clock.now() },
      "settingChanged",
    );
    return this.ctx.store().getSetting(valid.setting);
  }

  async setRotationPolicy(input: {
    name: string;
    policy: unknown;
    requestId?: string;
  }): Promise<RotationPolicyView> {
    const valid = (await this.writable()).validateRotationPolicy(input.name, input.policy);
    const requestId = this.requestIdOf(input.requestId);
    await this.commitExpecting(
      requestId,
      {
        kind: "setRotationPolicy",
        requestId,
        name: valid.name,
        policy: valid.policy,
        at: this.ctx.clock.now(),
      },
      "rotationPolicySet",
    );
    return (
      this.ctx.store().rotationPolicy(valid.name) ?? fail("Internal", "rotation policy vanished after apply")
    );
  }

  /** A key's rotation policy; null when it has none. */
  async getRotationPolicy(name: string): Promise<RotationPolicyView | null> {
    return (await this.readable()).rotationPolicy(name);
  }

  /** Every version of a key in a blob only a pool holding the same backup key can open. */
  async backupKey(name: string): Promise<Uint8Array> {
    const store = await this.readable();
    const genesis = store.genesis ?? fail("OwnershipPending", "the pool has no owner yet");
    const content = encodeKeyBackup({
      poolId: genesis.poolId,
      dekFingerprint: genesis.dekFingerprint,
      name,
      versions: store.versionRecords(name),
    });
    return sealKeyBackup(this.ctx.access.session, this.backupKeyId(), content);
  }

  /** Restores a backup made by backupKey (refused from another pool, and while the name exists). */
  async restoreKey(blob: Uint8Array, requestIdInput?: string): Promise<KeyVersionView> {
    const requestId = this.requestIdOf(requestIdInput);
    const store = await this.writable();
    const content = decodeKeyBackup(await openKeyBackup(this.ctx.access.session, this.backupKeyId(), blob));
    const genesis = store.genesis ?? fail("OwnershipPending", "the pool has no owner yet");
    if (content.dekFingerprint !== genesis.dekFingerprint) {
      fail(
        "Forbidden",
        `the backup of ${content.name} belongs to pool ${content.poolId} (another security domain)`,
      );
    }
    const name = unlessApplied(store, "restoreKey", requestIdInput, content.name, () =>
      store.validateRestore(content.name),
    );
    await this.commitExpecting(
      requestId,
      { kind: "restoreKey", requestId, name, versions: content.versions, at: this.ctx.clock.now() },
      "keyRestored",
    );
    return this.ctx.store().get(name);
  }

  /**
   * The HSM key that protects key backups. The pool DEK until the security domain's
   * backup key exists (DESIGN.md: SD-derived); switching is this one line.
   */
  private backupKeyId(): string {
    return this.ctx.dekKeyId();
  }

  /** `count` (1..128) random bytes from this node's HSM. */
  async getRandomBytes(count: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(count) || count < 1 || count > MAX_RANDOM_BYTES) {
      fail("BadParameter", `count must be a whole number from 1 to ${MAX_RANDOM_BYTES}`, { field: "count" });
    }
    this.ctx.dekKeyId();
    return this.ctx.access.session.randomBytes(count);
  }

  /**
   * The primary's lifecycle duty, run on its clock: propose each rotation a policy says
   * is due (applies only while the version it replaces is still the latest, and its
   * requestId is the same on every primary: exactly once across failovers), and purge
   * deleted keys whose retention has ended. Returns what it proposed.
   */
  async runLifecycle(): Promise<{ rotated: string[]; purged: string[] }> {
    const done = { rotated: [] as string[], purged: [] as string[] };
    if (!this.ctx.leader().isLeader) return done;
    const store = this.ctx.store();
    const now = this.ctx.clock.now();
    for (const due of store.dueRotations(now)) {
      await this.rotateKey({
        name: due.name,
        basedOnVersion: due.basedOnVersion,
        requestId: policyRotationRequestId(due),
      });
      done.rotated.push(due.name);
    }
    for (const name of store.duePurges(now)) {
      const deleted = store.getDeleted(name);
      await this.purgeKey(name, `auto-purge/${name}/${deleted.deletedMs}`);
      done.purged.push(name);
    }
    return done;
  }

  /**
   * Commits an access-state change (role definitions, assignments, JWKS rollover) the
   * caller was already authorised for; the rules needing the whole state (lockout,
   * roles in use) are checked on apply and come back as their error.
   */
  /** The access state (roles, assignments) once this member has applied everything committed before the call. */
  async accessState(): Promise<AccessState> {
    return (await this.readable()).access;
  }

  async commitAccess(op: AccessOp, requestIdInput?: string): Promise<void> {
    const requestId = this.requestIdOf(requestIdInput);
    this.requireLeader();
    const command: AccessCommand = { kind: "access", requestId, op, at: this.ctx.clock.now() };
    const outcome = await this.commit(requestId, encodeCommand(command));
    if (outcome.kind === "rejected") throw new HsmPoolError(outcome.error.code, outcome.error.message);
    if (outcome.kind !== "accessChanged") fail("Internal", `access change applied as ${outcome.kind}`);
  }

  /**
   * Only the name's form is checked before proposing: whether the key exists is decided
   * where the delete applies (rejected with KeyNotFound), never from this node's store,
   * which may lag the log (a restarted member, a new primary still applying) — the pool
   * simulator caught a lagging member answering KeyNotFound for a key that existed.
   */
  async deleteKey(nameInput: string, requestIdInput?: string): Promise<string> {
    const requestId = this.requestIdOf(requestIdInput);
    const command: DeleteKeyCommand = {
      kind: "deleteKey",
      requestId,
      name: nameInput,
      at: this.ctx.clock.now(),
    };
    const data = encodeCommand(command);
    this.requireLeader();
    this.ctx.dekKeyId();
    if (this.ackBeforeCommitVariant) return this.ackBeforeCommit(data, nameInput);
    const outcome = await this.commit(requestId, data);
    if (outcome.kind === "rejected") throw new HsmPoolError(outcome.error.code, outcome.error.message);
    if (outcome.kind !== "keyDeleted") fail("Internal", `delete applied as ${outcome.kind}`);
    return outcome.name;
  }

  /**
   * The store a write checks its preconditions against, on the primary only: a member's
   * own store may lag the log (a secondary, a new primary still applying), and a check
   * against it answered KeyNotFound for a key whose create had been acknowledged (seen as
   * a flaky REST conformance case). So: leadership first, then the ReadIndex barrier.
   * The apply re-validates every command, so this only keeps the early answers true.
   */
  private async writable(): Promise<KeyStore> {
    this.requireLeader();
    return this.readable();
  }

  /**
   * Linearizable read access to the store: ownership check, ReadIndex barrier. (The
   * broken variants skip one of them: serveWithoutOwnership, readWithoutBarrier.)
   */
  private async readable(): Promise<KeyStore> {
    if (!this.variants.has("serveWithoutOwnership")) this.ctx.dekKeyId();
    if (!this.variants.has("readWithoutBarrier")) await this.ctx.raft.readBarrier();
    return this.ctx.store();
  }

  async getKey(ref: KeyRefInput): Promise<KeyVersionView> {
    const store = await this.readable();
    this.ctx.observer?.serving?.("getKey");
    return store.get(ref.name, ref.version);
  }

  async listKeys(): Promise<KeyVersionView[]> {
    return (await this.readable()).list();
  }

  /** Every version of one key, oldest first (KeyNotFound if absent). */
  async listVersions(name: string): Promise<KeyVersionView[]> {
    return (await this.readable()).listVersions(name);
  }

  /** Authorizes `op` on the key and returns the partition key id to run it with. */
  private async keyFor(
    ref: KeyRefInput,
    op: CryptoOp,
    alg: string,
  ): Promise<{ keyId: string; version: number }> {
    const store = await this.readable();
    this.ctx.observer?.serving?.(op);
    const authorized = store.authorizeOperation(ref.name, op, alg, this.ctx.clock.now(), ref.version);
    const keyId = await this.ctx.index.ensureImported(
      this.ctx.access.session,
      store,
      this.ctx.dekKeyId(),
      authorized.name,
      authorized.version,
    );
    return { keyId, version: authorized.version };
  }

  async sign(
    ref: KeyRefInput,
    alg: string,
    data: Uint8Array,
  ): Promise<{ signature: Uint8Array; version: number }> {
    const { keyId, version } = await this.keyFor(ref, "sign", alg);
    return { signature: await this.ctx.access.session.sign(keyId, alg, data), version };
  }

  async verify(ref: KeyRefInput, alg: string, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    const { keyId } = await this.keyFor(ref, "verify", alg);
    return this.ctx.access.session.verify(keyId, alg, data, signature);
  }

  /** Key Vault REST semantics: `digest` is the hash the caller computed; it is signed as given. */
  async signDigest(
    ref: KeyRefInput,
    alg: string,
    digest: Uint8Array,
  ): Promise<{ signature: Uint8Array; version: number }> {
    const { keyId, version } = await this.keyFor(ref, "sign", alg);
    return { signature: await this.ctx.access.session.signDigest(keyId, alg, digest), version };
  }

  async verifyDigest(
    ref: KeyRefInput,
    alg: string,
    digest: Uint8Array,
    signature: Uint8Array,
  ): Promise<boolean> {
    const { keyId } = await this.keyFor(ref, "verify", alg);
    return this.ctx.access.session.verifyDigest(keyId, alg, digest, signature);
  }

  async encrypt(
    ref: KeyRefInput,
    alg: string,
    plaintext: Uint8Array,
    opts: { iv?: Uint8Array; aad?: Uint8Array },
  ): Promise<{ ciphertext: Uint8Array; iv?: Uint8Array; tag?: Uint8Array; version: number }> {
    const { keyId, version } = await this.keyFor(ref, "encrypt", alg);
    const r = await this.ctx.access.session.encrypt(keyId, alg, plaintext, opts);
    return { ...r, version };
  }

  async decrypt(
    ref: KeyRefInput,
    alg: string,
    ciphertext: Uint8Array,
    opts: { iv?: Uint8Array; tag?: Uint8Array; aad?: Uint8Array },
  ): Promise<{ plaintext: Uint8Array; version: number }> {
    const { keyId, version } = await this.keyFor(ref, "decrypt", alg);
    return { plaintext: await this.ctx.access.session.decrypt(keyId, alg, ciphertext, opts), version };
  }

  async wrapKey(
    ref: KeyRefInput,
    alg: string,
    key: Uint8Array,
  ): Promise<{ wrapped: Uint8Array; version: number }> {
    const { keyId, version } = await this.keyFor(ref, "wrapKey", alg);
    return { wrapped: await this.ctx.access.session.wrapKey(keyId, alg, key), version };
  }

  async unwrapKey(
    ref: KeyRefInput,
    alg: string,
    wrapped: Uint8Array,
  ): Promise<{ key: Uint8Array; version: number }> {
    const { keyId, version } = await this.keyFor(ref, "unwrapKey", alg);
    return { key: await this.ctx.access.session.unwrapKey(keyId, alg, wrapped), version };
  }
}

/** What the HSM generates for a key of `shape` (a create, or a rotation's new version). */
function keySpecOf(shape: KeyShape, ops: KeySpec["ops"]): KeySpec {
  return shape.kty === "EC" ? { kty: "EC", crv: shape.crv, ops } : { kty: shape.kty, size: shape.size, ops };
}

/**
 * Generates a key of `spec` in the partition and wraps it under the DEK (what a create
 * needs of the HSM). A session object, not persisted by the HSM: the create's log entry
 * carries it wrapped and is its durable copy (after a restart the partition imports it
 * from there on first use, as every other member does), so a create costs the disk no
 * HSM write beside the WAL's.
 */
export async function prepareKey(session: HsmSession, spec: KeySpec, dekKeyId: string): Promise<PreparedKey> {
  const handle = await session.generateKey(spec, { persist: false });
  try {
    const wrappedMaterial = await session.exportWrapped(handle, dekKeyId);
    const publicJwk = spec.kty === "oct" ? null : await session.getPublicJwk(handle);
    return { handle, wrappedMaterial, publicJwk };
  } catch (e) {
    await deleteHsmKeys(session, [handle.id]);
    throw e;
  }
}

/** What a create would return once applied, guessed from the current state (the broken mode only). */
function predictedView(c: CreateKeyCommand, store: KeyStore): KeyVersionView {
  const version = (store.has(c.name) ? store.get(c.name).version : 0) + 1;
  return {
    name: c.name,
    version,
    shape: c.shape,
    ops: [...c.ops],
    attributes: c.attributes,
    createdMs: c.at,
    updatedMs: c.at,
    publicJwk: c.publicJwk,
  };
}

/** RFC 7638 thumbprint of an RSA KEK's public JWK (the BYOK blob's kid when the tool had no key id). */
function thumbprintOf(jwk: PublicJwk): string {
  if (jwk.kty !== "RSA") return "";
  return rsaThumbprint(createPublicKey({ key: { ...jwk }, format: "jwk" }));
}

/** The standard public members of the HSM's JWK (no HSM key id, no key_ops: clients name keys by name). */
function publicJwkOf(jwk: Record<string, unknown>): PublicJwk {
  const members = jwk.kty === "RSA" ? ["kty", "n", "e"] : ["kty", "crv", "x", "y"];
  return validatePublicJwk(Object.fromEntries(members.map((m) => [m, jwk[m]])), "publicJwk");
}

/**
 * Runs a write's pre-check unless `requestId` already applied as this request: a retry
 * whose first attempt committed (its answer lost) would read the state that attempt
 * changed and refuse (a retried purge found no deleted key, a retried restore found the
 * key it had restored: chaos rack-loss, linearizability). Its apply answers from the
 * dedupe table instead.
 */
function unlessApplied(
  store: KeyStore,
  kind: Parameters<KeyStore["appliedAlready"]>[0],
  requestId: string | undefined,
  name: string,
  check: () => string,
): string {
  return requestId !== undefined && store.appliedAlready(kind, requestId, name) ? name : check();
}
