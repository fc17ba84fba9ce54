/**
 * Startup wiring: the membership driver, which admits joiners (register, learner,
 * promotion) when this node is the caught-up leader.
 */
import type { KeyStore } from "@hsmpool/pool";
import type { Logger } from "pino";
import type { NodeConfig } from "../config.js";
import { MembershipDriver } from "../membership/membership-driver.js";
import type { RaftDriver } from "../raft/raft-driver.js";
import type { Clock, PeerTransport } from "../seams/index.js";

export interface MembershipWiring {
  config: NodeConfig;
  raft: RaftDriver;
  links: PeerTransport;
  store: () => KeyStore;
  svnOf: (id: string) => number | null;
  /** True when this node leads and has applied an entry of its own term. */
  isCaughtUpLeader: () => boolean;
  quorumNote: () => string;
  logger: Logger;
  clock: Clock;
}

export function wireMembership(w: MembershipWiring): MembershipDriver {
  const { config, links } = w;
  return new MembershipDriver({
    selfId: config.nodeId,
    selfPeerAddress: config.peerListen,
    raft: w.raft,
    store: w.store,
    svnOf: w.svnOf,
    peerAddressOf: (id) => links.addressOf(id),
    isCaughtUpLeader: w.isCaughtUpLeader,
    quorumNote: w.quorumNote,
    registerTimeoutMs: Math.max(2_000, config.electionTickMs * config.electionTicks * 3),
    logger: w.logger.child({ part: "membership" }),
    clock: w.clock,
  });
}
