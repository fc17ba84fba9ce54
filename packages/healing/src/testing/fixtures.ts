/** Test data builders for the pure cores (excluded from the build). */

import type { MemberSpec, NodeStatus } from "@hsmpool/wire";
import type { MemberHealth } from "../health.js";

export const POOL_ID = "pool-test";

export function spec(id: string, i = Number(id.slice(1))): MemberSpec {
  return {
    id,
    serverId: `r${i}-s1`,
    rackId: `rack-${i}`,
    partition: 0,
    peerAddress: `127.0.0.1:${7100 + i}`,
    dataAddress: `127.0.0.1:${7200 + i}`,
    bundleDir: "/bundle",
    lifecycle: "active",
    mode: "bootstrap",
    replaces: null,
    joinPeers: [],
    minPeerSvn: null,
    svn: 1,
    mrsigner: "bb".repeat(32),
    replacedBy: null,
    wasVoter: true,
  };
}

export function nodeStatus(id: string, fields: Partial<NodeStatus> = {}): NodeStatus {
  return {
    nodeId: id,
    poolId: POOL_ID,
    role: "secondary",
    term: 2,
    primaryId: "",
    commitIndex: 5,
    appliedIndex: 5,
    ownership: "synced",
    ownershipPhase: "done",
    dekFingerprint: "",
    mrenclave: "aa".repeat(32),
    mrsigner: "bb".repeat(32),
    svn: 1,
    serverId: "",
    rackId: "",
    peerAddress: "",
    dataAddress: "",
    members: [],
    keyCount: 0,
    startedMs: 0,
    membership: "voter",
    replacing: "",
    minPeerSvn: 1,
    metricsAddress: "",
    ...fields,
  };
}

export function up(status: NodeStatus): MemberHealth {
  return {
    health: "up",
    consecutiveFailures: 0,
    lastStatus: status,
    lastOkMs: 1,
    lastError: null,
    everUp: true,
  };
}

export function down(last: NodeStatus | null): MemberHealth {
  return {
    health: "down",
    consecutiveFailures: 3,
    lastStatus: last,
    lastOkMs: 1,
    lastError: "gone",
    everUp: last !== null,
  };
}
