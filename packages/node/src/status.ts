/** NodeControl.Status (proto/pool.proto NodeStatus): this node's own view, in the shape `@hsmpool/wire` declares. */
import type { EnclaveIdentity } from "@hsmpool/platform";
import type { OwnershipState } from "@hsmpool/pool";
import type { ConfState, Status } from "@hsmpool/raft";
import type { Membership, NodeStatus } from "@hsmpool/wire";
import type { NodeConfig } from "./config.js";
import type { OwnershipSyncedInfo } from "./ownership/ownership-driver.js";

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
  membership: Membership;
  minPeerSvn: number;
  metricsAddress: string;
}

export function roleOf(raft: Status, conf: ConfState, membership: Membership): NodeStatus["role"] {
  if (raft.role === "leader") return "primary";
  if (conf.learners.includes(raft.id) || membership === "joining") return "learner";
  if (raft.role === "candidate" || raft.role === "preCandidate") return "candidate";
  return "secondary";
}

export function nodeStatus(s: StatusInputs): NodeStatus {
  const synced = s.synced !== null && s.ownership.phase === "synced";
  const progress = s.raft.progress;
  const lastIndex = progress?.[s.raft.id]?.match;
  const member = (id: string, role: "voter" | "learner") => {
    const match = progress?.[id]?.match;
    return {
      id,
      role,
      peerAddress: s.peerAddress(id),
      ...(lastIndex !== undefined && match !== undefined ? { matchLag: Math.max(0, lastIndex - match) } : {}),
    };
  };
  return {
    nodeId: s.config.nodeId,
    poolId: s.config.poolId,
    role: roleOf(s.raft, s.conf, s.membership),
    term: s.raft.term,
    primaryId: s.raft.lead ?? "",
    commitIndex: s.raft.commit,
    appliedIndex: s.applied,
    ownership: synced ? "synced" : "pending",
    ownershipPhase: s.membership === "joining" ? "joining" : s.ownership.phase,
    dekFingerprint: synced ? (s.synced?.dekFingerprint ?? "") : "",
    mrenclave: s.enclave.mrenclave,
    mrsigner: s.enclave.mrsigner,
    svn: s.enclave.svn,
    serverId: s.enclave.serverId,
    rackId: s.enclave.rackId,
    peerAddress: s.config.peerListen,
    dataAddress: s.config.dataListen,
    members: [
      ...s.conf.voters.map((id) => member(id, "voter")),
      ...s.conf.learners.map((id) => member(id, "learner")),
    ],
    keyCount: s.keyCount,
    startedMs: s.startedMs,
    membership: s.membership,
    replacing: s.config.replaces ?? "",
    minPeerSvn: s.minPeerSvn,
    metricsAddress: s.metricsAddress,
  };
}
