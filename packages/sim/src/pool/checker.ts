import { isHsmPoolError } from "@hsmpool/errors";
import {
  type ApplyOutcome,
  assertNoOpWithoutOwnership,
  certificateFingerprint,
  dekFingerprintsOfSynced,
  type GenesisCommand,
  type KeyStore,
  type OwnershipCheckpoint,
  type OwnershipState,
  ownerRootsOf,
  holdsOwnership as poolHoldsOwnership,
  type SingleKeyEvent,
  type SingleKeyResult,
} from "@hsmpool/pool";
import type { InvariantName } from "../raft/invariants.js";
import { formatSimTime } from "../scheduler.js";
import { checkKeyHistory } from "./linearizability.js";
import type { SimHsmFabric, SimPartition } from "./sim-hsm.js";
import { type ClientOp, describeResult } from "./workload.js";

/**
 * The pool invariants, on top of the Raft ones (RaftChecker still watches the log):
 *
 *  one-owner-root           among members whose machine is "synced", one owner root
 *                           certificate per pool, it is the committed Genesis's, and a member
 *                           holding ownership really holds that owner-root key in its partition
 *  same-dek                 every synced member names the same DEK fingerprint, and a member
 *                           holding ownership holds the Genesis DEK's very material
 *  no-op-without-ownership  a key operation is served only by a member holding ownership
 *                           (synced and, after a restart, verified), checked when served
 *  acked-create-kept        an acknowledged create is committed with the acknowledged
 *                           version and, unless a later delete removed it, is in the final
 *                           primary's key store and every synced member's after healing
 *  linearizable-key-store   per key name, the create/delete/get/sign history has a
 *                           linearization (linearizability.ts: Wing & Gong per real-time segment)
 *  checkpoint-before-genesis  when a member proposes Genesis, its disk already holds the
 *                           provisional ownership checkpoint naming that Genesis's owner root,
 *                           DEK and pool key (persist before send: a crash right after the
 *                           proposal must not lose the only copy of committed material)
 *  liveness                 after the last fault heals: a primary, every member holding
 *                           ownership and recorded as synced, and creates commit
 *  ownership-input          the ownership machine refused an input the shell fed it
 *
 * Linearizability: a write whose client never learned the outcome is resolved from the
 * committed log (the simulator sees every apply): if its request id was applied, it took
 * effect no later than the first apply anywhere, with the applied result; if not, it never
 * took effect. Reads without an answer have no effect. So every event in the history has a
 * result and a return time, no "unknown" verdicts arise, and the search stays small.
 */

export type PoolInvariantName =
  | InvariantName
  | "one-owner-root"
  | "same-dek"
  | "no-op-without-ownership"
  | "acked-create-kept"
  | "linearizable-key-store"
  | "checkpoint-before-genesis"
  | "ownership-input";

export const POOL_INVARIANTS: readonly PoolInvariantName[] = [
  "one-owner-root",
  "same-dek",
  "no-op-without-ownership",
  "acked-create-kept",
  "linearizable-key-store",
  "checkpoint-before-genesis",
  "liveness",
];

export class PoolInvariantViolation extends Error {
  override readonly name = "PoolInvariantViolation";
  constructor(
    readonly invariant: PoolInvariantName,
    message: string,
  ) {
    super(`${invariant}: ${message}`);
  }
}

function violate(invariant: PoolInvariantName, message: string): never {
  throw new PoolInvariantViolation(invariant, message);
}

/** What the checker may look at on one member. */
export interface MemberView {
  readonly id: string;
  readonly ownership: OwnershipState | null;
  readonly partition: SimPartition;
  readonly store: KeyStore | null;
}

/** A write as the committed log applied it (first apply anywhere). */
interface CommittedWrite {
  index: number;
  kind: "create" | "delete";
  name: string;
  /** null: rejected on apply for a reason that changed nothing. */
  result: SingleKeyResult | null;
  firstAppliedUs: number;
}

/** The pool's own rule (key operations run only on such a member); false while down. */
export function holdsOwnership(state: OwnershipState | null): boolean {
  return state !== null && poolHoldsOwnership(state);
}

export class PoolChecker {
  private recordedThrough = 1;
  private committedGenesis: GenesisCommand | null = null;
  private readonly writes = new Map<string, CommittedWrite>();
  private readonly deleteIndexes = new Map<string, number[]>();
  /** Full restores: each replaces the key store with a backup's (restore-property.ts checks what comes back). */
  private readonly restoreIndexes: number[] = [];
  opsChecked = 0;

  constructor(
    readonly poolId: string,
    private readonly fabric: SimHsmFabric,
  ) {}

  get genesis(): GenesisCommand | null {
    return this.committedGenesis;
  }

  /** Entry `index` applied by some member at `nowUs` with `outcome` (only the first apply of each index counts). */
  observeApplied(index: number, outcome: ApplyOutcome, nowUs: number): void {
    if (index <= this.recordedThrough) return;
    if (index !== this.recordedThrough + 1) {
      throw new Error(`applied index ${index} recorded after ${this.recordedThrough}: a gap`);
    }
    this.recordedThrough = index;
    const record = (requestId: string, w: Omit<CommittedWrite, "index" | "firstAppliedUs">) => {
      if (!this.writes.has(requestId)) this.writes.set(requestId, { ...w, index, firstAppliedUs: nowUs });
    };
    switch (outcome.kind) {
      case "genesisAccepted":
        this.committedGenesis ??= outcome.genesis;
        return;
      case "keyCreated":
        if (!outcome.duplicate)
          record(outcome.requestId, { kind: "create", name: outcome.name, result: outcome.version });
        return;
      case "keyDeleted":
        if (outcome.duplicate) return;
        record(outcome.requestId, { kind: "delete", name: outcome.name, result: "ok" });
        this.deleteIndexes.set(outcome.name, [...(this.deleteIndexes.get(outcome.name) ?? []), index]);
        return;
      case "backupRestored":
        if (outcome.keyName === null) this.restoreIndexes.push(index);
        else
          this.deleteIndexes.set(outcome.keyName, [
            ...(this.deleteIndexes.get(outcome.keyName) ?? []),
            index,
          ]);
        return;
      case "rejected": {
        if (outcome.requestId === null) return;
        const notFound = outcome.command === "deleteKey" && outcome.error.code === "KeyNotFound";
        record(outcome.requestId, {
          kind: outcome.command === "deleteKey" ? "delete" : "create",
          name: "",
          result: notFound ? "notFound" : null,
        });
        return;
      }
      default:
        return;
    }
  }

  /** `member` proposes `genesis`; `saved` is the ownership checkpoint on its disk right now. */
  checkGenesisRecorded(member: string, genesis: GenesisCommand, saved: OwnershipCheckpoint | null): void {
    const ok =
      saved?.phase === "ownershipProposed" &&
      certificateFingerprint(saved.ownerRootCert) === certificateFingerprint(genesis.ownerRootCert) &&
      saved.dekFingerprint === genesis.dekFingerprint &&
      saved.poolKeyFingerprint === genesis.poolKeyFingerprint;
    if (!ok) {
      violate(
        "checkpoint-before-genesis",
        `${member} proposed Genesis while its disk held ${saved ? `a ${saved.phase} checkpoint of other material` : "no ownership checkpoint"}; ` +
          "a crash now would zeroize the only copy of the owner root, DEK and pool key if it commits",
      );
    }
  }

  /** After any member's ownership phase or material changed. */
  checkOwnership(members: readonly MemberView[]): void {
    const states = members.map((m) => m.ownership).filter((s): s is OwnershipState => s !== null);
    const roots = ownerRootsOf(states).get(this.poolId) ?? [];
    if (roots.length > 1) {
      const who = states
        .filter((s) => s.phase === "synced" && s.material.ownerRootCert)
        .map((s) => `${s.config.nodeId}: ${certificateFingerprint(s.material.ownerRootCert!).slice(0, 12)}`);
      violate("one-owner-root", `synced members hold ${roots.length} owner roots (${who.join(", ")})`);
    }
    const genesis = this.committedGenesis;
    if (genesis && roots.length === 1 && roots[0] !== certificateFingerprint(genesis.ownerRootCert)) {
      violate(
        "one-owner-root",
        `synced members hold owner root ${roots[0]?.slice(0, 12)}, not the committed Genesis's (by ${genesis.proposer})`,
      );
    }
    const deks = dekFingerprintsOfSynced(states);
    if (deks.length > 1) {
      violate(
        "same-dek",
        `synced members name ${deks.length} different DEKs (${deks.map((d) => d.slice(0, 12))})`,
      );
    }
    for (const m of members) {
      if (!holdsOwnership(m.ownership)) continue;
      const problem = this.physicalProblem(m);
      if (problem) violate(problem.invariant, `${m.id} holds ownership but ${problem.message}`);
    }
  }

  /** What the member's partition lacks of the pool's ownership, or null. */
  private physicalProblem(m: MemberView): { invariant: PoolInvariantName; message: string } | null {
    const s = m.ownership;
    const genesis = s?.genesis;
    if (!s || !genesis) return { invariant: "one-owner-root", message: "knows no Genesis" };
    const rootKeyId = s.material.ownerRoot?.keyId;
    const rootKey = rootKeyId ? m.partition.ownerRootPublicKeyOf(rootKeyId) : null;
    const certKey = genesis.ownerRootCert.publicKey;
    if (!rootKey || rootKey.x !== certKey.x || rootKey.y !== certKey.y) {
      return {
        invariant: "one-owner-root",
        message: "its partition does not hold the pool's owner-root key",
      };
    }
    const dekKeyId = s.material.dek?.keyId;
    const mine = dekKeyId ? m.partition.materialFingerprintOf(dekKeyId) : null;
    const truth = this.fabric.dekMaterialOf(genesis.dekFingerprint);
    if (mine === null || mine !== truth) {
      return {
        invariant: "same-dek",
        message:
          mine === null
            ? "its partition holds no DEK"
            : `its partition's DEK ${dekKeyId} is not the material the Genesis DEK was made with`,
      };
    }
    return null;
  }

  /** `member` is about to answer a key operation `op` (the answer is not a refusal). */
  served(member: MemberView, op: string): void {
    const state = member.ownership;
    try {
      assertNoOpWithoutOwnership([{ member: member.id, phase: state?.phase ?? "initializingPartition", op }]);
    } catch (e) {
      violate("no-op-without-ownership", e instanceof Error ? e.message : String(e));
    }
    if (!holdsOwnership(state)) {
      violate(
        "no-op-without-ownership",
        `${member.id} served ${op} after a restart before confirming its partition still holds the keys`,
      );
    }
    const problem = this.physicalProblem(member);
    if (problem) violate("no-op-without-ownership", `${member.id} served ${op} but ${problem.message}`);
  }

  /**
   * End of run: acknowledged creates kept (on `stores`, the final primary first), then
   * linearizability per key. `requireCaughtUp`: after healing every store must have
   * applied each acknowledged create (else that member lost it).
   */
  finalCheck(ops: readonly ClientOp[], stores: readonly MemberView[], requireCaughtUp: boolean): void {
    this.checkAckedCreates(ops, stores, requireCaughtUp);
    this.checkLinearizable(ops);
  }

  private checkAckedCreates(
    ops: readonly ClientOp[],
    stores: readonly MemberView[],
    requireCaughtUp: boolean,
  ) {
    for (const op of ops) {
      if (op.kind !== "create" || op.status !== "ok" || op.requestId === null) continue;
      const at = `acknowledged at t=${formatSimTime(op.returnUs ?? 0)}`;
      const c = this.writes.get(op.requestId);
      if (!c || c.result === null) {
        violate(
          "acked-create-kept",
          `create of ${op.name} (${op.requestId}) ${at} as ${describeResult(op.result)} was never committed`,
        );
      }
      if (c.result !== op.result) {
        violate(
          "acked-create-kept",
          `create of ${op.name} (${op.requestId}) ${at} as ${describeResult(op.result)} was committed as ${describeResult(c.result)}`,
        );
      }
      if ((this.deleteIndexes.get(op.name) ?? []).some((i) => i > c.index)) continue;
      if (this.restoreIndexes.some((i) => i > c.index)) continue;
      for (const m of stores) {
        const store = m.store;
        if (!store || store.appliedIndex < c.index) {
          if (!requireCaughtUp) continue;
          violate(
            "acked-create-kept",
            `${m.id} has applied only through index ${store?.appliedIndex ?? 0} after healing, so it lacks ${op.name} v${c.result} (index ${c.index}, ${at})`,
          );
        }
        try {
          store.get(op.name, c.result as number);
        } catch (e) {
          if (!isHsmPoolError(e, "KeyNotFound")) throw e;
          violate(
            "acked-create-kept",
            `${m.id}'s key store lacks ${op.name} v${c.result} (index ${c.index}, ${at}) and no later delete removed it`,
          );
        }
      }
    }
  }

  private checkLinearizable(ops: readonly ClientOp[]): void {
    const byName = new Map<string, { op: ClientOp; event: SingleKeyEvent }[]>();
    for (const op of ops) {
      const event = this.eventOf(op);
      if (!event) continue;
      const list = byName.get(op.name) ?? [];
      list.push({ op, event });
      byName.set(op.name, list);
    }
    for (const [name, list] of byName) {
      this.opsChecked += list.length;
      const verdict = checkKeyHistory(list.map((x) => x.event));
      if (verdict.ok) continue;
      const lines = verdict.segment.slice(-12).map((i) => {
        const { op, event } = list[i] as { op: ClientOp; event: SingleKeyEvent };
        return `${op.kind} ${formatSimTime(event.callMs)}..${formatSimTime(event.returnMs ?? 0)} -> ${describeResult(event.result)} (op ${op.id} on ${op.member}${op.status === "ok" ? "" : ", resolved from the log"})`;
      });
      const why =
        verdict.reason === "none"
          ? "has no linearization"
          : "could not be decided within the search budget (reported as a failure: with a few clients this means the harness produced a runaway history)";
      violate(
        "linearizable-key-store",
        `the history of ${name} (${list.length} operations) ${why}; the operations that cannot be ordered:\n  ${lines.join("\n  ")}`,
      );
    }
  }

  /** The op as a history event, or null when it certainly had no effect. */
  private eventOf(op: ClientOp): SingleKeyEvent | null {
    if (op.status === "ok")
      return {
        op: op.kind === "sign" ? "get" : op.kind,
        callMs: op.callUs,
        returnMs: op.returnUs,
        result: op.result,
      };
    if (op.status === "refused" || op.requestId === null) return null;
    const c = this.writes.get(op.requestId);
    if (!c || c.result === null) return null;
    return {
      op: op.kind as "create" | "delete",
      callMs: op.callUs,
      returnMs: c.firstAppliedUs,
      result: c.result,
    };
  }
}
