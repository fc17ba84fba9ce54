import { type ErrorCode, isHsmPoolError } from "@hsmpool/errors";
import {
  type ApplyOutcome,
  type CreateKeyCommand,
  type DeleteKeyCommand,
  encodeCommand,
  type KeyStore,
  type OwnershipState,
  requireOwnership,
  type SingleKeyResult,
} from "@hsmpool/pool";
import { encodeReadCtx } from "../raft/kv.js";
import type { SimRaftNode } from "../raft/node.js";
import type { SimPartition } from "./sim-hsm.js";
import type { PoolUnsafeMode } from "./unsafe.js";
import type { ClientOp } from "./workload.js";

/**
 * The key operations one member serves, as the node's KeyService does: writes
 * (create, delete) only on the primary, proposed to Raft and answered from the apply
 * path; reads (get) and signs on any member holding ownership, after a ReadIndex
 * barrier, from the local key store and the local partition. Volatile: a crash
 * loses every waiter (its client learns nothing).
 */

/** What the key service needs from its member and the harness. */
export interface KeyServiceHost {
  readonly id: string;
  readonly raft: SimRaftNode;
  readonly partition: SimPartition;
  readonly store: KeyStore;
  readonly ownership: OwnershipState | null;
  readonly unsafe: PoolUnsafeMode | undefined;
  nowMs(): number;
  nextReadId(): number;
  /**
   * Run `work` on this member's HSM, after the device's queue and latency, if the member
   * is still the same process by then; `failed` instead when the device reports a fault.
   */
  hsm(label: string, work: () => void, failed: (message: string) => void): void;
  /** About to answer `op` with a result: the checker confirms this member may serve it. */
  serving(op: string): void;
  complete(op: ClientOp, result: SingleKeyResult): void;
  refuse(op: ClientOp, code: ErrorCode, message: string): void;
  unknown(op: ClientOp, why: string): void;
}

/** Why `state` may not serve key operations, or null when it holds the pool's ownership. */
export function ownershipProblem(state: OwnershipState | null): string | null {
  if (!state) return "the member is not running";
  try {
    requireOwnership(state);
    return null;
  } catch (e) {
    if (isHsmPoolError(e, "OwnershipPending")) return e.message;
    throw e;
  }
}

const SIGN_DATA = new TextEncoder().encode("hsmpool sim: data to sign");

export class KeyService {
  private readonly writeWaiters = new Map<string, ClientOp>();
  private readonly readWaiters = new Map<number, ClientOp>();

  constructor(private readonly host: KeyServiceHost) {}

  request(op: ClientOp): void {
    switch (op.kind) {
      case "create":
        this.create(op);
        return;
      case "delete":
        this.delete(op);
        return;
      case "get":
      case "sign":
        this.read(op);
        return;
    }
  }

  /** The node is gone (crash): clients waiting on it learn nothing. */
  dropAll(why: string): void {
    for (const op of [...this.writeWaiters.values(), ...this.readWaiters.values()])
      this.host.unknown(op, why);
    this.writeWaiters.clear();
    this.readWaiters.clear();
  }

  // ---- writes ------------------------------------------------------------------

  /** Refusal before anything was proposed (the op had no effect), or null when the write may proceed. */
  private writeRefusal(): { code: ErrorCode; message: string } | null {
    const h = this.host;
    if (h.raft.role !== "leader") return { code: "NotLeader", message: `${h.id} is not the primary` };
    const problem = ownershipProblem(h.ownership);
    return problem === null ? null : { code: "OwnershipPending", message: problem };
  }

  private create(op: ClientOp): void {
    const h = this.host;
    const refusal = this.writeRefusal();
    if (refusal) {
      h.refuse(op, refusal.code, refusal.message);
      return;
    }
    const dekKeyId = h.ownership?.material.dek?.keyId as string;
    h.serving("createKey");
    const failed = (message: string) => h.refuse(op, "DeviceFault", `key generation failed: ${message}`);
    h.hsm(
      "generate+wrap",
      () => {
        let made: ReturnType<SimPartition["generateWrappedAppKey"]>;
        try {
          made = h.partition.generateWrappedAppKey(dekKeyId);
        } catch (e) {
          failed(String(e));
          return;
        }
        const command: CreateKeyCommand = {
          kind: "createKey",
          requestId: op.requestId as string,
          name: op.name,
          shape: { kty: "EC", crv: "P-256" },
          ops: ["sign", "verify"],
          attributes: { enabled: true, notBeforeMs: null, expiresMs: null, tags: {} },
          wrappedMaterial: made.wrappedMaterial,
          publicJwk: made.publicJwk,
          at: h.nowMs(),
        };
        if (!this.propose(op, encodeCommand(command))) return;
        if (h.unsafe === "ackBeforeCommit") {
          // Deliberately wrong: answer before the entry is committed, guessing the version.
          this.writeWaiters.delete(op.requestId as string);
          const latest = h.store.has(op.name) ? h.store.get(op.name).version : 0;
          h.complete(op, latest + 1);
        }
      },
      failed,
    );
  }

  private delete(op: ClientOp): void {
    const h = this.host;
    const refusal = this.writeRefusal();
    if (refusal) {
      h.refuse(op, refusal.code, refusal.message);
      return;
    }
    const command: DeleteKeyCommand = {
      kind: "deleteKey",
      requestId: op.requestId as string,
      name: op.name,
      at: h.nowMs(),
    };
    this.propose(op, encodeCommand(command));
  }

  /** Propose and wait for the apply outcome; false when Raft refused (nothing appended). */
  private propose(op: ClientOp, data: Uint8Array): boolean {
    const h = this.host;
    this.writeWaiters.set(op.requestId as string, op);
    try {
      h.raft.act((raw) => raw.propose(data));
      return true;
    } catch (e) {
      if (!isHsmPoolError(e)) throw e;
      this.writeWaiters.delete(op.requestId as string);
      h.refuse(op, e.code, e.message);
      return false;
    }
  }

  /** Every applied entry: answer the write waiting for it (the single acknowledgement path). */
  onApplied(outcome: ApplyOutcome): void {
    if (!("requestId" in outcome) || outcome.requestId === null) return;
    const op = this.writeWaiters.get(outcome.requestId);
    if (!op) return;
    this.writeWaiters.delete(outcome.requestId);
    switch (outcome.kind) {
      case "keyCreated":
        this.host.complete(op, outcome.version);
        return;
      case "keyDeleted":
        this.host.complete(op, "ok");
        return;
      case "rejected":
        if (outcome.command === "deleteKey" && outcome.error.code === "KeyNotFound") {
          this.host.complete(op, "notFound");
          return;
        }
        // Applied as a no-op: definitely without effect.
        this.host.refuse(op, outcome.error.code, outcome.error.message);
        return;
      default:
        return;
    }
  }

  // ---- reads and signs ----------------------------------------------------------

  private read(op: ClientOp): void {
    const h = this.host;
    const unsafe = h.unsafe === "serveWithoutOwnership";
    const problem = unsafe ? null : ownershipProblem(h.ownership);
    if (problem !== null) {
      h.refuse(op, "OwnershipPending", problem);
      return;
    }
    if (h.unsafe === "staleReads") {
      // Deliberately wrong: answer from the local store without a ReadIndex barrier.
      this.serveRead(op);
      return;
    }
    const readId = h.nextReadId();
    h.raft.readsAwaitingIndex.set(readId, 0);
    this.readWaiters.set(readId, op);
    try {
      h.raft.act((raw) => raw.readIndex(encodeReadCtx(readId)));
    } catch (e) {
      if (!isHsmPoolError(e)) throw e;
      h.raft.readsAwaitingIndex.delete(readId);
      this.readWaiters.delete(readId);
      h.refuse(op, e.code, e.message);
    }
  }

  /** The ReadIndex barrier of `readId` passed (applied >= read index). */
  onReadServed(readId: number): void {
    const op = this.readWaiters.get(readId);
    if (!op) return;
    this.readWaiters.delete(readId);
    this.serveRead(op);
  }

  private serveRead(op: ClientOp): void {
    const h = this.host;
    const store = h.store;
    if (op.kind === "get") {
      const version = this.latestVersion(store, op.name);
      h.serving("getKey");
      h.complete(op, version);
      return;
    }
    let version: number;
    try {
      version = store.authorizeOperation(op.name, "sign", "ES256", h.nowMs()).version;
    } catch (e) {
      if (!isHsmPoolError(e, "KeyNotFound")) throw e;
      h.serving("sign");
      h.complete(op, "notFound");
      return;
    }
    const wrapped = store.wrappedMaterialOf(op.name, version);
    const dekKeyId = h.ownership?.material.dek?.keyId ?? "none";
    h.serving("sign");
    const failed = (message: string) => h.refuse(op, "DeviceFault", `sign failed: ${message}`);
    h.hsm(
      "sign",
      () => {
        try {
          h.partition.signWithAppKey(wrapped, dekKeyId, SIGN_DATA);
        } catch (e) {
          failed(String(e));
          return;
        }
        h.complete(op, version);
      },
      failed,
    );
  }

  private latestVersion(store: KeyStore, name: string): SingleKeyResult {
    return store.has(name) ? store.get(name).version : "notFound";
  }
}
