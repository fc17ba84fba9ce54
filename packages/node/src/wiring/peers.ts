/**
 * Startup wiring: the attested peer transport (Raft messages, ownership exchanges,
 * joins) with a link to every configured peer. Listening starts later in boot, once
 * the drivers that answer peers exist (PoolNode.boot).
 */
import type { Logger } from "pino";
import type { ChaosHooks } from "../chaos-hooks.js";
import type { NodeConfig } from "../config.js";
import type { RaftDriver } from "../raft/raft-driver.js";
import type { Clock, LaunchedServer, PeerTransport, Randomness } from "../seams/index.js";

export interface PeersWiring {
  server: LaunchedServer;
  config: NodeConfig;
  logger: Logger;
  clock: Clock;
  random: Randomness;
  raft: RaftDriver;
  chaos: ChaosHooks | undefined;
}

export async function openPeerLinks(w: PeersWiring): Promise<PeerTransport> {
  const { config, chaos, raft } = w;
  const links = await w.server.openTransport({
    config,
    logger: w.logger,
    clock: w.clock,
    random: w.random,
    onUnreachable: (to) => raft.reportUnreachable(to),
    onSnapshotStatus: (to, ok) => raft.reportSnapshot(to, ok),
    ...(chaos
      ? { dialAddress: (peerId: string, address: string) => chaos.dialAddress(peerId, address) }
      : {}),
  });
  for (const peer of config.peers) links.setPeer(peer.id, peer.address);
  return links;
}
