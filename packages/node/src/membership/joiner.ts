/**
 * The joining node's side of healing: until Raft makes it a member, call
 * `Membership.Join` on the live members the HFC listed, following "ask the primary"
 * hints, with backoff and jitter. Gives up (the caller exits 4) when the primary
 * refuses it for good, when every member refuses it during the attested handshake, or
 * after `timeoutMs`; the reason goes into one machine-readable log line.
 *
 * Each attempt (join-client.ts) classifies what happened: accepted, redirected to the
 * primary, refused for good, refused in the attested handshake, or unreachable.
 */

import type { Logger } from "pino";
import type { JoinRequestWire } from "../cluster/cluster-proto.js";
import type { PeerConfig } from "../config.js";
import type { Clock } from "../seams/clock.js";
import type { JoinAttempt } from "../seams/platform.js";
import type { Randomness } from "../seams/random.js";

export interface JoinFailure {
  reason: "attestation" | "pool" | "timeout";
  /** reason attestation: the failed check (the most recent one seen). */
  check?: string;
  /** reason pool: the HsmPoolError code the primary answered with. */
  code?: string;
  error: string;
  /** What each peer did on the latest attempt. */
  peers: Record<string, string>;
}

export interface JoinerOptions {
  request: JoinRequestWire;
  peers: readonly PeerConfig[];
  /** One Membership.Join call (the transport seam; join-client.ts over attested gRPC). */
  join: (target: PeerConfig, request: JoinRequestWire, timeoutMs: number) => Promise<JoinAttempt>;
  isMember: () => boolean;
  timeoutMs: number;
  attemptTimeoutMs?: number;
  /** After being accepted, how long to wait for the learner conf change before asking again (default 2 s). */
  acceptedRecheckMs?: number;
  logger: Logger;
  clock: Clock;
  random: Randomness;
  onGiveUp: (failure: JoinFailure) => void;
}

type Attempt = JoinAttempt;

export const UNREACHABLE = /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|EADDRNOTAVAIL/;
/** Consecutive handshake refusals from a member before it counts as refusing us. */
const ATTESTATION_STRIKES = 2;
const MIN_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 2_000;
const ACCEPTED_RECHECK_MS = 2_000;

export class Joiner {
  private stopped = false;
  private wake: (() => void) | null = null;

  constructor(private readonly opts: JoinerOptions) {}

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  /** Resolves when this node is a member, the joiner gave up, or it was stopped. */
  async run(): Promise<void> {
    const { opts } = this;
    const deadline = this.opts.clock.now() + opts.timeoutMs;
    const strikes = new Map<string, number>();
    const lastSeen = new Map<string, string>();
    let hint: PeerConfig | null = null;
    let next = 0;
    let backoffMs = MIN_BACKOFF_MS;
    let acceptedBy: string | null = null;
    let lastCheck = "unknown";
    /** Hints followed in a row (stale hints could bounce between two members). */
    let redirects = 0;
    while (!this.stopped && !opts.isMember()) {
      if (this.opts.clock.now() >= deadline) {
        this.giveUp({
          reason: "timeout",
          error: `not a member of the pool after ${opts.timeoutMs} ms`,
          peers: Object.fromEntries(lastSeen),
        });
        return;
      }
      const target: PeerConfig = hint ?? (opts.peers[next++ % opts.peers.length] as PeerConfig);
      hint = null;
      const attempt = await opts.join(target, opts.request, opts.attemptTimeoutMs ?? 5_000);
      if (this.stopped || opts.isMember()) return;
      lastSeen.set(target.id, describe(attempt));
      if (attempt.kind !== "attestation") strikes.delete(target.id);
      redirects = attempt.kind === "redirect" ? redirects + 1 : 0;
      switch (attempt.kind) {
        case "accepted":
          if (acceptedBy !== target.id) {
            acceptedBy = target.id;
            opts.logger.info({ by: target.id, message: attempt.response.message }, "join accepted");
          }
          backoffMs = MIN_BACKOFF_MS;
          // Registered: the primary adds us as a learner; ask again only if that does not happen.
          await this.sleep(
            Math.min(opts.acceptedRecheckMs ?? ACCEPTED_RECHECK_MS, deadline - this.opts.clock.now()),
          );
          hint = target;
          continue;
        case "redirect": {
          const { leaderId, leaderAddress } = attempt.response;
          const known = opts.peers.find((p) => p.id === leaderId)?.address;
          const address = leaderAddress || known;
          if (leaderId && address && leaderId !== target.id) {
            hint = { id: leaderId, address };
            if (redirects <= opts.peers.length) continue;
          }
          // The primary itself asked us to come back (it is catching up): ask it again.
          if (leaderId === target.id) hint = target;
          break;
        }
        case "refused":
          this.giveUp({
            reason: "pool",
            code: attempt.code,
            error: attempt.error,
            peers: Object.fromEntries(lastSeen),
          });
          return;
        case "attestation":
          strikes.set(target.id, (strikes.get(target.id) ?? 0) + 1);
          lastCheck = attempt.check;
          if (this.everyMemberRefuses(strikes, lastSeen)) {
            this.giveUp({
              reason: "attestation",
              check: lastCheck,
              error: `every member refused this node in the attested handshake (${lastCheck}): ${attempt.error}`,
              peers: Object.fromEntries(lastSeen),
            });
            return;
          }
          break;
        case "unavailable":
          break;
      }
      // Try every listed member once per round; back off between rounds.
      if (hint === null && next % opts.peers.length !== 0) continue;
      await this.sleep(Math.min(backoffMs * (0.5 + opts.random.float()), deadline - this.opts.clock.now()));
      backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
    }
  }

  /** Every listed member either refused our attestation repeatedly or cannot be reached at all. */
  private everyMemberRefuses(strikes: Map<string, number>, lastSeen: Map<string, string>): boolean {
    let refusing = 0;
    for (const p of this.opts.peers) {
      if ((strikes.get(p.id) ?? 0) >= ATTESTATION_STRIKES) refusing++;
      else if (!lastSeen.get(p.id)?.startsWith("unreachable")) return false;
    }
    return refusing > 0;
  }

  private giveUp(failure: JoinFailure): void {
    this.stopped = true;
    this.opts.onGiveUp(failure);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const clock = this.opts.clock;
      const timer = clock.setTimeout(done, Math.max(0, ms));
      function done() {
        clock.clear(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

function describe(a: Attempt): string {
  switch (a.kind) {
    case "accepted":
      return "accepted";
    case "redirect":
      return a.response.leaderId ? `not primary (primary ${a.response.leaderId})` : "no primary yet";
    case "refused":
      return `refused [${a.code}]`;
    case "attestation":
      return `attestation refused (${a.check})`;
    case "unavailable":
      return UNREACHABLE.test(a.error) ? `unreachable: ${a.error}` : `unavailable: ${a.error}`;
  }
}
