/**
 * A node's launch configuration (docs/node-hfc-contract.md), built from the pool
 * parameters (pure). Public data only: addresses, ids, paths.
 */
import type { MemberSpec, NodeConfig, PoolSpec } from "@hsmpool/wire";

export interface RaftTiming {
  electionTickMs: number;
  /** The election timeout (and leader lease) in ticks. */
  electionTicks: number;
  /** A follower's timeout is drawn from [electionTicks, electionTicks + electionJitterTicks). */
  electionJitterTicks: number;
  heartbeatTicks: number;
}

/**
 * 100 ms ticks, heartbeats every tick, elections after 1.0-1.5 s of silence. The random part
 * is half etcd's (it draws from [1, 2) s): after a primary dies the first follower timer to fire
 * decides the failover, and the wider draw made the slowest failovers about 1.3x the median on
 * its own. With three members and pre-vote a split vote needs the two followers to fire within
 * one pre-vote round trip; measured in the pool simulator (see the commit that set it).
 */
export const DEFAULT_RAFT_TIMING: Readonly<RaftTiming> = Object.freeze({
  electionTickMs: 100,
  electionTicks: 10,
  electionJitterTicks: 5,
  heartbeatTicks: 1,
});

export interface NodeConfigContext {
  fabricDir: string;
  hfcAddress: string;
  fabricCaCertPath: string;
  stateDir: string;
  timing: RaftTiming;
  /** How long a joiner tries to get in before it gives up by itself. */
  joinTimeoutMs: number;
}

/**
 * The member's launch config. A bootstrap member lists the other bootstrap members
 * (with self they are the initial voters); a joiner lists the members it should ask
 * to let it in, names the member it replaces and the lowest peer security version
 * its policy accepts (docs/healing-contract.md).
 */
export function buildNodeConfig(pool: PoolSpec, member: MemberSpec, ctx: NodeConfigContext): NodeConfig {
  const byId = new Map(pool.members.map((m) => [m.id, m]));
  const peers =
    member.mode === "bootstrap"
      ? pool.members.filter((m) => m.mode === "bootstrap" && m.id !== member.id)
      : member.joinPeers.map((id) => byId.get(id)).filter((m): m is MemberSpec => m !== undefined);
  return {
    nodeId: member.id,
    poolId: pool.poolId,
    mode: member.mode,
    fabricDir: ctx.fabricDir,
    serverId: member.serverId,
    partition: member.partition,
    bundleDir: member.bundleDir,
    stateDir: ctx.stateDir,
    peerListen: member.peerAddress,
    dataListen: member.dataAddress,
    peers: peers.map((m) => ({ id: m.id, address: m.peerAddress })),
    hfcAddress: ctx.hfcAddress,
    fabricCaCertPath: ctx.fabricCaCertPath,
    electionTickMs: ctx.timing.electionTickMs,
    electionTicks: ctx.timing.electionTicks,
    electionJitterTicks: ctx.timing.electionJitterTicks,
    heartbeatTicks: ctx.timing.heartbeatTicks,
    ...(member.mode === "join" && member.replaces !== null ? { replaces: member.replaces } : {}),
    ...(member.mode === "join" && member.minPeerSvn !== null ? { minPeerSvn: member.minPeerSvn } : {}),
    ...(member.mode === "join" ? { joinTimeoutMs: ctx.joinTimeoutMs } : {}),
    ...(pool.recover ? { recover: true } : {}),
    ...(pool.identity !== undefined ? { identity: pool.identity } : {}),
  };
}
