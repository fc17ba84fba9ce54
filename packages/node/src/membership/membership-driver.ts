/**
 * The primary's side of healing: answers `Membership.Join` (only the primary admits;
 * others point at it), records an admitted joiner in the log (RegisterMember, so every
 * member learns how to reach it) and, on every tick while it leads, proposes the next
 * membership change the rules in join-rules.ts call for: add the joiner as a learner,
 * promote it once caught up, remove the member it replaces.
 */
import type { VerifiedPeer } from "@hsmpool/attested-tls";
import { HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import {
  decideJoin,
  encodeCommand,
  type JoinRequest,
  type KeyStore,
  type MembershipView,
  nextMembershipChange,
  type RegisteredMember,
} from "@hsmpool/pool";
import type { ConfChange } from "@hsmpool/raft";
import type { Logger } from "pino";
import type { JoinResponseWire } from "../cluster/cluster-proto.js";
import type { RaftDriver } from "../raft/raft-driver.js";
import type { Clock } from "../seams/clock.js";

export interface MembershipDriverOptions {
  selfId: string;
  selfPeerAddress: string;
  raft: RaftDriver;
  store: () => KeyStore;
  /** Attested SVN of a member when known (own, registry, verified connection). */
  svnOf: (id: string) => number | null;
  /** The attested peer endpoint of a member, for leader hints. */
  peerAddressOf: (id: string) => string | undefined;
  /** This node leads and has applied its term's first entry (it has every committed entry). */
  isCaughtUpLeader: () => boolean;
  /** Why a write would not commit now, e.g. "no quorum: 1 of 3 voters reachable". */
  quorumNote: () => string;
  registerTimeoutMs: number;
  logger: Logger;
  clock: Clock;
}

interface RegistrationWaiter {
  peerAddress: string;
  resolve: () => void;
}

export class MembershipDriver {
  private readonly waiters = new Map<string, RegistrationWaiter[]>();
  private lastProposed = "";

  constructor(private readonly opts: MembershipDriverOptions) {}

  private view(): MembershipView {
    const store = this.opts.store();
    return {
      selfId: this.opts.selfId,
      conf: this.opts.raft.confState,
      registered: store.registeredMembers(),
      wasRemoved: (id) => store.wasRemoved(id),
      svnOf: this.opts.svnOf,
    };
  }

  /** Membership.Join from an attested caller. */
  async onJoin(caller: VerifiedPeer, request: JoinRequest): Promise<JoinResponseWire> {
    const { selfId, logger } = this.opts;
    const st = this.opts.raft.status();
    if (st.role !== "leader") {
      const leader = st.lead;
      return {
        accepted: false,
        leaderId: leader ?? "",
        leaderAddress: leader ? (this.opts.peerAddressOf(leader) ?? "") : "",
        message: leader
          ? `${selfId} is not the primary; ask ${leader}`
          : `${selfId} knows no primary yet (an election may be under way); retry shortly`,
      };
    }
    const hint = { leaderId: selfId, leaderAddress: this.opts.selfPeerAddress };
    if (!this.opts.isCaughtUpLeader()) {
      return { ...hint, accepted: false, message: "the primary is catching up on the log; retry shortly" };
    }
    const decision = decideJoin(this.view(), request, caller.svn);
    logger.info(
      { joiner: request.nodeId, replaces: request.replaces, svn: caller.svn, decision: decision.kind },
      "join requested",
    );
    if (decision.kind === "refuse") {
      logger.warn({ joiner: request.nodeId, code: decision.code, error: decision.message }, "join refused");
      throw new HsmPoolError(decision.code, decision.message, { joiner: request.nodeId });
    }
    if (decision.kind === "register") {
      const registered = this.waitRegistered(decision.memberId, decision.peerAddress);
      this.opts.raft.propose(
        encodeCommand({ ...decision, kind: "registerMember", at: this.opts.clock.now() }),
      );
      await registered;
    }
    const member = decision.kind === "accept" && decision.member;
    return {
      ...hint,
      accepted: true,
      message: member
        ? `${request.nodeId} is already a member`
        : `${request.nodeId} is registered; it will be added as a learner, promoted when caught up` +
          (request.replaces ? `, and ${request.replaces} removed` : ""),
    };
  }

  private waitRegistered(memberId: string, peerAddress: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: RegistrationWaiter = { peerAddress, resolve: () => done(null) };
      const timer = this.opts.clock.setTimeout(
        () =>
          done(
            new HsmPoolError(
              "NoQuorum",
              `the registration of ${memberId} was not committed within ${this.opts.registerTimeoutMs} ms (${this.opts.quorumNote()}); retry`,
              { retryable: true },
            ),
          ),
        this.opts.registerTimeoutMs,
      );
      const done = (error: HsmPoolError | null) => {
        this.opts.clock.clear(timer);
        const rest = (this.waiters.get(memberId) ?? []).filter((w) => w !== waiter);
        if (rest.length > 0) this.waiters.set(memberId, rest);
        else this.waiters.delete(memberId);
        if (error) reject(error);
        else resolve();
      };
      this.waiters.set(memberId, [...(this.waiters.get(memberId) ?? []), waiter]);
    });
  }

  /** A RegisterMember entry applied (on every member; only the primary has waiters). */
  onRegistered(member: RegisteredMember): void {
    for (const w of this.waiters.get(member.memberId) ?? []) {
      if (w.peerAddress === member.peerAddress) w.resolve();
    }
  }

  /** Called every tick: while this node leads, propose the next membership change, if any. */
  tick(): void {
    if (!this.opts.isCaughtUpLeader()) return;
    const st = this.opts.raft.status();
    const progress = st.progress ?? {};
    const change = nextMembershipChange({
      conf: this.opts.raft.confState,
      registered: this.opts.store().registeredMembers(),
      progress,
      lastIndex: progress[this.opts.selfId]?.match ?? 0,
    });
    if (change === null) return;
    try {
      this.opts.raft.proposeConfChange(change);
    } catch (e) {
      // Conflict: an earlier change is not applied yet (Raft allows one at a time).
      if (!isHsmPoolError(e, "Conflict"))
        this.opts.logger.debug({ change, error: String(e) }, "membership change deferred");
      return;
    }
    const key = describeChange(change);
    if (key !== this.lastProposed) {
      this.lastProposed = key;
      this.opts.logger.info({ change }, "membership change proposed");
    }
  }
}

function describeChange(cc: ConfChange): string {
  return `${cc.type} ${cc.node}`;
}
