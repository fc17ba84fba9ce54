import { HsmPoolError } from "@hsmpool/errors";
import { describe, expect, it } from "vitest";
import { parseConfig } from "./config.js";

const valid = {
  nodeId: "n1",
  poolId: "pool-1a2b",
  mode: "bootstrap",
  fabricDir: "/abs/fabric",
  serverId: "r1-s1",
  partition: 0,
  bundleDir: "/abs/packages/node/dist",
  stateDir: "/abs/run/nodes/n1/state",
  peerListen: "127.0.0.1:7101",
  dataListen: "127.0.0.1:7201",
  peers: [
    { id: "n1", address: "127.0.0.1:7101" },
    { id: "n2", address: "127.0.0.1:7102" },
    { id: "n3", address: "127.0.0.1:7103" },
  ],
  hfcAddress: "127.0.0.1:7000",
  fabricCaCertPath: "/abs/run/pki/ca.crt",
  electionTickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
};

function refusal(input: unknown): HsmPoolError {
  try {
    parseConfig(input);
  } catch (e) {
    if (e instanceof HsmPoolError) return e;
    throw e;
  }
  throw new Error("expected the config to be refused");
}

describe("node config", () => {
  it("accepts the contract's example, drops self from peers and defaults snapshotEveryEntries", () => {
    const c = parseConfig(valid);
    expect(c.peers.map((p) => p.id)).toEqual(["n2", "n3"]);
    expect(c.snapshotEveryEntries).toBe(1000);
    expect(c.mode).toBe("bootstrap");
  });

  it("reads electionJitterTicks; a config without it keeps etcd's draw (jitter = electionTicks)", () => {
    expect(parseConfig(valid).electionJitterTicks).toBe(10);
    expect(parseConfig({ ...valid, electionJitterTicks: 5 }).electionJitterTicks).toBe(5);
  });

  it.each([
    ["nodeId", { nodeId: "" }],
    ["mode", { mode: "leader" }],
    ["fabricDir", { fabricDir: "relative/fabric" }],
    ["partition", { partition: -1 }],
    ["peerListen", { peerListen: "127.0.0.1" }],
    ["dataListen", { dataListen: "127.0.0.1:70000" }],
    ["peers", { peers: "n2" }],
    [
      "peers[1].address",
      {
        peers: [
          { id: "n1", address: "x:1" },
          { id: "n2", address: "nowhere" },
        ],
      },
    ],
    [
      "peers[1].id",
      {
        peers: [
          { id: "n2", address: "x:1" },
          { id: "n2", address: "x:2" },
        ],
      },
    ],
    ["electionTickMs", { electionTickMs: 0 }],
    ["heartbeatTicks", { heartbeatTicks: 10 }],
    ["electionJitterTicks", { electionJitterTicks: 0 }],
    ["snapshotEveryEntries", { snapshotEveryEntries: 1.5 }],
  ])("refuses a bad %s with BadParameter naming it", (field, change) => {
    const e = refusal({ ...valid, ...change });
    expect(e.code).toBe("BadParameter");
    expect(e.details?.field).toBe(field);
    expect(e.message).toContain(field);
  });

  it("refuses a non-object config", () => {
    expect(refusal([valid]).code).toBe("BadParameter");
  });

  it("join mode: replaces, minPeerSvn and joinTimeoutMs are read; defaults are no replace, own SVN, 120 s", () => {
    const plain = parseConfig(valid);
    expect(plain).toMatchObject({ replaces: null, minPeerSvn: null, joinTimeoutMs: 120_000 });
    const join = parseConfig({
      ...valid,
      nodeId: "n4",
      mode: "join",
      replaces: "n2",
      minPeerSvn: 1,
      joinTimeoutMs: 5_000,
    });
    expect(join).toMatchObject({ mode: "join", replaces: "n2", minPeerSvn: 1, joinTimeoutMs: 5_000 });
    expect(join.peers.map((p) => p.id)).toEqual(["n1", "n2", "n3"]);
  });

  it.each([
    ["replaces", { mode: "bootstrap", replaces: "n2" }, /only a joining node/],
    ["replaces", { mode: "join", replaces: "n1" }, /cannot replace itself/],
    ["replaces", { mode: "join", replaces: "bad id" }, /letters, digits/],
    ["minPeerSvn", { minPeerSvn: 65536 }, /0 to 65535/],
    ["minPeerSvn", { minPeerSvn: "2" }, /whole number/],
    ["joinTimeoutMs", { joinTimeoutMs: 10 }, /1000 to/],
    ["peers", { mode: "join", peers: [{ id: "n1", address: "127.0.0.1:7101" }] }, /at least one live member/],
  ])("refuses a bad %s (%j)", (field, patch, message) => {
    const e = refusal({ ...valid, ...patch });
    expect(e.code).toBe("BadParameter");
    expect(e.details).toMatchObject({ field });
    expect(e.message).toMatch(message);
  });
});
