/**
 * Drives the pool's pure ownership state machine: feeds it inputs one at a time,
 * persists its durable part before acting on a step, and executes its effects —
 * HSM calls (in order, on their own queue, results fed back as inputs), proposals
 * to Raft, and messages to peers.
 *
 * Messages map onto the unary `Ownership.Exchange` RPC: a request the machine sends
 * becomes a call whose answer is fed back as a message from that peer; a request a
 * peer sends us is fed in as a message, and the call is answered with the machine's
 * reply to that nonce (it may come after an HSM export) or fails after a timeout.
 */
import { fail, HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import {
  createOwnershipState,
  decodeMessage,
  encodeMessage,
  type OwnershipCheckpoint,
  type OwnershipEffect,
  type OwnershipInput,
  type OwnershipMessage,
  type OwnershipState,
  type OwnershipStep,
  ownershipCheckpoint,
  resumeOwnership,
  stepOwnership,
} from "@hsmpool/pool";
import type { Logger } from "pino";
import type { PartitionAccess } from "../hsm/partition-access.js";
import type { Clock, TimerId } from "../seams/clock.js";
import type { NodeObserver } from "../seams/observer.js";
import type { Randomness } from "../seams/random.js";
import { NO_VARIANTS, type ShellVariants } from "../seams/variants.js";
import type { CheckpointFile } from "./checkpoint-file.js";
import { isHsmEffect, runHsmEffect } from "./hsm-effects.js";

export interface OwnershipSyncedInfo {
  ownerRootKeyId: string;
  dekKeyId: string;
  poolKeyKeyId: string;
  dekFingerprint: string;
}

export interface OwnershipDriverOptions {
  nodeId: string;
  poolId: string;
  retryTicks: number;
  access: PartitionAccess;
  checkpoints: CheckpointFile;
  /** Propose encoded pool command bytes to Raft (may throw NotLeader: the machine retries). */
  propose: (data: Uint8Array) => void;
  /** One request/response exchange with a peer. */
  exchange: (peerId: string, message: Uint8Array, timeoutMs: number) => Promise<Uint8Array>;
  /** The machine reached (or restored) "synced": key operations and pool-key sealing may start. */
  onSynced: (info: OwnershipSyncedInfo) => Promise<void>;
  /**
   * Recovery mode: where hsm.createOwnershipKeys takes its keys from (the uploaded
   * security domain) instead of generating new ones.
   */
  createOwnershipKeys?: (correlationId: string) => Promise<OwnershipInput>;
  /** Persisting the state failed: the node cannot continue safely. */
  onFatal: (error: unknown) => void;
  logger: Logger;
  clock: Clock;
  random: Randomness;
  exchangeTimeoutMs: number;
  observer?: NodeObserver;
  /** Broken variants for checker self-tests (genesisBeforeCommit, checkpointAfterEffects); empty in a real node. */
  variants?: ShellVariants;
}

interface ServeWaiter {
  resolve: (m: Uint8Array) => void;
  reject: (e: unknown) => void;
  timer: TimerId;
}

const RESPONSE_KINDS = new Set<OwnershipMessage["kind"]>(["ownershipResponse", "dekResponse", "refused"]);

export class OwnershipDriver {
  private state: OwnershipState;
  private queue: Promise<void> = Promise.resolve();
  /** Inputs queued or being processed (0: the next input may be stepped at once). */
  private queued = 0;
  private hsmQueue: Promise<void> = Promise.resolve();
  private readonly serveWaiters = new Map<string, ServeWaiter>();
  private stopped = false;
  private readonly variants: ShellVariants;

  private constructor(
    private readonly opts: OwnershipDriverOptions,
    initial: OwnershipState,
  ) {
    this.state = initial;
    this.variants = opts.variants ?? NO_VARIANTS;
  }

  /**
   * A driver for a blank member (it will zeroize and initialize its partition) or,
   * given the checkpoint it recorded, for a member restarted in place (it first checks
   * that its partition still holds the checkpoint's keys).
   */
  static create(
    opts: OwnershipDriverOptions,
    checkpoint: OwnershipCheckpoint | null,
    members: string[],
  ): OwnershipDriver {
    const config = { nodeId: opts.nodeId, poolId: opts.poolId, retryTicks: opts.retryTicks };
    const initial = checkpoint ? resumeOwnership(config, checkpoint) : createOwnershipState(config);
    const driver = new OwnershipDriver(opts, initial);
    driver.input({
      kind: "start",
      nowMs: opts.clock.now(),
      incarnation: Buffer.from(opts.random.bytes(8)).toString("hex"),
      members,
    });
    return driver;
  }

  get current(): OwnershipState {
    return this.state;
  }

  /**
   * Queues an input; inputs are processed strictly one after another. With nothing queued,
   * an input whose step changes nothing durable and has no effects (most ticks) is taken
   * at once: there is nothing to wait for.
   */
  input(input: OwnershipInput): void {
    if (this.queued === 0 && !this.stopped) {
      const step = this.step(input);
      if (step === null) return;
      if (step.effects.length === 0 && !durableChange(this.state, step.state)) {
        this.state = step.state;
        return;
      }
      this.enqueue(() => this.apply(step));
      return;
    }
    this.enqueue(() => this.process(input));
  }

  private enqueue(task: () => Promise<void>): void {
    this.queued++;
    this.queue = this.queue.then(task).then(
      () => {
        this.queued--;
      },
      (e: unknown) => {
        this.queued--;
        if (this.stopped) return;
        this.stopped = true;
        this.opts.onFatal(e);
      },
    );
  }

  /** The machine's step for `input` from the current state; null (logged) for a bad input, which changes nothing. */
  private step(input: OwnershipInput): OwnershipStep | null {
    try {
      return stepOwnership(this.state, input);
    } catch (e) {
      // A bad input (e.g. a malformed peer message) changes nothing.
      this.opts.logger.warn({ input: input.kind, error: describe(e) }, "ownership input refused");
      return null;
    }
  }

  private async process(input: OwnershipInput): Promise<void> {
    if (this.stopped) return;
    const step = this.step(input);
    if (step !== null) await this.apply(step);
  }

  /** Takes `step` (computed from the current state): checkpoint first, then the effects. */
  private async apply(step: OwnershipStep): Promise<void> {
    if (this.stopped) return;
    const before = this.state;
    // Durable before any effect acts on it (e.g. before the WAL is sealed with the pool key).
    // The broken variant checkpointAfterEffects saves only after the effects ran.
    // (Only a step that changed the phase, the material, Genesis or the key check can change it.)
    const checkpoint = durableChange(before, step.state) ? ownershipCheckpoint(step.state) : null;
    const late = this.variants.has("checkpointAfterEffects");
    if (checkpoint && !late) await this.opts.checkpoints.save(checkpoint);
    this.state = step.state;
    if (before.phase !== step.state.phase) {
      this.opts.logger.info({ from: before.phase, to: step.state.phase }, "ownership phase");
    }
    // Also when a restarted member's key check ends: that is when it holds ownership again.
    if (this.opts.observer?.ownershipChanged && durableChange(before, step.state))
      this.opts.observer.ownershipChanged(step.state);
    for (const effect of step.effects) await this.execute(effect);
    if (checkpoint && late) await this.opts.checkpoints.save(checkpoint);
  }

  private async execute(effect: OwnershipEffect): Promise<void> {
    if (isHsmEffect(effect)) {
      this.hsmQueue = this.hsmQueue.then(async () => {
        if (this.stopped) return;
        const override = this.opts.createOwnershipKeys;
        const result =
          effect.kind === "hsm.createOwnershipKeys" && override
            ? await override(effect.correlationId).catch(
                (e: unknown): OwnershipInput => ({
                  kind: "hsmFailed",
                  correlationId: effect.correlationId,
                  error: { code: "Internal", message: describe(e) },
                }),
              )
            : await runHsmEffect(this.opts.access, effect);
        // Recovery mode waits for an SD upload through this failure: not worth a warning each retry.
        if (result?.kind === "hsmFailed" && result.error.code !== "NotActivated") {
          this.opts.logger.warn({ effect: effect.kind, error: result.error }, "ownership HSM step failed");
        }
        if (result) this.input(result);
      });
      return;
    }
    switch (effect.kind) {
      case "propose":
        try {
          this.opts.propose(effect.data);
        } catch (e) {
          this.opts.logger.debug(
            { command: effect.command.kind, error: describe(e) },
            "ownership proposal deferred",
          );
        }
        this.opts.observer?.proposed?.(effect.command);
        // The broken variant genesisBeforeCommit treats its own proposal as committed.
        if (effect.command.kind === "genesis" && this.variants.has("genesisBeforeCommit"))
          this.input({ kind: "genesisApplied", genesis: effect.command });
        return;
      case "send":
        this.send(effect.to, effect.message);
        return;
      case "ownershipSynced":
        this.opts.logger.info({ dekFingerprint: effect.dekFingerprint }, "ownership synced");
        await this.opts.onSynced(effect);
        return;
    }
  }

  private send(to: string, message: OwnershipMessage): void {
    if (RESPONSE_KINDS.has(message.kind)) {
      const key = `${to}|${message.nonce}`;
      const waiter = this.serveWaiters.get(key);
      if (!waiter) return; // the caller gave up already
      this.serveWaiters.delete(key);
      this.opts.clock.clear(waiter.timer);
      waiter.resolve(encodeMessage(message));
      return;
    }
    this.opts.exchange(to, encodeMessage(message), this.opts.exchangeTimeoutMs).then(
      (answer) => {
        try {
          this.input({ kind: "message", from: to, message: decodeMessage(answer) });
        } catch (e) {
          this.opts.logger.warn({ peer: to, error: describe(e) }, "bad ownership answer");
        }
      },
      (e: unknown) =>
        this.opts.logger.debug({ peer: to, error: describe(e) }, "ownership request not answered"),
    );
  }

  /** Serves a peer's request (Ownership.Exchange): resolves with the machine's reply. */
  async serve(from: string, bytes: Uint8Array): Promise<Uint8Array> {
    const message = decodeMessage(bytes);
    if (RESPONSE_KINDS.has(message.kind))
      fail("BadParameter", `a ${message.kind} is an answer, not a request`);
    const key = `${from}|${message.nonce}`;
    if (this.serveWaiters.has(key))
      fail("Conflict", `request ${message.nonce} from ${from} is already being served`);
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = this.opts.clock.setTimeout(() => {
        this.serveWaiters.delete(key);
        reject(
          new HsmPoolError(
            "Timeout",
            `ownership request ${message.nonce} from ${from} was not answered in time`,
          ),
        );
      }, this.opts.exchangeTimeoutMs);
      this.serveWaiters.set(key, { resolve, reject, timer });
      this.input({ kind: "message", from, message });
    });
  }

  /** Stops processing; waits for the input and HSM steps under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.serveWaiters.values()) {
      this.opts.clock.clear(w.timer);
      w.reject(new HsmPoolError("ServiceUnavailable", "the node is shutting down"));
    }
    this.serveWaiters.clear();
    await this.queue;
    await this.hsmQueue;
  }
}

function changed(a: OwnershipState, b: OwnershipState): boolean {
  return a.phase !== b.phase || a.material !== b.material || a.genesis !== b.genesis;
}

/** What ownershipCheckpoint() reads changed between the two states. */
function durableChange(a: OwnershipState, b: OwnershipState): boolean {
  return changed(a, b) || (a.pending?.step === "verifyKeys") !== (b.pending?.step === "verifyKeys");
}

function describe(e: unknown): string {
  return isHsmPoolError(e) ? `${e.code}: ${e.message}` : String(e);
}
