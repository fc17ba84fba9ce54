/** NodeControl.Status (proto/pool.proto NodeStatus): this node's own view. Public data only. */
import type { EnclaveIdentity } from "@hsmpool/platform";
import type { OwnershipState } from "@hsmpool/pool";
import type { ConfState, Status } from "@hsmpool/raft";
import type { NodeConfig } from "./config.js";
import type { OwnershipSyncedInfo } from "./ownership/ownership-driver.js";

export interface NodeStatusMessage {
  nodeId: string;
  poolId: string;
  role: "primary" | "secondary" | "learner" | "candidate";
  term: number;
  primaryId: string;
  commitIndex: number;
  appliedIndex: number;
  ownership: "synced" | "pending";
  ownershipPhase: string;
  dekFingerprint: string;
  mrenclave: string;
  mrsigner: string;
  svn: number;
  serverId: string;
  rackId: string;
  peerAddress: string;
  dataAddress: string;
  members: { id: string; role: "voter" | "learner"; peerAddress: string }[];
  keyCount: number;
  startedMs: number;
}

export interface StatusInputs {
  config: NodeConfig;
  enclave: EnclaveIdentity;
  raft: Status;
  applied: number;
  conf: ConfState;
  ownership: OwnershipState;
  synced: OwnershipSyncedInfo | null;
  peerAddress: (id: string) => string;
  keyCount: number;
  startedMs: number;
}

export function roleOf(raft: Status, conf: ConfState): NodeStatusMessage["role"] {
  if (raft.role === "leader") return "primary";
  if (conf.learners.includes(raft.id)) return "learner";
  if (raft.role === "candidate" || raft.role === "preCandidate") return "candidate";
  return "secondary";
}

export function nodeStatus(s: StatusInputs): NodeStatusMessage {
  const synced = s.synced !== null && s.ownership.phase === "synced";
  return {
    nodeId: s.config.nodeId,
    poolId: s.config.poolId,
    role: roleOf(s.raft, s.conf),
    term: s.raft.term,
    primaryId: s.raft.lead ?? "",
    commitIndex: s.raft.commit,
    appliedIndex: s.applied,
    ownership: synced ? "synced" : "pending",
    ownershipPhase: s.ownership.phase,
    dekFingerprint: synced ? (s.synced?.dekFingerprint ?? "") : "",
    mrenclave: s.enclave.mrenclave,
    mrsigner: s.enclave.mrsigner,
    svn: s.enclave.svn,
    serverId: s.enclave.serverId,
    rackId: s.enclave.rackId,
    peerAddress: s.config.peerListen,
    dataAddress: s.config.dataListen,
    members: [
      ...s.conf.voters.map((id) => ({ id, role: "voter" as const, peerAddress: s.peerAddress(id) })),
      ...s.conf.learners.map((id) => ({ id, role: "learner" as const, peerAddress: s.peerAddress(id) })),
    ],
    keyCount: s.keyCount,
    startedMs: s.startedMs,
  };
}
