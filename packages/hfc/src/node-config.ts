/**
 * A node's launch configuration (contract-node-hfc.md), built from the pool
 * parameters (pure). Public data only: addresses, ids, paths.
 */
import type { MemberSpec, NodeConfig, PoolSpec } from "./types.js";

export interface RaftTiming {
  electionTickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
}

export const DEFAULT_RAFT_TIMING: Readonly<RaftTiming> = Object.freeze({
  electionTickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
});

export interface NodeConfigContext {
  fabricDir: string;
  hfcAddress: string;
  fabricCaCertPath: string;
  stateDir: string;
  mode: "bootstrap" | "join";
  timing: RaftTiming;
}

export function buildNodeConfig(pool: PoolSpec, member: MemberSpec, ctx: NodeConfigContext): NodeConfig {
  return {
    nodeId: member.id,
    poolId: pool.poolId,
    mode: ctx.mode,
    fabricDir: ctx.fabricDir,
    serverId: member.serverId,
    partition: member.partition,
    bundleDir: member.bundleDir,
    stateDir: ctx.stateDir,
    peerListen: member.peerAddress,
    dataListen: member.dataAddress,
    // The other initial voters; with self they form the bootstrap configuration.
    peers: pool.members.filter((m) => m.id !== member.id).map((m) => ({ id: m.id, address: m.peerAddress })),
    hfcAddress: ctx.hfcAddress,
    fabricCaCertPath: ctx.fabricCaCertPath,
    electionTickMs: ctx.timing.electionTickMs,
    electionTicks: ctx.timing.electionTicks,
    heartbeatTicks: ctx.timing.heartbeatTicks,
  };
}
