import type { EnclaveIdentity } from "@hsmpool/platform";
import { createOwnershipState } from "@hsmpool/pool";
import type { ConfState, Status } from "@hsmpool/raft";
import type { Membership } from "@hsmpool/wire";
import { describe, expect, it } from "vitest";
import { parseConfig } from "./config.js";
import { nodeStatus } from "./status.js";

const config = parseConfig({
  nodeId: "n4",
  poolId: "pool-1",
  mode: "join",
  replaces: "n2",
  fabricDir: "/abs/fabric",
  serverId: "r4-s1",
  partition: 0,
  bundleDir: "/abs/bundle",
  stateDir: "/abs/state",
  peerListen: "127.0.0.1:7104",
  dataListen: "127.0.0.1:7204",
  peers: [{ id: "n1", address: "127.0.0.1:7101" }],
  hfcAddress: "127.0.0.1:7000",
  fabricCaCertPath: "/abs/ca.crt",
  electionTickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
});
const enclave: EnclaveIdentity = {
  mrenclave: "a".repeat(64),
  mrsigner: "b".repeat(64),
  productId: 1,
  svn: 2,
  debug: false,
  serverId: "r4-s1",
  rackId: "rack-4",
};

function statusOf(raft: Partial<Status>, conf: ConfState, membership: Membership) {
  return nodeStatus({
    config,
    enclave,
    raft: {
      id: "n4",
      term: 3,
      vote: null,
      commit: 0,
      applied: 0,
      lead: null,
      role: "follower",
      conf,
      leadTransferee: null,
      ...raft,
    },
    applied: 0,
    conf,
    ownership: createOwnershipState({ nodeId: "n4", poolId: "pool-1", retryTicks: 10 }),
    synced: null,
    peerAddress: (id) => `addr-${id}`,
    keyCount: 0,
    startedMs: 1,
    membership,
    metricsAddress: "127.0.0.1:9",
    minPeerSvn: 1,
  });
}

describe("NodeStatus healing fields", () => {
  it("a node that is not a member yet reports role learner, membership and phase joining", () => {
    const s = statusOf({}, { voters: [], learners: [] }, "joining");
    expect(s).toMatchObject({
      role: "learner",
      membership: "joining",
      ownershipPhase: "joining",
      replacing: "n2",
      minPeerSvn: 1,
      svn: 2,
    });
  });

  it("a learner reports role learner and its ownership machine's phase", () => {
    const s = statusOf({ lead: "n1" }, { voters: ["n1", "n2", "n3"], learners: ["n4"] }, "learner");
    expect(s).toMatchObject({
      role: "learner",
      membership: "learner",
      ownershipPhase: "initializingPartition",
    });
    expect(s.members.map((m) => `${m.id}:${m.role}`)).toEqual([
      "n1:voter",
      "n2:voter",
      "n3:voter",
      "n4:learner",
    ]);
    expect(s.members.every((m) => m.matchLag === undefined)).toBe(true);
  });

  it("the primary reports how far each member's log is behind its own", () => {
    const progress = {
      n4: { match: 40, next: 41, state: "replicate" as const, isLearner: false },
      n1: { match: 37, next: 38, state: "replicate" as const, isLearner: false },
      n3: { match: 0, next: 1, state: "probe" as const, isLearner: true },
    };
    const s = statusOf(
      { role: "leader", lead: "n4", progress },
      { voters: ["n1", "n4"], learners: ["n3"] },
      "voter",
    );
    expect(s.role).toBe("primary");
    expect(Object.fromEntries(s.members.map((m) => [m.id, m.matchLag]))).toEqual({ n1: 3, n4: 0, n3: 40 });
  });
});
