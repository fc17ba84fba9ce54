/**
 * The KeyVault operations, transport-free. Writes: only on the primary; the key is
 * generated in this node's partition, leaves it only wrapped under the pool DEK,
 * goes into the log as a CreateKey command and is answered once that entry has
 * applied. Reads and crypto operations: on any member holding ownership, after a
 * ReadIndex barrier (linearizable), from local state and the local partition.
 */
import { fail, HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import type { KeySpec } from "@hsmpool/hsm";
import {
  type AccessCommand,
  type AccessOp,
  type ApplyOutcome,
  type CreateKeyCommand,
  type DeleteKeyCommand,
  describeQuorum,
  encodeCommand,
  type KeyStore,
  type KeyVersionView,
  type PublicJwk,
  type QuorumReport,
  validatePublicJwk,
} from "@hsmpool/pool";
import type { PartitionAccess } from "../hsm/partition-access.js";
import type { RaftDriver } from "../raft/raft-driver.js";
import type { Clock } from "../seams/clock.js";
import type { HsmSession } from "../seams/hsm.js";
import type { NodeObserver } from "../seams/observer.js";
import type { Randomness } from "../seams/random.js";
import { NO_VARIANTS, type ShellVariants } from "../seams/variants.js";
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
  async commit(requestId: string, data: Uint8Array): Promise<ApplyOutcome> {
    const outcome = this.ctx.proposals.wait(requestId);
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
    this.requireLeader();
    const dekKeyId = this.ctx.dekKeyId();
    this.ctx.observer?.serving?.("createKey");
    const session = this.ctx.access.session;
    const spec: KeySpec =
      valid.shape.kty === "EC"
        ? { kty: "EC", crv: valid.shape.crv, ops: valid.ops }
        : { kty: valid.shape.kty, size: valid.shape.size, ops: valid.ops };
    const prepared = await this.ctx.reserve.take(spec, dekKeyId);
    const handle = prepared.handle;
    this.ctx.index.markImported(handle.id);
    let outcome: ApplyOutcome;
    try {
      const wrappedMaterial = prepared.wrappedMaterial;
      const publicJwk =
        prepared.publicJwk === null ? null : publicJwkOf(prepared.publicJwk as Record<string, unknown>);
      const command: CreateKeyCommand = {
        kind: "createKey",
        requestId,
        name: valid.name,
        shape: valid.shape,
        ops: valid.ops,
        attributes: valid.attributes,
        wrappedMaterial,
        publicJwk,
        at: now,
      };
      if (this.ackBeforeCommitVariant)
        return this.ackBeforeCommit(encodeCommand(command), predictedView(command, store));
      outcome = await this.commit(requestId, encodeCommand(command));
    } catch (e) {
      // Not proposed: our key can never be stored. (After a NoQuorum timeout it may still be: keep it.)
      if (!isHsmPoolError(e, "NoQuorum")) await deleteHsmKeys(session, [handle.id]);
      throw e;
    } finally {
      this.ctx.reserve.refill(spec, dekKeyId);
    }
    // Refused, or a retried requestId that had created another key: ours is not the stored one.
    if (outcome.kind !== "keyCreated" || outcome.duplicate) await deleteHsmKeys(session, [handle.id]);
    if (outcome.kind === "rejected") throw new HsmPoolError(outcome.error.code, outcome.error.message);
    if (outcome.kind !== "keyCreated") fail("Internal", `create applied as ${outcome.kind}`);
    return this.ctx.store().get(outcome.name, outcome.version);
  }

  /**
   * Commits an access-state change (role definitions, assignments, JWKS rollover) the
   * caller was already authorised for; the rules needing the whole state (lockout,
   * roles in use) are checked on apply and come back as their error.
   */
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

/** Generates a key of `spec` in the partition and wraps it under the DEK (what a create needs of the HSM). */
export async function prepareKey(session: HsmSession, spec: KeySpec, dekKeyId: string): Promise<PreparedKey> {
  const handle = await session.generateKey(spec);
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

/** The standard public members of the HSM's JWK (no HSM key id, no key_ops: clients name keys by name). */
function publicJwkOf(jwk: Record<string, unknown>): PublicJwk {
  const members = jwk.kty === "RSA" ? ["kty", "n", "e"] : ["kty", "crv", "x", "y"];
  return validatePublicJwk(Object.fromEntries(members.map((m) => [m, jwk[m]])), "publicJwk");
}
