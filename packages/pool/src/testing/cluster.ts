/**
 * A pure, in-test pool: ownership machines and key stores of several nodes, a fake
 * Raft (an ordered committed-entry list plus a leader id) and a tiny fake HSM per
 * node. Effects are executed here, so a test reads like a transcript of the
 * protocol. The fake HSM keeps "secret" material in Maps and hands out transfer
 * blobs as opaque tokens bound to (source partition, target partition), as the real
 * ECDH-wrapped transfer is.
 */

import { bytesEqual, utf8 } from "@hsmpool/codec";
import type { Entry } from "@hsmpool/raft";
import { encodeConfChange } from "@hsmpool/raft";
import {
  createOwnershipState,
  decodeMessage,
  decodeOwnershipCheckpoint,
  encodeMessage,
  encodeOwnershipCheckpoint,
  KeyStore,
  type OwnershipCheckpoint,
  type OwnershipEffect,
  type OwnershipInput,
  type OwnershipKeyRole,
  type OwnershipMessage,
  type OwnershipPhase,
  type OwnershipState,
  ownershipCheckpoint,
  ownershipInputsOf,
  type P384PublicJwk,
  resumeOwnership,
  stepOwnership,
} from "../index.js";
import { newSigner, sign, type TestSigner } from "./fixtures.js";

export const POOL_ID = "pool-1";

interface FakeKey {
  kind: OwnershipKeyRole | "appKey";
  /** Stands in for private/secret material; must never appear on the wire or in the log. */
  secret: Uint8Array;
  signer?: TestSigner;
}

/** Transfer/wrapped blobs are registered here; the bytes that travel are only the token. */
class BlobRegistry {
  private readonly blobs = new Map<string, { key: FakeKey; keyId: string; source: string; target: string }>();
  private seq = 0;

  issue(key: FakeKey, keyId: string, source: string, target: string): Uint8Array {
    this.seq += 1;
    const token = `blob-${this.seq}`;
    this.blobs.set(token, { key, keyId, source, target });
    return utf8(token);
  }

  open(blob: Uint8Array, source: string, target: string): { key: FakeKey; keyId: string } {
    const token = new TextDecoder().decode(blob);
    const entry = this.blobs.get(token);
    if (!entry) throw new Error(`unknown blob ${token}`);
    if (entry.target !== target || entry.source !== source) {
      throw new Error(
        `blob ${token} was made for ${entry.source} -> ${entry.target}, not ${source} -> ${target}`,
      );
    }
    return entry;
  }

  isToken(bytes: Uint8Array): boolean {
    return this.blobs.has(new TextDecoder().decode(bytes));
  }
}

export class FakeHsm {
  readonly keys = new Map<string, FakeKey>();
  partitionId: string;
  transfer: TestSigner = newSigner();
  private seq = 0;
  /** When set, the next call of this kind fails (DeviceFault). */
  failNext: OwnershipEffect["kind"] | null = null;
  /** Whether the node's stored credential opens the partition (false before the first init and after wipe). */
  private initialized = false;

  constructor(
    readonly nodeId: string,
    private readonly registry: BlobRegistry,
    private readonly secrets: Uint8Array[],
  ) {
    this.partitionId = `dev-${nodeId}/p0`;
  }

  private newKey(kind: FakeKey["kind"], signer?: TestSigner): string {
    this.seq += 1;
    const keyId = `${this.nodeId}-${kind}-${this.seq}`;
    const secret = signer?.secretKey ?? crypto.getRandomValues(new Uint8Array(32));
    this.secrets.push(secret);
    this.keys.set(keyId, { kind, secret, ...(signer ? { signer } : {}) });
    return keyId;
  }

  /** Executes one effect; returns the machine's input for its result (if any). */
  run(effect: OwnershipEffect): OwnershipInput | null {
    if ("correlationId" in effect && this.failNext === effect.kind) {
      this.failNext = null;
      return {
        kind: "hsmFailed",
        correlationId: effect.correlationId,
        error: { code: "DeviceFault", message: "injected" },
      };
    }
    switch (effect.kind) {
      case "hsm.zeroizeAndInit":
        this.keys.clear();
        this.initialized = true;
        this.transfer = newSigner();
        this.secrets.push(this.transfer.secretKey);
        return {
          kind: "partitionReady",
          correlationId: effect.correlationId,
          partitionId: this.partitionId,
          transferPublicKey: this.transfer.publicKey,
        };
      case "hsm.createOwnershipKeys": {
        const root = newSigner();
        return {
          kind: "ownershipKeysCreated",
          correlationId: effect.correlationId,
          ownerRoot: { keyId: this.newKey("ownerRoot", root), publicKey: root.publicKey },
          dekKeyId: this.newKey("dek"),
          poolKeyKeyId: this.newKey("poolKey"),
        };
      }
      case "hsm.signWithOwnerRoot": {
        const key = this.keys.get(effect.keyId);
        if (!key?.signer) throw new Error(`${this.nodeId}: no signing key ${effect.keyId}`);
        return {
          kind: "signed",
          correlationId: effect.correlationId,
          signature: sign(key.signer, effect.data),
        };
      }
      case "hsm.exportForTransfer":
        return {
          kind: "transferExported",
          correlationId: effect.correlationId,
          blobs: effect.keyIds.map((id) => {
            const key = this.keys.get(id);
            if (!key) throw new Error(`${this.nodeId}: no key ${id}`);
            return this.registry.issue(key, id, this.partitionId, effect.targetPartitionId);
          }),
        };
      case "hsm.importFromTransfer":
        return {
          kind: "transferImported",
          correlationId: effect.correlationId,
          keys: effect.items.map(({ role, blob }) => {
            const { key, keyId } = this.registry.open(blob, effect.sourcePartitionId, this.partitionId);
            // Like the real HSM: an imported key keeps its id.
            this.keys.set(keyId, key);
            return { role, keyId, ...(key.signer ? { publicKey: key.signer.publicKey } : {}) };
          }),
        };
      case "hsm.deleteKeys":
        for (const id of effect.keyIds) this.keys.delete(id);
        return null;
      case "hsm.checkKeys":
        return {
          kind: "keysChecked",
          correlationId: effect.correlationId,
          partition: this.initialized
            ? { partitionId: this.partitionId, transferPublicKey: this.transfer.publicKey }
            : null,
          missingKeyIds: effect.keyIds.filter((id) => !this.initialized || !this.keys.has(id)),
        };
      default:
        return null;
    }
  }

  /** Someone zeroized the partition behind the node's back: keys and credential are gone. */
  wipe(): void {
    this.keys.clear();
    this.initialized = false;
  }

  /** The partition was zeroized and initialized again (say by an operator): new transfer key, no keys. */
  reinitialize(): void {
    this.keys.clear();
    this.transfer = newSigner();
    this.secrets.push(this.transfer.secretKey);
  }

  /** An application key wrapped under the DEK: the blob (a token) names the DEK it needs. */
  createWrappedAppKey(dekKeyId: string): Uint8Array {
    if (!this.keys.has(dekKeyId)) throw new Error(`${this.nodeId} holds no DEK ${dekKeyId}`);
    const id = this.newKey("appKey");
    const key = this.keys.get(id) as FakeKey;
    return this.registry.issue(key, id, `dek:${dekKeyId}`, `dek:${dekKeyId}`);
  }

  /** Unwraps an application key under this partition's copy of the DEK (fails without it). */
  importWrappedAppKey(blob: Uint8Array, dekKeyId: string): string {
    if (!this.keys.has(dekKeyId)) throw new Error(`${this.nodeId} holds no DEK ${dekKeyId}`);
    const { key, keyId } = this.registry.open(blob, `dek:${dekKeyId}`, `dek:${dekKeyId}`);
    this.keys.set(keyId, key);
    return keyId;
  }
}

export interface Node {
  id: string;
  state: OwnershipState;
  store: KeyStore;
  hsm: FakeHsm;
  /** Phases in the order the node went through them. */
  phases: OwnershipPhase[];
  /** Every effect the node's machine emitted. */
  effects: OwnershipEffect[];
  /**
   * The node's checkpoint file (survives restarts), kept by the shell contract: after each
   * step, a changed ownershipCheckpoint is written before any of the step's effects run.
   */
  disk: Uint8Array | null;
}

type Event =
  | { kind: "input"; to: string; input: OwnershipInput }
  | { kind: "wire"; from: string; to: string; bytes: Uint8Array };

export class Cluster {
  readonly nodes = new Map<string, Node>();
  /** Committed log; index i+1 is entries[i]. */
  readonly log: Entry[] = [];
  readonly transcript: string[] = [];
  /** Every byte string that crossed between nodes (messages) or into the log. */
  readonly wire: Uint8Array[] = [];
  /** Secret material the fake HSMs made (must never appear in `wire`). */
  readonly secrets: Uint8Array[] = [];
  readonly registry = new BlobRegistry();
  leader: string | null = null;
  term = 0;
  members: string[] = [];
  /** Nodes cut off from everyone (messages to/from them are dropped, their proposals held). */
  readonly isolated = new Set<string>();
  /** Nodes whose messages are dropped (they still apply the log). */
  readonly silenced = new Set<string>();
  /** When true, every proposal is held (not committed) until releaseHeld/append. */
  holdProposals = false;
  /** Proposals from isolated nodes (a partitioned leader's uncommitted entries). */
  readonly held: { from: string; data: Uint8Array }[] = [];
  private readonly events: Event[] = [];
  private restarts = 0;
  private termStart = new Map<number, number>();
  private nowMs = 1_700_000_000_000;

  constructor(
    ids: string[],
    readonly retryTicks = 3,
  ) {
    this.members = [...ids];
    for (const id of ids) this.addNode(id);
  }

  addNode(id: string, snapshotFrom?: string): Node {
    const hsm = new FakeHsm(id, this.registry, this.secrets);
    let store = new KeyStore({ poolId: POOL_ID });
    if (snapshotFrom) store = KeyStore.restore(this.node(snapshotFrom).store.snapshot(), { poolId: POOL_ID });
    const node: Node = {
      id,
      state: createOwnershipState({ nodeId: id, poolId: POOL_ID, retryTicks: this.retryTicks }),
      store,
      hsm,
      phases: [],
      effects: [],
      disk: null,
    };
    this.nodes.set(id, node);
    this.feed(id, { kind: "start", nowMs: this.nowMs, incarnation: `r${id}`, members: this.members });
    // A snapshot carries Genesis and the synced members: tell the machine, as the shell would.
    if (store.genesis) this.feed(id, { kind: "genesisApplied", genesis: store.genesis });
    for (const m of store.syncedMembers())
      this.feed(id, { kind: "memberSyncedApplied", memberId: m.memberId });
    return node;
  }

  /**
   * kill -9 and restart in place: the process's queued inputs and messages are lost; its
   * HSM partition and its log/key store (durable) stay. The new process resumes from
   * `checkpoint` (or starts blank without one), then learns Genesis and the synced
   * members from its store, as the shell does after replaying its log.
   */
  restart(id: string, checkpoint: OwnershipCheckpoint | null): Node {
    const node = this.node(id);
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i] as Event;
      if (e.to === id || (e.kind === "wire" && e.from === id)) this.events.splice(i, 1);
    }
    const config = { nodeId: id, poolId: POOL_ID, retryTicks: this.retryTicks };
    node.state = checkpoint ? resumeOwnership(config, checkpoint) : createOwnershipState(config);
    node.phases = [];
    node.effects = [];
    this.restarts += 1;
    this.note(`${id} restarts ${checkpoint ? "from its checkpoint" : "blank"}`);
    this.feed(id, {
      kind: "start",
      nowMs: this.nowMs,
      incarnation: `r${id}x${this.restarts}`,
      members: this.members,
    });
    if (node.store.genesis) this.feed(id, { kind: "genesisApplied", genesis: node.store.genesis });
    for (const m of node.store.syncedMembers())
      this.feed(id, { kind: "memberSyncedApplied", memberId: m.memberId });
    return node;
  }

  /** kill -9 and restart in place from whatever checkpoint the node's disk holds (see restart). */
  restartFromDisk(id: string): Node {
    const disk = this.node(id).disk;
    return this.restart(id, disk ? decodeOwnershipCheckpoint(disk) : null);
  }

  node(id: string): Node {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  note(line: string): void {
    this.transcript.push(line);
  }

  /** Steps a node's machine and queues what its effects produce. */
  feed(id: string, input: OwnershipInput): void {
    const node = this.node(id);
    const before = node.state;
    const { state, effects } = stepOwnership(before, input);
    node.state = state;
    if (node.phases.at(-1) !== state.phase) {
      node.phases.push(state.phase);
      this.note(`${id} phase ${state.phase}`);
    }
    if (
      state.phase !== before.phase ||
      state.material !== before.material ||
      state.pending !== before.pending
    )
      this.persist(node);
    for (const effect of effects) this.execute(node, effect);
  }

  /** The shell's side of the checkpoint contract: durable before the step's effects act. */
  private persist(node: Node): void {
    const checkpoint = ownershipCheckpoint(node.state);
    if (!checkpoint) return;
    const bytes = encodeOwnershipCheckpoint(checkpoint);
    if (node.disk && bytesEqual(node.disk, bytes)) return;
    node.disk = bytes;
    this.note(`${node.id} saves its ${checkpoint.phase} checkpoint`);
  }

  private execute(node: Node, effect: OwnershipEffect): void {
    node.effects.push(effect);
    switch (effect.kind) {
      case "send": {
        this.note(`${node.id} -> ${effect.to}: ${describe(effect.message)}`);
        const bytes = encodeMessage(effect.message);
        const cut = (id: string) => this.isolated.has(id) || this.silenced.has(id);
        if (cut(node.id) || cut(effect.to) || !this.nodes.has(effect.to)) return;
        this.wire.push(bytes);
        this.events.push({ kind: "wire", from: node.id, to: effect.to, bytes });
        return;
      }
      case "propose":
        this.note(`${node.id} proposes ${effect.command.kind}`);
        this.wire.push(effect.data);
        if (
          this.holdProposals ||
          this.isolated.has(node.id) ||
          this.leader === null ||
          this.isolated.has(this.leader)
        ) {
          this.held.push({ from: node.id, data: effect.data });
        } else {
          this.append(effect.data);
        }
        return;
      case "ownershipSynced":
        this.note(`${node.id} synced`);
        return;
      default: {
        this.note(`${node.id} ${effect.kind}`);
        const result = node.hsm.run(effect);
        if (result) this.events.push({ kind: "input", to: node.id, input: result });
      }
    }
  }

  append(data: Uint8Array, type: Entry["type"] = "normal"): number {
    const index = this.log.length + 1;
    this.log.push({ term: this.term, index, type, data });
    return index;
  }

  /** Commits the held proposals (in order), as a healed Raft log might. */
  releaseHeld(): void {
    for (const { data } of this.held.splice(0)) this.append(data);
  }

  /** `id` becomes leader of a new term: everyone learns it; the term's empty entry is committed. */
  elect(id: string): void {
    this.term += 1;
    this.leader = id;
    this.termStart.set(this.term, this.append(new Uint8Array(0)));
    this.note(`${id} leads term ${this.term}`);
    for (const n of this.nodes.values())
      this.feed(n.id, { kind: "leaderChanged", leader: id, term: this.term });
  }

  connectAll(): void {
    for (const n of this.nodes.values()) this.feed(n.id, { kind: "peersConnected" });
  }

  removeMember(id: string): void {
    this.members = this.members.filter((m) => m !== id);
    this.append(encodeConfChange({ type: "removeNode", node: id }), "confChange");
    for (const n of this.nodes.values())
      this.feed(n.id, { kind: "membershipChanged", members: this.members });
    this.nodes.delete(id);
  }

  addMember(id: string): void {
    this.members = [...this.members, id];
    this.append(encodeConfChange({ type: "addVoter", node: id }), "confChange");
    for (const n of this.nodes.values())
      this.feed(n.id, { kind: "membershipChanged", members: this.members });
  }

  /** Delivers events and applies the log until nothing is left to do. */
  drain(maxSteps = 10_000): void {
    for (let i = 0; i < maxSteps; i++) {
      if (this.applyLog()) continue;
      const event = this.events.shift();
      if (!event) return;
      if (!this.nodes.has(event.to)) continue;
      if (event.kind === "input") this.feed(event.to, event.input);
      else if (!this.isolated.has(event.from) && !this.isolated.has(event.to)) {
        this.feed(event.to, { kind: "message", from: event.from, message: decodeMessage(event.bytes) });
      }
    }
    throw new Error("cluster did not quiesce");
  }

  /** Applies the next committed entry on every node that is behind; true if any applied. */
  private applyLog(): boolean {
    let applied = false;
    for (const node of this.nodes.values()) {
      if (this.isolated.has(node.id)) continue;
      const entry = this.log[node.store.appliedIndex];
      if (!entry) continue;
      applied = true;
      const { outcome } = node.store.apply(entry);
      if (outcome.kind === "genesisAccepted")
        this.note(`${node.id} applies Genesis by ${outcome.genesis.proposer}`);
      if (outcome.kind === "genesisIgnored") this.note(`${node.id} ignores Genesis by ${outcome.proposer}`);
      for (const input of ownershipInputsOf(outcome)) this.feed(node.id, input);
      if (this.leader === node.id && this.termStart.get(this.term) === entry.index) {
        this.feed(node.id, { kind: "leaderCaughtUp", term: this.term });
      }
    }
    return applied;
  }

  tick(): void {
    this.nowMs += 100;
    for (const n of this.nodes.values()) this.feed(n.id, { kind: "tick", nowMs: this.nowMs });
  }

  /** Drains, ticking between rounds, until `done` holds (or fails after maxTicks). */
  runUntil(done: () => boolean, maxTicks = 100): void {
    for (let t = 0; t <= maxTicks; t++) {
      this.drain();
      if (done()) return;
      this.tick();
    }
    throw new Error(
      `condition not reached after ${maxTicks} ticks:\n${this.transcript.slice(-30).join("\n")}`,
    );
  }

  allSynced(ids = [...this.nodes.keys()]): boolean {
    return ids.every(
      (id) =>
        this.node(id).state.phase === "synced" &&
        this.node(id)
          .store.syncedMembers()
          .some((m) => m.memberId === id),
    );
  }

  /** Bytes of `needle` inside `haystack`? */
  static contains(haystack: Uint8Array, needle: Uint8Array): boolean {
    outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
      for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
      return true;
    }
    return false;
  }

  isToken(bytes: Uint8Array): boolean {
    return this.registry.isToken(bytes);
  }

  /** The owner-root key a node's partition holds (by the id its machine recorded). */
  ownerRootPublicKey(id: string): P384PublicJwk | null {
    const keyId = this.node(id).state.material.ownerRoot?.keyId;
    const key = keyId ? this.node(id).hsm.keys.get(keyId) : undefined;
    return key?.signer?.publicKey ?? null;
  }

  static sameBytes(a: Uint8Array, b: Uint8Array): boolean {
    return bytesEqual(a, b);
  }
}

function describe(m: OwnershipMessage): string {
  return m.kind === "refused" ? `refused ${m.code} (${m.reason})` : m.kind;
}
