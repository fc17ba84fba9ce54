/**
 * Public data shapes of the HFC: the run-directory files (contract-node-hfc.md) and
 * the pool status the control API serves. Everything here is public data; no type
 * in this file ever carries key material.
 */

export type MemberRole = "primary" | "secondary" | "learner";
export type MemberHealthState = "up" | "down";
export type OwnershipState = "synced" | "pending";
export type PoolState = "healthy" | "degraded" | "unavailable";

/** One pool member as placed and launched by the HFC (an entry of `<run>/pool.json`). */
export interface MemberSpec {
  id: string;
  serverId: string;
  rackId: string;
  partition: number;
  peerAddress: string;
  dataAddress: string;
  bundleDir: string;
}

/** `<run>/pool.json`: the pool parameters. */
export interface PoolSpec {
  poolId: string;
  /** Seed the placement used (kept so a placement can be reproduced and explained). */
  placementSeed: number;
  members: MemberSpec[];
  createdMs: number;
}

/** `<run>/hfc.json`: where the running HFC listens. Its presence means "an HFC claims this run dir". */
export interface HfcInfo {
  pid: number;
  controlAddress: string;
  poolId: string;
  fabricDir: string;
  startedMs: number;
}

/** `<run>/nodes/<id>/config.json`: a node's launch configuration (public data only). */
export interface NodeConfig {
  nodeId: string;
  poolId: string;
  mode: "bootstrap" | "join";
  fabricDir: string;
  serverId: string;
  partition: number;
  bundleDir: string;
  stateDir: string;
  peerListen: string;
  dataListen: string;
  peers: { id: string; address: string }[];
  hfcAddress: string;
  fabricCaCertPath: string;
  electionTickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
}

/** One node's own view, as `hsmpool.pool.v1.NodeControl/Status` returns it (proto-loader camelCase). */
export interface NodeStatus {
  nodeId: string;
  poolId: string;
  role: string;
  term: number;
  primaryId: string;
  commitIndex: number;
  appliedIndex: number;
  ownership: string;
  ownershipPhase: string;
  dekFingerprint: string;
  mrenclave: string;
  mrsigner: string;
  svn: number;
  serverId: string;
  rackId: string;
  peerAddress: string;
  dataAddress: string;
  members: { id: string; role: string; peerAddress: string }[];
  keyCount: number;
  startedMs: number;
}

/** hfc.proto MemberStatus. */
export interface MemberStatus {
  id: string;
  role: MemberRole;
  server: string;
  rack: string;
  pid: number;
  health: MemberHealthState;
  measurement: string;
  ownership: OwnershipState;
  peerAddress: string;
  dataAddress: string;
  term: number;
  appliedIndex: number;
}

/** hfc.proto PoolStatus. `primary` is "" when there is none (proto3 has no null). */
export interface PoolStatus {
  poolId: string;
  state: PoolState;
  term: number;
  primary: string;
  members: MemberStatus[];
  fabricDir: string;
  runDir: string;
  observedMs: number;
}
