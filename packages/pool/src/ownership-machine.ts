/**
 * The ownership machine's shared core (ownership.ts is the entry point): the draft
 * state being stepped, the effects it emits, and the helpers the bootstrap,
 * secondary-sync, serving and restart paths all use. Not exported from the package.
 */
import { fail } from "@hsmpool/errors";
import { encodeCommand, type PoolCommand, validateCommand } from "./commands.js";
import { compareStrings } from "./jwk.js";
import type {
  HsmError,
  OwnershipEffect,
  OwnershipMaterial,
  OwnershipState,
  Pending,
  PendingStep,
} from "./ownership-types.js";

/** A mutable draft of the state while one input is handled. */
export type Draft = { -readonly [K in keyof OwnershipState]: OwnershipState[K] };

export const NO_MATERIAL: OwnershipMaterial = Object.freeze({
  ownerRoot: null,
  ownerRootCert: null,
  dek: null,
  poolKey: null,
  partitionCert: null,
});

/** The state being stepped plus the effects emitted so far, and the helpers every path shares. */
export class Machine {
  readonly effects: OwnershipEffect[] = [];

  constructor(readonly s: Draft) {}

  get self(): string {
    return this.s.config.nodeId;
  }

  nextId(): string {
    this.s.seq += 1;
    return `${this.self}:${this.s.incarnation}:${this.s.seq}`;
  }

  emit(effect: OwnershipEffect): void {
    this.effects.push(effect);
  }

  setPending(step: PendingStep, fields: Partial<Omit<Pending, "step">> = {}): Pending {
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

  deadline(): number {
    return this.s.tick + this.s.config.retryTicks;
  }

  setMaterial(changes: Partial<OwnershipMaterial>): void {
    this.s.material = Object.freeze({ ...this.s.material, ...changes });
  }

  note(code: HsmError["code"], message: string): void {
    this.s.lastError = Object.freeze({ code, message });
  }

  isPending(step: PendingStep, correlationId: unknown): boolean {
    return this.s.pending?.step === step && this.s.pending.correlationId === correlationId;
  }

  isCaughtUpLeader(): boolean {
    return this.s.leader === this.self && this.s.caughtUpTerm === this.s.term && this.s.term > 0;
  }

  partition(): NonNullable<OwnershipState["partition"]> {
    return this.s.partition ?? fail("Internal", `${this.self} has no initialized partition`);
  }

  propose(command: PoolCommand): void {
    const valid = validateCommand(command);
    this.emit({ kind: "propose", command: valid, data: encodeCommand(valid) });
  }

  heldKeyIds(): Set<string> {
    const m = this.s.material;
    return new Set([m.ownerRoot?.keyId, m.dek?.keyId, m.poolKey?.keyId].filter((id): id is string => !!id));
  }

  /** Keep the current step but re-issue it at the next deadline (with the next server for requests). */
  retryLater(code: HsmError["code"], message: string): void {
    this.note(code, message);
    const pending = this.s.pending;
    if (pending) this.s.pending = Object.freeze({ ...pending, deadlineTick: this.deadline() });
  }
}

export function uniqueSorted(ids: readonly string[]): string[] {
  return [...new Set(ids)].sort(compareStrings);
}

export function uniqueInOrder(ids: readonly string[]): string[] {
  return [...new Set(ids)];
}

/** Synced, and (after a restart) its partition was confirmed to still hold the keys. */
export function holdsOwnership(state: OwnershipState): boolean {
  return state.phase === "synced" && state.pending?.step !== "verifyKeys";
}

export function progressOf(state: OwnershipState): string {
  return state.pending?.step === "verifyKeys"
    ? "restarted; checking its partition still holds the pool's keys"
    : `phase ${state.phase}`;
}
