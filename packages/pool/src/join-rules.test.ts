import type { ConfState } from "@hsmpool/raft";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decideJoin, type MembershipView, nextMembershipChange, poolSvnFloor } from "./join-rules.js";
import type { RegisteredMember } from "./keystore-state.js";
import { describeQuorum, quorumReport } from "./quorum.js";

function registered(memberId: string, replaces: string[] = [], svn = 1): RegisteredMember {
  return {
    memberId,
    peerAddress: `127.0.0.1:71${memberId.slice(1).padStart(2, "0")}`,
    dataAddress: `127.0.0.1:72${memberId.slice(1).padStart(2, "0")}`,
    svn,
    replaces,
    registeredMs: 1,
  };
}

function view(
  conf: ConfState,
  reg: RegisteredMember[] = [],
  opts: { removed?: string[]; svns?: Record<string, number> } = {},
): MembershipView {
  return {
    selfId: "n1",
    conf,
    registered: reg,
    wasRemoved: (id) => (opts.removed ?? []).includes(id),
    svnOf: (id) => reg.find((m) => m.memberId === id)?.svn ?? opts.svns?.[id] ?? (id === "n1" ? 1 : null),
  };
}

const POOL: ConfState = { voters: ["n1", "n2", "n3"], learners: [] };
const join = (nodeId: string, replaces: string | null = null, port = nodeId.slice(1).padStart(2, "0")) => ({
  nodeId,
  peerAddress: `127.0.0.1:71${port}`,
  dataAddress: `127.0.0.1:72${port}`,
  replaces,
});

describe("decideJoin (the primary admits a joiner)", () => {
  it("registers a new member with the member it replaces and its attested SVN", () => {
    expect(decideJoin(view(POOL), join("n4", "n2"), 1)).toEqual({
      kind: "register",
      memberId: "n4",
      peerAddress: "127.0.0.1:7104",
      dataAddress: "127.0.0.1:7204",
      svn: 1,
      replaces: ["n2"],
    });
  });

  it("answers a repeated Join from a registered joiner without writing anything", () => {
    const reg = [registered("n4", ["n2"])];
    expect(decideJoin(view(POOL, reg), join("n4", "n2"), 1)).toEqual({ kind: "accept", member: false });
    const learning = { voters: POOL.voters, learners: ["n4"] };
    expect(decideJoin(view(learning, reg), join("n4", "n2"), 1)).toEqual({ kind: "accept", member: true });
    // Even after the replaced member is gone, the same request is still the same join.
    const done = { voters: ["n1", "n3", "n4"], learners: [] };
    expect(decideJoin(view(done, reg, { removed: ["n2"] }), join("n4", "n2"), 1)).toMatchObject({
      kind: "accept",
    });
  });

  it("re-registers a joiner that comes back on new ports, keeping what it replaces", () => {
    const reg = [registered("n4", ["n2"])];
    expect(decideJoin(view(POOL, reg), join("n4", "n2", "99"), 1)).toMatchObject({
      kind: "register",
      peerAddress: "127.0.0.1:7199",
      replaces: ["n2"],
    });
  });

  it.each([
    ["its own id", join("n1"), /primary's own node id/],
    ["a removed id", join("n9"), /was removed from the pool/],
    ["a founding member's id", join("n2"), /already a member/],
    ["replacing a non-member", join("n4", "n7"), /cannot replace n7: it is not a member/],
  ])("refuses %s with Conflict", (_what, request, message) => {
    const d = decideJoin(view(POOL, [], { removed: ["n9"] }), request, 1);
    expect(d).toMatchObject({ kind: "refuse", code: "Conflict" });
    expect(d.kind === "refuse" && d.message).toMatch(message);
  });

  it("refuses a joiner below the lowest SVN the current voters run (downgrade), admits equal or newer", () => {
    const v = view(POOL, [], { svns: { n1: 2, n2: 2, n3: 2 } });
    expect(poolSvnFloor(v)).toBe(2);
    const d = decideJoin(v, join("n4", "n2"), 1);
    expect(d).toMatchObject({ kind: "refuse", code: "Forbidden" });
    expect(d.kind === "refuse" && d.message).toMatch(/downgrade refused: n4 runs SVN 1, below SVN 2/);
    expect(decideJoin(v, join("n4", "n2"), 2).kind).toBe("register");
    expect(decideJoin(v, join("n4", "n2"), 3).kind).toBe("register");
    // Mid-upgrade (one member still at SVN 1) an SVN-1 replacement is no downgrade.
    const mixed = view(POOL, [], { svns: { n1: 2, n2: 2, n3: 1 } });
    expect(decideJoin(mixed, join("n4", "n2"), 1).kind).toBe("register");
  });

  it("a joiner replacing a learner that never finished also removes what that learner replaced", () => {
    const conf = { voters: ["n1", "n2", "n3"], learners: ["n4"] };
    const d = decideJoin(view(conf, [registered("n4", ["n2"])]), join("n5", "n4"), 1);
    expect(d).toMatchObject({ kind: "register", replaces: ["n4", "n2"] });
  });
});

describe("nextMembershipChange (one change at a time)", () => {
  const caughtUp = { match: 100, state: "replicate" as const };

  it("adds a registered joiner as a learner, promotes it once caught up, then removes the member it replaces", () => {
    const reg = [registered("n4", ["n2"])];
    expect(nextMembershipChange({ conf: POOL, registered: reg, progress: {}, lastIndex: 100 })).toEqual({
      type: "addLearner",
      node: "n4",
    });
    const learning = { voters: POOL.voters, learners: ["n4"] };
    const behind = { n4: { match: 50, state: "replicate" as const } };
    expect(nextMembershipChange({ conf: learning, registered: reg, progress: behind, lastIndex: 100 })).toBe(
      null,
    );
    const probing = { n4: { match: 100, state: "probe" as const } };
    expect(nextMembershipChange({ conf: learning, registered: reg, progress: probing, lastIndex: 100 })).toBe(
      null,
    );
    expect(
      nextMembershipChange({ conf: learning, registered: reg, progress: { n4: caughtUp }, lastIndex: 110 }),
    ).toEqual({ type: "addVoter", node: "n4" });
    const promoted = { voters: ["n1", "n2", "n3", "n4"], learners: [] };
    expect(nextMembershipChange({ conf: promoted, registered: reg, progress: {}, lastIndex: 110 })).toEqual({
      type: "removeNode",
      node: "n2",
    });
    const healed = { voters: ["n1", "n3", "n4"], learners: [] };
    expect(nextMembershipChange({ conf: healed, registered: reg, progress: {}, lastIndex: 110 })).toBe(null);
  });

  it("never touches members nobody registered: a stray learner is neither promoted nor removed", () => {
    const conf = { voters: ["n1", "n2", "n3"], learners: ["x9"] };
    expect(nextMembershipChange({ conf, registered: [], progress: { x9: caughtUp }, lastIndex: 100 })).toBe(
      null,
    );
  });

  it("property: driving the changes to a fixed point makes every joiner a voter and removes exactly the replaced members", () => {
    const founders = ["n1", "n2", "n3"];
    const scenario = fc
      .uniqueArray(fc.integer({ min: 4, max: 9 }), { minLength: 1, maxLength: 3 })
      .chain((nums) =>
        fc.tuple(
          fc.constant(nums.map((n) => `n${n}`)),
          fc.tuple(...nums.map(() => fc.subarray(founders, { maxLength: 1 }))),
        ),
      );
    fc.assert(
      fc.property(scenario, ([joiners, replaces]) => {
        const reg = joiners.map((id, i) => registered(id, replaces[i] ?? []));
        let conf: ConfState = { voters: [...founders], learners: [] };
        const progress = Object.fromEntries(joiners.map((id) => [id, caughtUp]));
        const removedOnce = new Set<string>();
        for (let step = 0; step < 20; step++) {
          const cc = nextMembershipChange({ conf, registered: reg, progress, lastIndex: 100 });
          if (cc === null) break;
          if (cc.type === "removeNode") {
            expect(removedOnce.has(cc.node)).toBe(false);
            removedOnce.add(cc.node);
            conf = { voters: conf.voters.filter((v) => v !== cc.node), learners: conf.learners };
          } else if (cc.type === "addLearner") {
            expect(conf.voters.includes(cc.node) || conf.learners.includes(cc.node)).toBe(false);
            conf = { voters: conf.voters, learners: [...conf.learners, cc.node] };
          } else {
            expect(conf.learners).toContain(cc.node);
            conf = {
              voters: [...conf.voters, cc.node],
              learners: conf.learners.filter((l) => l !== cc.node),
            };
          }
          expect(conf.voters.length).toBeGreaterThanOrEqual(2);
        }
        expect(nextMembershipChange({ conf, registered: reg, progress, lastIndex: 100 })).toBeNull();
        const replaced = new Set(replaces.flat());
        expect([...conf.voters].sort()).toEqual(
          [...founders.filter((f) => !replaced.has(f)), ...joiners].sort(),
        );
        expect(conf.learners).toEqual([]);
        expect([...removedOnce].sort()).toEqual([...replaced].sort());
      }),
      { numRuns: 200 },
    );
  });
});

describe("quorum report", () => {
  const base = {
    selfId: "n1",
    voters: ["n1", "n2", "n3"],
    nowMs: 10_000,
    windowMs: 1_000,
  };

  it("names the problem when two of three voters are gone", () => {
    const r = quorumReport({ ...base, connected: () => false, lastHeardMs: () => undefined });
    expect(r.hasQuorum).toBe(false);
    expect(describeQuorum(r)).toBe("no quorum: 1 of 3 voters reachable (n2, n3 unreachable)");
  });

  it("counts a peer as reachable when its link is up or it was heard within the window", () => {
    const heard = quorumReport({
      ...base,
      connected: () => false,
      lastHeardMs: (id) => (id === "n2" ? 9_500 : 5_000),
    });
    expect(heard).toMatchObject({ hasQuorum: true, reachable: ["n1", "n2"], unreachable: ["n3"] });
    expect(describeQuorum(heard)).toBe("2 of 3 voters reachable (n3 unreachable)");
    const linked = quorumReport({ ...base, connected: (id) => id === "n3", lastHeardMs: () => undefined });
    expect(linked.reachable).toEqual(["n1", "n3"]);
  });

  it("a node that is not a voter does not count itself", () => {
    const r = quorumReport({
      ...base,
      selfId: "n4",
      connected: (id) => id === "n2",
      lastHeardMs: () => undefined,
    });
    expect(describeQuorum(r)).toBe("no quorum: 1 of 3 voters reachable (n1, n3 unreachable)");
  });
});
