/**
 * The per-node ownership/bootstrap state machine: inputs → (new state, effects).
 *
 * Primary path (leader of a pool with no committed Genesis, after it has applied its
 * term's first entry): make owner root + DEK + pool key in its partition, self-sign
 * the owner root certificate, certify its own partition, propose Genesis. The first
 * committed Genesis wins; a loser deletes its material and syncs like a secondary.
 *
 * Secondary path (any other member once Genesis is committed): ask a synced member
 * for the owner root key (ECDH-wrapped to this partition), check it is the key of
 * the committed owner root certificate, certify its own partition with it, present
 * that certificate to get the DEK and pool key (ECDH-wrapped), check their
 * fingerprints against Genesis, announce MemberOwnershipSynced.
 *
 * Serving side: only a synced member serves; only to current Raft members; the DEK
 * only to a partition whose certificate chains to this pool's owner root.
 *
 * Restart path (resumeOwnership, ownership-checkpoint.ts): a member restarted in place
 * starts "synced" (or, if it crashed with its own Genesis proposed and undecided,
 * "ownershipProposed") with pending "verifyKeys"; `start` asks the shell to check that its
 * partition still holds the checkpoint's keys. Only a definite "yes" restores ownership
 * (or, for a proposer, lets it wait for the committed Genesis with its material: its own
 * → synced, another's → discard and sync as a secondary); a definite "no" falls back to
 * the blank path (zeroize, re-sync from a synced peer); an HSM failure is retried, never
 * taken as "no" — if every member zeroized on a transient fault at once, the pool's DEK
 * would be gone. Until the answer comes, nothing is served, proposed or discarded.
 *
 * No clocks, no randomness: time and the run's random incarnation id come in as
 * inputs, retries are counted in ticks.
 */
import { fail, isHsmPoolError } from "@hsmpool/errors";
import {
  certificateFingerprint,
  certificateSigningBytes,
  keyFingerprint,
  type PoolCertificate,
  publicKeyFingerprint,
  signatureValid,
  type UnsignedCertificate,
  validateCertificate,
  verifyPartitionCertificate,
} from "./certificate.js";
import { encodeCommand, type GenesisCommand, type PoolCommand, validateCommand } from "./commands.js";
import { compareStrings, type P384PublicJwk, sameJwk, validateP384Jwk } from "./jwk.js";
import {
  type DekRequest,
  type OwnershipMessage,
  type OwnershipRequest,
  validateMessage,
} from "./messages.js";
import type {
  HsmError,
  OwnershipConfig,
  OwnershipEffect,
  OwnershipInput,
  OwnershipMaterial,
  OwnershipState,
  OwnershipStep,
  Pending,
  PendingStep,
  Serving,
} from "./ownership-types.js";
import { bad, requireBytes, requireIdentifier, requireKeyId, requireTimeMs } from "./validate.js";

const NO_MATERIAL: OwnershipMaterial = Object.freeze({
  ownerRoot: null,
  ownerRootCert: null,
  dek: null,
  poolKey: null,
  partitionCert: null,
});

/** A fresh machine for a blank member. Feed `start` first. */
export function createOwnershipState(config: OwnershipConfig): OwnershipState {
  const retryTicks = config.retryTicks;
  if (!Number.isSafeInteger(retryTicks) || retryTicks < 1)
    bad("retryTicks", "retryTicks must be an integer >= 1");
  const maxConcurrentServes = config.maxConcurrentServes ?? 16;
  if (!Number.isSafeInteger(maxConcurrentServes) || maxConcurrentServes < 1) {
    bad("maxConcurrentServes", "maxConcurrentServes must be an integer >= 1");
  }
  return Object.freeze({
    config: Object.freeze({
      nodeId: requireIdentifier(config.nodeId, "nodeId"),
      poolId: requireIdentifier(config.poolId, "poolId"),
      retryTicks,
      maxConcurrentServes,
    }),
    phase: "initializingPartition",
    started: false,
    incarnation: "",
    seq: 0,
    tick: 0,
    nowMs: 0,
    peersConnected: false,
    leader: null,
    term: 0,
    caughtUpTerm: 0,
    members: [],
    partition: null,
    genesis: null,
    syncedMembers: [],
    material: NO_MATERIAL,
    pending: null,
    serving: [],
    lastError: null,
  });
}

type Draft = { -readonly [K in keyof OwnershipState]: OwnershipState[K] };

/** One step of the machine. Invalid inputs throw BadParameter and change nothing (the state is immutable). */
export function stepOwnership(state: OwnershipState, input: OwnershipInput): OwnershipStep {
  const m = new Machine({ ...state });
  m.handle(input);
  return { state: Object.freeze(m.s), effects: m.effects };
}

class Machine {
  readonly effects: OwnershipEffect[] = [];

  constructor(readonly s: Draft) {}

  private get self(): string {
    return this.s.config.nodeId;
  }

  private nextId(): string {
    this.s.seq += 1;
    return `${this.self}:${this.s.incarnation}:${this.s.seq}`;
  }

  private emit(effect: OwnershipEffect): void {
    this.effects.push(effect);
  }

  private setPending(step: PendingStep, fields: Partial<Omit<Pending, "step">> = {}): Pending {
    const pending: Pending = Object.freeze({
      step,
      correlationId: "",
      deadlineTick: null,
      target: null,
      attempt: 0,
      unsigned: null,
      ...fields,
    });
    this.s.pending = pending;
    return pending;
  }

  private deadline(): number {
    return this.s.tick + this.s.config.retryTicks;
  }

  private setMaterial(changes: Partial<OwnershipMaterial>): void {
    this.s.material = Object.freeze({ ...this.s.material, ...changes });
  }

  private note(code: HsmError["code"], message: string): void {
    this.s.lastError = Object.freeze({ code, message });
  }

  handle(input: OwnershipInput): void {
    if (typeof input !== "object" || input === null) bad("input", "ownership input must be an object");
    if (input.kind !== "start" && !this.s.started) {
      fail("NotInitialized", `ownership machine of ${this.self} got ${input.kind} before start`);
    }
    switch (input.kind) {
      case "start":
        this.onStart(input);
        return;
      case "tick":
        this.onTick(requireTimeMs(input.nowMs, "nowMs"));
        return;
      case "partitionReady":
        this.onPartitionReady(input);
        return;
      case "peersConnected":
        this.s.peersConnected = true;
        if (this.s.phase === "connecting") this.s.phase = "electing";
        this.advance();
        return;
      case "leaderChanged":
        this.onLeaderChanged(input);
        return;
      case "leaderCaughtUp":
        if (this.s.leader === this.self && input.term === this.s.term) this.s.caughtUpTerm = input.term;
        this.advance();
        return;
      case "membershipChanged":
        this.s.members = uniqueSorted(input.members.map((id) => requireIdentifier(id, "members[]")));
        return;
      case "genesisApplied":
        this.onGenesis(input.genesis);
        return;
      case "memberSyncedApplied":
        this.onMemberSynced(requireIdentifier(input.memberId, "memberId"));
        return;
      case "memberRemovedApplied": {
        const id = requireIdentifier(input.memberId, "memberId");
        this.s.syncedMembers = this.s.syncedMembers.filter((m) => m !== id);
        return;
      }
      case "ownershipKeysCreated":
        this.onKeysCreated(input);
        return;
      case "signed":
        this.onSigned(input.correlationId, input.signature);
        return;
      case "transferExported":
        this.onExported(input.correlationId, input.blobs);
        return;
      case "transferImported":
        this.onImported(input);
        return;
      case "keysChecked":
        this.onKeysChecked(input);
        return;
      case "hsmFailed":
        this.onHsmFailed(input.correlationId, input.error);
        return;
      case "message":
        this.onMessage(requireIdentifier(input.from, "from"), validateMessage(input.message));
        return;
      default:
        bad("input", `unknown ownership input ${JSON.stringify((input as { kind?: unknown }).kind)}`);
    }
  }

  // --- start, partition, leadership ---

  private onStart(input: Extract<OwnershipInput, { kind: "start" }>): void {
    if (this.s.started) bad("input", `ownership machine of ${this.self} was already started`);
    const incarnation = requireIdentifier(input.incarnation, "incarnation");
    if (incarnation.length > 32 || incarnation.includes(":")) {
      bad("incarnation", "incarnation must be at most 32 characters and contain no ':'");
    }
    this.s.started = true;
    this.s.incarnation = incarnation;
    this.s.nowMs = requireTimeMs(input.nowMs, "nowMs");
    this.s.members = uniqueSorted(input.members.map((id) => requireIdentifier(id, "members[]")));
    if (this.s.pending?.step === "verifyKeys") this.startKeyCheck();
    else this.startZeroize();
  }

  private startZeroize(): void {
    const correlationId = this.nextId();
    this.setPending("zeroizeAndInit", { correlationId });
    this.emit({ kind: "hsm.zeroizeAndInit", correlationId });
  }

  // --- restart path ---

  private heldKeyIdList(): string[] {
    const m = this.s.material;
    return [
      m.ownerRoot?.keyId ?? fail("Internal", "resumed without an owner root key"),
      m.dek?.keyId ?? fail("Internal", "resumed without a DEK"),
      m.poolKey?.keyId ?? fail("Internal", "resumed without a pool key"),
    ];
  }

  private startKeyCheck(): void {
    const correlationId = this.nextId();
    this.setPending("verifyKeys", { correlationId });
    this.emit({
      kind: "hsm.checkKeys",
      correlationId,
      partitionId: this.partition().partitionId,
      keyIds: this.heldKeyIdList(),
    });
  }

  private onKeysChecked(input: Extract<OwnershipInput, { kind: "keysChecked" }>): void {
    const found =
      input.partition === null
        ? null
        : {
            partitionId: requireIdentifier(input.partition?.partitionId, "partition.partitionId"),
            transferPublicKey: validateP384Jwk(
              input.partition?.transferPublicKey,
              "partition.transferPublicKey",
            ),
          };
    if (!Array.isArray(input.missingKeyIds)) bad("missingKeyIds", "missingKeyIds must be a list");
    const missing = input.missingKeyIds.map((id, i) => requireKeyId(id, `missingKeyIds[${i}]`));
    if (!this.isPending("verifyKeys", input.correlationId)) return;
    const asked = this.heldKeyIdList();
    const stranger = missing.find((id) => !asked.includes(id));
    if (stranger !== undefined) bad("missingKeyIds", `key ${stranger} was not asked about`);
    const expected = this.partition();
    const problem =
      found === null
        ? "the stored partition credential opens no partition (zeroized or device replaced)"
        : found.partitionId !== expected.partitionId
          ? `the credential opens partition ${found.partitionId}, not ${expected.partitionId}`
          : !sameJwk(found.transferPublicKey, expected.transferPublicKey)
            ? `partition ${found.partitionId} has a new transfer key (it was re-initialized)`
            : missing.length > 0
              ? `partition ${found.partitionId} no longer holds key(s) ${missing.join(", ")}`
              : null;
    if (problem !== null) {
      this.fallBackToBlank(problem);
      return;
    }
    this.s.lastError = null;
    if (this.s.phase === "ownershipProposed") {
      // A proposer's material is intact: the committed Genesis (now or later) decides its fate.
      this.s.pending = null;
      this.advance();
      return;
    }
    this.emitSynced();
    // The log (replayed by the shell) usually already records this member as synced;
    // announce again only if it still does not by the deadline.
    if (this.s.syncedMembers.includes(this.self)) this.s.pending = null;
    else this.setPending("announceSynced", { deadlineTick: this.deadline() });
  }

  /** The checkpoint's keys are gone: start over as a blank member (Genesis and the log's facts stay). */
  private fallBackToBlank(problem: string): void {
    const what = this.s.phase === "ownershipProposed" ? "its proposed Genesis material" : "ownership";
    this.note("KeyNotFound", `cannot resume ${what} from the checkpoint: ${problem}; re-syncing`);
    // No hsm.deleteKeys: zeroizing wipes whatever is left in the partition.
    this.s.material = NO_MATERIAL;
    this.s.partition = null;
    this.s.phase = "initializingPartition";
    this.startZeroize();
  }

  private onPartitionReady(input: Extract<OwnershipInput, { kind: "partitionReady" }>): void {
    if (!this.isPending("zeroizeAndInit", input.correlationId)) return;
    this.s.partition = Object.freeze({
      partitionId: requireIdentifier(input.partitionId, "partitionId"),
      transferPublicKey: validateP384Jwk(input.transferPublicKey, "transferPublicKey"),
    });
    this.s.pending = null;
    this.s.phase = this.s.peersConnected || this.s.leader !== null ? "electing" : "connecting";
    this.advance();
  }

  private onLeaderChanged(input: Extract<OwnershipInput, { kind: "leaderChanged" }>): void {
    if (!Number.isSafeInteger(input.term) || input.term < 0)
      bad("term", "term must be a non-negative integer");
    this.s.leader = input.leader === null ? null : requireIdentifier(input.leader, "leader");
    this.s.term = input.term;
    if (this.s.phase === "connecting" && this.s.leader !== null) this.s.phase = "electing";
    this.advance();
  }

  private isPending(step: PendingStep, correlationId: unknown): boolean {
    return this.s.pending?.step === step && this.s.pending.correlationId === correlationId;
  }

  private isCaughtUpLeader(): boolean {
    return this.s.leader === this.self && this.s.caughtUpTerm === this.s.term && this.s.term > 0;
  }

  /** Decides what to do next whenever leadership, Genesis or this node's material changed. */
  private advance(): void {
    const { phase, genesis } = this.s;
    if (phase === "initializingPartition" || phase === "connecting") return;
    // Restarted: until the partition is confirmed, its material may be neither used nor discarded.
    if (this.s.pending?.step === "verifyKeys") return;
    const onPrimaryPath =
      phase === "electing" || phase === "creatingOwnership" || phase === "ownershipProposed";
    if (genesis) {
      if (!onPrimaryPath) return;
      if (this.holdsGenesisMaterial(genesis)) {
        this.becomeSynced();
        return;
      }
      if (this.s.material.ownerRoot || this.s.pending?.step === "createOwnershipKeys") {
        this.note("Conflict", `another member's Genesis (by ${genesis.proposer}) was committed first`);
      }
      this.discardMaterial();
      this.startRequestingOwnerRoot(0);
      return;
    }
    if (!this.isCaughtUpLeader()) return;
    if (phase === "electing") {
      if (this.hasCompleteMaterial()) {
        this.proposeGenesis();
        return;
      }
      this.startCreatingOwnership();
      return;
    }
    if (phase === "ownershipProposed" && this.s.pending?.step !== "proposeGenesis") this.proposeGenesis();
  }

  private holdsGenesisMaterial(genesis: GenesisCommand): boolean {
    const { ownerRootCert, dek, poolKey, partitionCert } = this.s.material;
    return (
      ownerRootCert !== null &&
      partitionCert !== null &&
      certificateFingerprint(ownerRootCert) === certificateFingerprint(genesis.ownerRootCert) &&
      dek?.fingerprint === genesis.dekFingerprint &&
      poolKey?.fingerprint === genesis.poolKeyFingerprint
    );
  }

  private hasCompleteMaterial(): boolean {
    const m = this.s.material;
    return (
      m.ownerRoot !== null &&
      m.ownerRootCert !== null &&
      m.dek !== null &&
      m.poolKey !== null &&
      m.partitionCert !== null
    );
  }

  /** Deletes every pool key this partition holds (they belong to a Genesis that lost, or were never confirmed). */
  private discardMaterial(): void {
    const m = this.s.material;
    const keyIds = [m.ownerRoot?.keyId, m.dek?.keyId, m.poolKey?.keyId].filter((id): id is string => !!id);
    if (keyIds.length > 0) this.emit({ kind: "hsm.deleteKeys", keyIds });
    this.s.material = NO_MATERIAL;
    this.s.pending = null;
  }

  // --- primary path ---

  private startCreatingOwnership(): void {
    this.s.phase = "creatingOwnership";
    const correlationId = this.nextId();
    this.setPending("createOwnershipKeys", { correlationId });
    this.emit({ kind: "hsm.createOwnershipKeys", correlationId });
  }

  private onKeysCreated(input: Extract<OwnershipInput, { kind: "ownershipKeysCreated" }>): void {
    const ownerRoot = {
      keyId: requireKeyId(input.ownerRoot?.keyId, "ownerRoot.keyId"),
      publicKey: validateP384Jwk(input.ownerRoot?.publicKey, "ownerRoot.publicKey"),
    };
    const dekKeyId = requireKeyId(input.dekKeyId, "dekKeyId");
    const poolKeyKeyId = requireKeyId(input.poolKeyKeyId, "poolKeyKeyId");
    if (!this.isPending("createOwnershipKeys", input.correlationId) || this.s.phase !== "creatingOwnership") {
      // Made for a creation that was abandoned (another Genesis won meanwhile): not ours to keep.
      this.emit({ kind: "hsm.deleteKeys", keyIds: [ownerRoot.keyId, dekKeyId, poolKeyKeyId] });
      return;
    }
    this.setMaterial({
      ownerRoot: Object.freeze(ownerRoot),
      dek: Object.freeze({ keyId: dekKeyId, fingerprint: keyFingerprint(dekKeyId) }),
      poolKey: Object.freeze({ keyId: poolKeyKeyId, fingerprint: keyFingerprint(poolKeyKeyId) }),
    });
    this.startSigning("signOwnerRootCert", {
      role: "ownerRoot",
      poolId: this.s.config.poolId,
      subject: this.self,
      partitionId: this.partition().partitionId,
      publicKey: ownerRoot.publicKey,
      issuerFingerprint: publicKeyFingerprint(ownerRoot.publicKey),
    });
  }

  private partition(): NonNullable<OwnershipState["partition"]> {
    return this.s.partition ?? fail("Internal", `${this.self} has no initialized partition`);
  }

  private startSigning(step: "signOwnerRootCert" | "signPartitionCert", unsigned: UnsignedCertificate): void {
    const keyId =
      this.s.material.ownerRoot?.keyId ?? fail("Internal", `${this.self} holds no owner root key`);
    const correlationId = this.nextId();
    this.setPending(step, { correlationId, unsigned });
    this.emit({
      kind: "hsm.signWithOwnerRoot",
      correlationId,
      keyId,
      data: certificateSigningBytes(unsigned),
    });
  }

  private ownPartitionCertBody(): UnsignedCertificate {
    const rootKey = this.s.material.ownerRoot?.publicKey ?? fail("Internal", "no owner root key");
    const { partitionId, transferPublicKey } = this.partition();
    return {
      role: "partition",
      poolId: this.s.config.poolId,
      subject: this.self,
      partitionId,
      publicKey: transferPublicKey,
      issuerFingerprint: publicKeyFingerprint(rootKey),
    };
  }

  private onSigned(correlationId: string, signature: Uint8Array): void {
    const pending = this.s.pending;
    const step = pending?.step;
    if (
      (step !== "signOwnerRootCert" && step !== "signPartitionCert") ||
      pending?.correlationId !== correlationId
    ) {
      return;
    }
    const unsigned = pending.unsigned ?? fail("Internal", "sign step without a certificate body");
    const cert = validateCertificate({ ...unsigned, signature }, "signed certificate");
    const rootKey = this.s.material.ownerRoot?.publicKey ?? fail("Internal", "no owner root key");
    if (!signatureValid(cert, rootKey)) {
      // The HSM signed with a key other than the owner root, or returned garbage: retry later.
      this.onHsmFailed(correlationId, {
        code: "DeviceFault",
        message: "the HSM's signature does not verify under the owner root key",
      });
    }
    if (step === "signOwnerRootCert") {
      this.setMaterial({ ownerRootCert: cert });
      this.startSigning("signPartitionCert", this.ownPartitionCertBody());
      return;
    }
    this.setMaterial({ partitionCert: cert });
    if (this.s.phase === "creatingOwnership") {
      this.proposeGenesis();
      return;
    }
    this.s.phase = "receivingDek";
    this.sendDekRequest(0, this.s.pending?.target ?? null);
  }

  private proposeGenesis(): void {
    this.s.phase = "ownershipProposed";
    this.setPending("proposeGenesis", { deadlineTick: this.deadline() });
    if (!this.isCaughtUpLeader()) return; // wait: only a caught-up leader may establish the pool
    const m = this.s.material;
    this.propose({
      kind: "genesis",
      poolId: this.s.config.poolId,
      ownerRootCert: m.ownerRootCert ?? fail("Internal", "no owner root certificate"),
      dekFingerprint: m.dek?.fingerprint ?? fail("Internal", "no DEK"),
      poolKeyFingerprint: m.poolKey?.fingerprint ?? fail("Internal", "no pool key"),
      proposer: this.self,
      at: this.s.nowMs,
    });
  }

  private propose(command: PoolCommand): void {
    const valid = validateCommand(command);
    this.emit({ kind: "propose", command: valid, data: encodeCommand(valid) });
  }

  // --- secondary path ---

  /** Synced members that can serve, the leader first, excluding this node; rotated by attempt. */
  private chooseServer(attempt: number): string | null {
    const { genesis, leader, members } = this.s;
    const known = new Set([...this.s.syncedMembers, ...(genesis ? [genesis.proposer] : [])]);
    const ordered = [
      ...(leader !== null && known.has(leader) ? [leader] : []),
      ...[...known].sort(compareStrings),
    ];
    const candidates = uniqueInOrder(ordered).filter(
      (id) => id !== this.self && (members.length === 0 || members.includes(id)),
    );
    return candidates.length === 0 ? null : (candidates[attempt % candidates.length] ?? null);
  }

  private startRequestingOwnerRoot(attempt: number): void {
    this.s.phase = "requestingOwnerRoot";
    const target = this.chooseServer(attempt);
    if (target === null) {
      this.setPending("awaitOwnerRoot", { deadlineTick: this.deadline(), attempt });
      return;
    }
    const { partitionId, transferPublicKey } = this.partition();
    const nonce = this.nextId();
    this.setPending("awaitOwnerRoot", {
      correlationId: nonce,
      deadlineTick: this.deadline(),
      target,
      attempt,
    });
    this.emit({
      kind: "send",
      to: target,
      message: {
        kind: "ownershipRequest",
        poolId: this.s.config.poolId,
        nonce,
        partitionId,
        transferPublicKey,
      },
    });
  }

  private sendDekRequest(attempt: number, preferred: string | null): void {
    const target = preferred ?? this.chooseServer(attempt);
    const partitionCert = this.s.material.partitionCert ?? fail("Internal", "no partition certificate");
    if (target === null) {
      this.setPending("awaitDek", { deadlineTick: this.deadline(), attempt });
      return;
    }
    const nonce = this.nextId();
    this.setPending("awaitDek", { correlationId: nonce, deadlineTick: this.deadline(), target, attempt });
    this.emit({
      kind: "send",
      to: target,
      message: { kind: "dekRequest", poolId: this.s.config.poolId, nonce, partitionCert },
    });
  }

  /** Checks a server's partition certificate against the committed owner root; null if it fails. */
  private verifiedSource(from: string, cert: PoolCertificate): PoolCertificate | null {
    const genesis = this.s.genesis;
    if (!genesis) return null;
    try {
      verifyPartitionCertificate(cert, genesis.ownerRootCert);
      if (cert.subject !== from)
        fail("Forbidden", `certificate subject ${cert.subject} is not the sender ${from}`);
      return cert;
    } catch (e) {
      if (!isHsmPoolError(e)) throw e;
      this.note(e.code, `answer from ${from} refused: ${e.message}`);
      return null;
    }
  }

  private onResponse(from: string, message: Exclude<OwnershipMessage, OwnershipRequest | DekRequest>): void {
    const pending = this.s.pending;
    const waiting = pending?.step === "awaitOwnerRoot" || pending?.step === "awaitDek";
    if (!waiting || pending.correlationId !== message.nonce || pending.target !== from) return;
    if (message.kind === "refused") {
      this.note(message.code, `${from} refused: ${message.reason}`);
      return; // re-sent to the next candidate at the deadline
    }
    if (message.kind === "ownershipResponse" && pending.step === "awaitOwnerRoot") {
      const source = this.verifiedSource(from, message.sourcePartitionCert);
      if (!source) return;
      const correlationId = this.nextId();
      this.setPending("importOwnerRoot", { correlationId, target: from, attempt: pending.attempt });
      this.emit({
        kind: "hsm.importFromTransfer",
        correlationId,
        items: [{ role: "ownerRoot", blob: message.ownerRootBlob }],
        sourcePartitionId: source.partitionId,
        sourceTransferPublicKey: source.publicKey,
      });
      return;
    }
    if (message.kind === "dekResponse" && pending.step === "awaitDek") {
      const source = this.verifiedSource(from, message.sourcePartitionCert);
      if (!source) return;
      const correlationId = this.nextId();
      this.setPending("importDek", { correlationId, target: from, attempt: pending.attempt });
      this.emit({
        kind: "hsm.importFromTransfer",
        correlationId,
        items: [
          { role: "dek", blob: message.dekBlob },
          { role: "poolKey", blob: message.poolKeyBlob },
        ],
        sourcePartitionId: source.partitionId,
        sourceTransferPublicKey: source.publicKey,
      });
    }
  }

  private onImported(input: Extract<OwnershipInput, { kind: "transferImported" }>): void {
    if (!Array.isArray(input.keys)) bad("keys", "transferImported.keys must be a list");
    const keys = input.keys.map((k, i) => ({
      role: k.role,
      keyId: requireKeyId(k.keyId, `keys[${i}].keyId`),
      publicKey: k.publicKey === undefined ? undefined : validateP384Jwk(k.publicKey, `keys[${i}].publicKey`),
    }));
    const pending = this.s.pending;
    const genesis = this.s.genesis;
    const mine = this.heldKeyIds();
    const deleteUnowned = () => {
      const stray = keys.map((k) => k.keyId).filter((id) => !mine.has(id));
      if (stray.length > 0) this.emit({ kind: "hsm.deleteKeys", keyIds: stray });
    };
    const step = pending?.step;
    if (
      (step !== "importOwnerRoot" && step !== "importDek") ||
      pending?.correlationId !== input.correlationId ||
      !genesis
    ) {
      deleteUnowned();
      return;
    }
    if (step === "importOwnerRoot") {
      const root = keys.find((k) => k.role === "ownerRoot");
      if (!root?.publicKey || !sameJwk(root.publicKey, genesis.ownerRootCert.publicKey)) {
        deleteUnowned();
        this.retryLater(
          "Forbidden",
          `the owner root key from ${pending.target} is not the pool's owner root`,
        );
        return;
      }
      this.setMaterial({
        ownerRoot: Object.freeze({ keyId: root.keyId, publicKey: root.publicKey }),
        ownerRootCert: genesis.ownerRootCert,
      });
      this.s.phase = "issuingPartitionCert";
      this.startSigning("signPartitionCert", this.ownPartitionCertBody());
      this.s.pending = Object.freeze({ ...(this.s.pending as Pending), target: pending.target });
      return;
    }
    const dek = keys.find((k) => k.role === "dek");
    const poolKey = keys.find((k) => k.role === "poolKey");
    if (
      !dek ||
      !poolKey ||
      keyFingerprint(dek.keyId) !== genesis.dekFingerprint ||
      keyFingerprint(poolKey.keyId) !== genesis.poolKeyFingerprint
    ) {
      deleteUnowned();
      this.retryLater(
        "Forbidden",
        `the DEK or pool key from ${pending.target} is not the pool's (fingerprint mismatch)`,
      );
      return;
    }
    this.setMaterial({
      dek: Object.freeze({ keyId: dek.keyId, fingerprint: genesis.dekFingerprint }),
      poolKey: Object.freeze({ keyId: poolKey.keyId, fingerprint: genesis.poolKeyFingerprint }),
    });
    this.becomeSynced();
  }

  private heldKeyIds(): Set<string> {
    const m = this.s.material;
    return new Set([m.ownerRoot?.keyId, m.dek?.keyId, m.poolKey?.keyId].filter((id): id is string => !!id));
  }

  /** Keep the current step but re-issue it at the next deadline (with the next server for requests). */
  private retryLater(code: HsmError["code"], message: string): void {
    this.note(code, message);
    const pending = this.s.pending;
    if (pending) this.s.pending = Object.freeze({ ...pending, deadlineTick: this.deadline() });
  }

  private becomeSynced(): void {
    this.s.phase = "synced";
    const genesis = this.s.genesis ?? fail("Internal", "synced without Genesis");
    const partitionCert =
      this.s.material.partitionCert ?? fail("Internal", "synced without a partition certificate");
    this.setPending("announceSynced", { deadlineTick: this.deadline() });
    this.s.lastError = null;
    this.emitSynced();
    this.announceSynced(partitionCert, genesis);
  }

  private emitSynced(): void {
    const m = this.s.material;
    const genesis = this.s.genesis ?? fail("Internal", "synced without Genesis");
    this.emit({
      kind: "ownershipSynced",
      ownerRootKeyId: m.ownerRoot?.keyId ?? fail("Internal", "no owner root key"),
      dekKeyId: m.dek?.keyId ?? fail("Internal", "no DEK"),
      poolKeyKeyId: m.poolKey?.keyId ?? fail("Internal", "no pool key"),
      ownerRootFingerprint: certificateFingerprint(genesis.ownerRootCert),
      dekFingerprint: genesis.dekFingerprint,
    });
  }

  private announceSynced(partitionCert: PoolCertificate, genesis: GenesisCommand): void {
    this.propose({
      kind: "memberOwnershipSynced",
      memberId: this.self,
      partitionCertFingerprint: certificateFingerprint(partitionCert),
      dekFingerprint: genesis.dekFingerprint,
      at: this.s.nowMs,
    });
  }

  // --- log-derived inputs ---

  private onGenesis(input: GenesisCommand): void {
    const genesis = validateCommand(input);
    if (genesis.kind !== "genesis") bad("genesis", "genesisApplied needs a genesis command");
    if (genesis.poolId !== this.s.config.poolId) {
      bad(
        "genesis",
        `Genesis is for pool ${genesis.poolId}; this node belongs to pool ${this.s.config.poolId}`,
      );
    }
    const known = this.s.genesis;
    if (known) {
      if (certificateFingerprint(known.ownerRootCert) !== certificateFingerprint(genesis.ownerRootCert)) {
        fail(
          "IntegrityError",
          "two different Genesis commands were reported as committed; the log has diverged",
        );
      }
      return;
    }
    this.s.genesis = genesis;
    this.advance();
  }

  private onMemberSynced(memberId: string): void {
    this.s.syncedMembers = uniqueSorted([...this.s.syncedMembers, memberId]);
    if (memberId === this.self && this.s.pending?.step === "announceSynced") this.s.pending = null;
  }

  // --- time and failures ---

  private onTick(nowMs: number): void {
    this.s.tick += 1;
    this.s.nowMs = Math.max(this.s.nowMs, nowMs);
    const pending = this.s.pending;
    if (!pending || pending.deadlineTick === null || this.s.tick < pending.deadlineTick) return;
    this.retry(pending);
  }

  private retry(pending: Pending): void {
    const attempt = pending.attempt + 1;
    switch (pending.step) {
      case "zeroizeAndInit":
        this.startZeroize();
        return;
      case "verifyKeys":
        this.startKeyCheck();
        return;
      case "createOwnershipKeys":
        this.startCreatingOwnership();
        return;
      case "signOwnerRootCert":
      case "signPartitionCert":
        this.startSigning(pending.step, pending.unsigned ?? fail("Internal", "sign step without body"));
        this.s.pending = Object.freeze({ ...(this.s.pending as Pending), target: pending.target });
        return;
      case "proposeGenesis":
        this.proposeGenesis();
        return;
      case "awaitOwnerRoot":
      case "importOwnerRoot":
        this.startRequestingOwnerRoot(attempt);
        return;
      case "awaitDek":
      case "importDek":
        this.sendDekRequest(attempt, null);
        return;
      case "announceSynced": {
        if (this.s.syncedMembers.includes(this.self)) {
          this.s.pending = null;
          return;
        }
        this.setPending("announceSynced", { deadlineTick: this.deadline(), attempt });
        const genesis = this.s.genesis ?? fail("Internal", "synced without Genesis");
        this.announceSynced(this.s.material.partitionCert ?? fail("Internal", "no partition cert"), genesis);
        return;
      }
    }
  }

  private onHsmFailed(correlationId: string, error: HsmError): void {
    const serving = this.s.serving.find((x) => x.correlationId === correlationId);
    if (serving) {
      this.s.serving = this.s.serving.filter((x) => x !== serving);
      this.refuse(serving.to, serving.nonce, "ServiceUnavailable", `export failed: ${error.message}`);
      return;
    }
    if (this.s.pending?.correlationId !== correlationId) return;
    this.retryLater(error.code, `HSM ${this.s.pending.step} failed: ${error.message}`);
  }

  // --- serving side ---

  private onMessage(from: string, message: OwnershipMessage): void {
    switch (message.kind) {
      case "ownershipRequest":
        this.serveOwnerRoot(from, message);
        return;
      case "dekRequest":
        this.serveDek(from, message);
        return;
      default:
        this.onResponse(from, message);
        return;
    }
  }

  private refuse(to: string, nonce: string, code: HsmError["code"], reason: string): void {
    this.emit({ kind: "send", to, message: { kind: "refused", nonce, code, reason: reason.slice(0, 512) } });
  }

  /** Why this node must not serve `from` now, or null. */
  private refusalFor(from: string, poolId: string): HsmError | null {
    if (!holdsOwnership(this.s)) {
      return {
        code: "OwnershipPending",
        message: `${this.self} does not hold the pool's ownership yet (${progressOf(this.s)}); ask a synced member`,
      };
    }
    if (poolId !== this.s.config.poolId) {
      return {
        code: "Forbidden",
        message: `request is for pool ${poolId}; ${this.self} serves pool ${this.s.config.poolId}`,
      };
    }
    if (from === this.self || !this.s.members.includes(from)) {
      return {
        code: "Forbidden",
        message: `${from} is not a member of pool ${this.s.config.poolId}; only current Raft members receive ownership`,
      };
    }
    if (this.s.serving.length >= this.s.config.maxConcurrentServes) {
      return {
        code: "ServiceUnavailable",
        message: `${this.self} is serving too many requests; retry shortly`,
      };
    }
    return null;
  }

  private serveOwnerRoot(from: string, request: OwnershipRequest): void {
    const refusal = this.refusalFor(from, request.poolId);
    if (refusal) {
      this.refuse(from, request.nonce, refusal.code, refusal.message);
      return;
    }
    const keyId = this.s.material.ownerRoot?.keyId ?? fail("Internal", "synced without owner root");
    this.export(from, request.nonce, "ownerRoot", [keyId], request.partitionId, request.transferPublicKey);
  }

  private serveDek(from: string, request: DekRequest): void {
    const refusal = this.refusalFor(from, request.poolId);
    if (refusal) {
      this.refuse(from, request.nonce, refusal.code, refusal.message);
      return;
    }
    const root = this.s.material.ownerRootCert ?? fail("Internal", "synced without owner root certificate");
    const cert = request.partitionCert;
    try {
      verifyPartitionCertificate(cert, root);
    } catch (e) {
      if (!isHsmPoolError(e)) throw e;
      this.refuse(from, request.nonce, "Forbidden", `DEK refused: ${e.message}`);
      return;
    }
    if (cert.subject !== from) {
      this.refuse(
        from,
        request.nonce,
        "Forbidden",
        `DEK refused: certificate is for ${cert.subject}, not ${from}`,
      );
      return;
    }
    const m = this.s.material;
    const keyIds = [
      m.dek?.keyId ?? fail("Internal", "no DEK"),
      m.poolKey?.keyId ?? fail("Internal", "no pool key"),
    ];
    this.export(from, request.nonce, "dek", keyIds, cert.partitionId, cert.publicKey);
  }

  private export(
    to: string,
    nonce: string,
    kind: Serving["kind"],
    keyIds: string[],
    targetPartitionId: string,
    targetTransferPublicKey: P384PublicJwk,
  ): void {
    const correlationId = this.nextId();
    this.s.serving = [...this.s.serving, Object.freeze({ correlationId, to, nonce, kind })];
    this.emit({
      kind: "hsm.exportForTransfer",
      correlationId,
      keyIds,
      targetPartitionId,
      targetTransferPublicKey,
    });
  }

  private onExported(correlationId: string, blobs: Uint8Array[]): void {
    const serving = this.s.serving.find((x) => x.correlationId === correlationId);
    if (!serving) return;
    this.s.serving = this.s.serving.filter((x) => x !== serving);
    const partitionCert =
      this.s.material.partitionCert ?? fail("Internal", "synced without partition certificate");
    const expected = serving.kind === "ownerRoot" ? 1 : 2;
    if (!Array.isArray(blobs) || blobs.length !== expected) {
      bad("blobs", `transferExported for a ${serving.kind} request needs ${expected} blob(s)`);
    }
    const [first, second] = blobs.map((b, i) => requireBytes(b, `blobs[${i}]`, 64 * 1024));
    if (serving.kind === "ownerRoot") {
      this.emit({
        kind: "send",
        to: serving.to,
        message: {
          kind: "ownershipResponse",
          nonce: serving.nonce,
          ownerRootBlob: first as Uint8Array,
          sourcePartitionCert: partitionCert,
        },
      });
      return;
    }
    this.emit({
      kind: "send",
      to: serving.to,
      message: {
        kind: "dekResponse",
        nonce: serving.nonce,
        dekBlob: first as Uint8Array,
        poolKeyBlob: second as Uint8Array,
        sourcePartitionCert: partitionCert,
      },
    });
  }
}

function uniqueSorted(ids: readonly string[]): string[] {
  return [...new Set(ids)].sort(compareStrings);
}

function uniqueInOrder(ids: readonly string[]): string[] {
  return [...new Set(ids)];
}

/** Synced, and (after a restart) its partition was confirmed to still hold the keys. */
export function holdsOwnership(state: OwnershipState): boolean {
  return state.phase === "synced" && state.pending?.step !== "verifyKeys";
}

function progressOf(state: OwnershipState): string {
  return state.pending?.step === "verifyKeys"
    ? "restarted; checking its partition still holds the pool's keys"
    : `phase ${state.phase}`;
}

/** Throws OwnershipPending unless this member holds the pool's ownership (owner root, DEK, pool key). */
export function requireOwnership(state: OwnershipState): void {
  if (!holdsOwnership(state)) {
    fail(
      "OwnershipPending",
      `member ${state.config.nodeId} does not hold the pool's ownership yet (${progressOf(state)}); ` +
        "key operations run only on members that have received the DEK: retry on another member or shortly",
      { phase: state.phase },
    );
  }
}

/** A short status for dashboards and `hsmpool status`. */
export function ownershipStatus(state: OwnershipState): {
  nodeId: string;
  phase: string;
  ownerRootFingerprint: string | null;
  dekFingerprint: string | null;
  syncedMembers: string[];
  lastError: HsmError | null;
} {
  const cert = state.material.ownerRootCert;
  return {
    nodeId: state.config.nodeId,
    phase: state.phase,
    ownerRootFingerprint: cert ? certificateFingerprint(cert) : null,
    dekFingerprint: state.material.dek?.fingerprint ?? null,
    syncedMembers: [...state.syncedMembers],
    lastError: state.lastError,
  };
}
