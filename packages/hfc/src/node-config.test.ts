import type { PoolSpec } from "@hsmpool/wire";
import { describe, expect, it } from "vitest";
import { spec } from "../../healing/src/testing/fixtures.js";
import { buildNodeConfig, DEFAULT_RAFT_TIMING } from "./node-config.js";

const ctx = {
  fabricDir: "/fabric",
  hfcAddress: "127.0.0.1:7000",
  fabricCaCertPath: "/run/pki/ca.crt",
  stateDir: "/run/nodes/x/state",
  timing: DEFAULT_RAFT_TIMING,
  joinTimeoutMs: 45_000,
};

const joiner = {
  ...spec("n4", 4),
  mode: "join" as const,
  lifecycle: "joining" as const,
  replaces: "n1",
  joinPeers: ["n2", "n3"],
  minPeerSvn: 1,
  wasVoter: false,
};
const pool: PoolSpec = {
  poolId: "pool-c",
  placementSeed: 1,
  createdMs: 1,
  members: [{ ...spec("n1"), lifecycle: "fenced" }, spec("n2"), spec("n3"), joiner],
};

describe("buildNodeConfig", () => {
  it("a bootstrap member lists the other bootstrap members only (a later joiner is not an initial voter)", () => {
    const c = buildNodeConfig(pool, spec("n2"), ctx);
    expect(c).toMatchObject({
      nodeId: "n2",
      mode: "bootstrap",
      peerListen: "127.0.0.1:7102",
      dataListen: "127.0.0.1:7202",
    });
    expect(c.peers).toEqual([
      { id: "n1", address: "127.0.0.1:7101" },
      { id: "n3", address: "127.0.0.1:7103" },
    ]);
    expect(c).not.toHaveProperty("replaces");
    expect(c).not.toHaveProperty("joinTimeoutMs");
  });

  it("a joiner asks the live members it was given, names the member it replaces and the pool's minimum SVN", () => {
    const c = buildNodeConfig(pool, joiner, ctx);
    expect(c).toMatchObject({
      nodeId: "n4",
      mode: "join",
      replaces: "n1",
      minPeerSvn: 1,
      joinTimeoutMs: 45_000,
    });
    expect(c.peers).toEqual([
      { id: "n2", address: "127.0.0.1:7102" },
      { id: "n3", address: "127.0.0.1:7103" },
    ]);
  });
});
