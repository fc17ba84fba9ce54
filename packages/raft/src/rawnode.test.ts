import { type HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RawNode } from "./rawnode.js";
import { MemoryStorage } from "./storage.js";
import { Network, prng } from "./testing/network.js";
import type { Config, Entry, Message, Ready } from "./types.js";

const enc = new TextEncoder();
const voters3 = { voters: ["n1", "n2", "n3"], learners: [] };

function config(id: string, storage: MemoryStorage, extra: Partial<Config> = {}): Config {
  return {
    id,
    storage,
    electionTicks: 10,
    heartbeatTicks: 1,
    random: prng(7),
    preVote: false,
    checkQuorum: false,
    ...extra,
  };
}

function errorOf(f: () => unknown): HsmPoolError | undefined {
  try {
    f();
  } catch (e) {
    if (isHsmPoolError(e)) return e;
    throw e;
  }
  return undefined;
}

/** Persist a Ready into storage the way an application must, and return it. */
function persist(node: RawNode, storage: MemoryStorage): Ready {
  const rd = node.ready();
  if (rd.snapshot) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState) storage.setHardState(rd.hardState);
  node.advance(rd);
  return rd;
}

/** Make `node` leader of term 2 by feeding it the votes it asks for. */
function electLeader(node: RawNode, storage: MemoryStorage, peers: string[]): Message[] {
  node.campaign();
  const rd = persist(node, storage);
  for (const p of peers)
    node.step({ type: "MsgVoteResp", from: p, to: node.status().id, term: node.status().term });
  return [...rd.messages, ...persist(node, storage).messages];
}

describe("config validation", () => {
  const bad: [string, Partial<Config>, RegExp][] = [
    ["empty id", { id: "" }, /config.id/],
    ["heartbeat 0", { heartbeatTicks: 0 }, /heartbeatTicks/],
    [
      "election not above heartbeat",
      { electionTicks: 1 },
      /electionTicks must be an integer > heartbeatTicks/,
    ],
    ["no election jitter", { electionJitterTicks: 0 }, /electionJitterTicks/],
    ["no random source", { random: undefined as unknown as () => number }, /config.random/],
    ["zero inflight", { maxInflightMsgs: 0 }, /maxInflightMsgs/],
    ["fractional msg size", { maxSizePerMsgBytes: 1.5 }, /maxSizePerMsgBytes/],
  ];
  for (const [what, patch, msg] of bad) {
    it(`refuses ${what} with BadParameter`, () => {
      const err = errorOf(() => new RawNode(config("n1", new MemoryStorage(voters3), patch)));
      expect(err?.code).toBe("BadParameter");
      expect(err?.message).toMatch(msg);
    });
  }

  it("refuses a membership listing a node as voter and learner", () => {
    const err = errorOf(
      () => new RawNode(config("n1", new MemoryStorage({ voters: ["n1"], learners: ["n1"] }))),
    );
    expect(err?.message).toMatch(/n1 as both voter and learner/);
  });

  it("refuses an applied index beyond the stored commit", () => {
    const err = errorOf(() => new RawNode(config("n1", new MemoryStorage(voters3), { applied: 5 })));
    expect(err?.code).toBe("BadParameter");
    expect(err?.message).toMatch(/applied 5 is beyond the stored commit index 1/);
  });

  it("treats a random source outside [0, 1) as a bug", () => {
    expect(() => new RawNode(config("n1", new MemoryStorage(voters3), { random: () => 1 }))).toThrow(
      /raft invariant: config.random\(\) returned 1/,
    );
  });

  it("treats a stored commit beyond the log as corrupt storage", () => {
    const s = new MemoryStorage(voters3);
    s.setHardState({ term: 1, vote: null, commit: 9 });
    expect(() => new RawNode(config("n1", s))).toThrow(/raft invariant: stored commit 9 beyond last index 1/);
  });
});

describe("message validation", () => {
  const ok: Message = { type: "MsgHeartbeat", from: "n2", to: "n1", term: 2, commit: 1 };
  const bad: [string, Message, RegExp][] = [
    ["an unknown type", { ...ok, type: "MsgHack" as Message["type"] }, /unknown raft message type/],
    ["the wrong recipient", { ...ok, to: "n3" }, /for n3 delivered to n1/],
    ["itself as sender", { ...ok, from: "n1" }, /to itself/],
    ["a negative term", { ...ok, term: -1 }, /term must be an integer/],
    ["a fractional commit", { ...ok, commit: 1.5 }, /commit must be an integer/],
    [
      "non-consecutive entries",
      {
        type: "MsgApp",
        from: "n2",
        to: "n1",
        term: 2,
        index: 1,
        logTerm: 1,
        entries: [
          { term: 2, index: 2, type: "normal", data: new Uint8Array() },
          { term: 2, index: 4, type: "normal", data: new Uint8Array() },
        ],
      },
      /consecutive/,
    ],
    [
      "entries not following prev",
      {
        type: "MsgApp",
        from: "n2",
        to: "n1",
        term: 2,
        index: 1,
        logTerm: 1,
        entries: [{ term: 2, index: 5, type: "normal", data: new Uint8Array() }],
      },
      /follow the prev index/,
    ],
    [
      "a forwarded proposal with a term",
      { type: "MsgProp", from: "n2", to: "n1", term: 3, entries: [] },
      /term 0/,
    ],
    ["an append with term 0", { type: "MsgHeartbeat", from: "n2", to: "n1", term: 0 }, /term must be >= 1/],
    [
      "entries from a future term",
      {
        type: "MsgApp",
        from: "n2",
        to: "n1",
        term: 2,
        index: 1,
        logTerm: 1,
        entries: [{ term: 3, index: 2, type: "normal", data: new Uint8Array() }],
      },
      /entry 2 has term 3 outside \[1, 2\]/,
    ],
    [
      "a snapshot message without snapshot",
      { type: "MsgSnap", from: "n2", to: "n1", term: 2 },
      /MsgSnap must carry/,
    ],
  ];
  for (const [what, m, msg] of bad) {
    it(`refuses ${what} with BadParameter and changes nothing`, () => {
      const node = new RawNode(config("n1", new MemoryStorage(voters3)));
      const before = node.status();
      const err = errorOf(() => node.step(m));
      expect(err?.code).toBe("BadParameter");
      expect(err?.message).toMatch(msg);
      expect(node.status()).toEqual(before);
      expect(node.hasReady()).toBe(false);
    });
  }
});

describe("Ready / advance contract", () => {
  it("a vote is persisted in the same Ready that carries the vote response (persist-before-send)", () => {
    const s = new MemoryStorage(voters3);
    const node = new RawNode(config("n2", s));
    node.step({ type: "MsgVote", from: "n1", to: "n2", term: 2, index: 1, logTerm: 1 });
    const rd = node.ready();
    expect(rd.messages).toEqual([{ type: "MsgVoteResp", from: "n2", to: "n1", term: 2 }]);
    expect(rd.hardState).toEqual({ term: 2, vote: "n1", commit: 1 });
    expect(rd.mustSync).toBe(true);
    node.advance(rd);
    expect(node.hasReady()).toBe(false);
  });

  it("messages only leave through ready(), and ready() cannot be taken twice before advance()", () => {
    const node = new RawNode(config("n1", new MemoryStorage(voters3)));
    node.campaign();
    expect(node.hasReady()).toBe(true);
    const rd = node.ready();
    expect(rd.messages.map((m) => `${m.type}->${m.to}`)).toEqual(["MsgVote->n2", "MsgVote->n3"]);
    expect(node.hasReady()).toBe(false);
    expect(errorOf(() => node.ready())?.code).toBe("OperationNotAllowed");
    node.advance();
    expect(errorOf(() => node.advance())?.code).toBe("OperationNotAllowed");
  });

  it("a restarted node remembers its vote and will not vote for someone else in that term", () => {
    const s = new MemoryStorage(voters3);
    const first = new RawNode(config("n3", s));
    first.step({ type: "MsgVote", from: "n1", to: "n3", term: 2, index: 1, logTerm: 1 });
    persist(first, s);
    const again = new RawNode(config("n3", s)); // crash + restart from storage
    expect(again.status()).toMatchObject({ term: 2, vote: "n1" });
    again.step({ type: "MsgVote", from: "n2", to: "n3", term: 2, index: 1, logTerm: 1 });
    expect(again.ready().messages).toEqual([
      { type: "MsgVoteResp", from: "n3", to: "n2", term: 2, reject: true },
    ]);
  });

  it("committed entries are handed out once, in order, and survive a restart via applied", () => {
    const s = new MemoryStorage({ voters: ["n1"], learners: [] });
    const node = new RawNode(config("n1", s));
    node.campaign();
    node.propose(enc.encode("a"));
    node.propose(enc.encode("b"));
    const rd = persist(node, s);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([2, 3, 4]);
    expect(node.status()).toMatchObject({ role: "leader", commit: 4, applied: 4 });
    expect(node.hasReady()).toBe(false);
    const restarted = new RawNode(config("n1", s, { applied: 3 }));
    expect(persist(restarted, s).committedEntries.map((e) => e.index)).toEqual([4]);
  });
});

describe("single-voter cluster", () => {
  it("elects itself, commits alone and answers reads at once", () => {
    const s = new MemoryStorage({ voters: ["n1"], learners: [] });
    const node = new RawNode(config("n1", s, { preVote: true }));
    node.campaign();
    expect(node.status()).toMatchObject({ role: "leader", term: 2 });
    node.propose(enc.encode("x"));
    node.readIndex(enc.encode("r"));
    const rd = persist(node, s);
    expect(rd.readStates).toEqual([{ index: 3, requestCtx: enc.encode("r") }]);
    expect(rd.messages).toEqual([]);
    expect(rd.committedEntries.at(-1)?.data).toEqual(enc.encode("x"));
  });
});

describe("leader commit through real MsgAppResp traffic", () => {
  it("matches the model for any follower acknowledgements over a log of mixed terms", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 1, maxLength: 12 }),
        fc.nat(4),
        fc.array(fc.nat(20), { minLength: 4, maxLength: 4 }),
        (termSteps, proposals, acks) => {
          // n1's log: entries from older terms (bootstrap 1, then non-decreasing).
          const s = new MemoryStorage({ voters: ["n1", "n2", "n3", "n4", "n5"], learners: [] });
          const old: Entry[] = [];
          let t = 1;
          termSteps.forEach((step, k) => {
            t += step;
            old.push({ term: t, index: k + 2, type: "normal", data: new Uint8Array() });
          });
          s.append(old);
          s.setHardState({ term: t, vote: null, commit: 1 });
          const node = new RawNode(config("n1", s));
          electLeader(node, s, ["n2", "n3", "n4", "n5"]);
          const term = node.status().term;
          for (let i = 0; i < proposals; i++) node.propose(enc.encode(`p${i}`));
          persist(node, s);
          const last = s.lastIndex();
          const terms = [1, ...old.map((e) => e.term)];
          while (terms.length < last) terms.push(term);
          const matches = acks.map((a) => Math.min(a, last));
          ["n2", "n3", "n4", "n5"].forEach((p, k) => {
            node.step({ type: "MsgAppResp", from: p, to: "n1", term, index: matches[k]! });
          });
          // Model: largest N on a majority (3 of 5, n1 has everything) with term(N) == current term.
          let want = 1;
          for (let n = 2; n <= last; n++) {
            const replicas = 1 + matches.filter((m) => m >= n).length;
            if (replicas >= 3 && terms[n - 1] === term) want = n;
          }
          expect(node.status().commit).toBe(want);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("lazyCommitBroadcast", () => {
  /** A leader of three with one entry of its term sent; returns what n2's acknowledgement makes it send. */
  function commitBy(lazy: boolean): { commit: number; afterAck: Message[]; heartbeat: Message[] } {
    const s = new MemoryStorage(voters3);
    const node = new RawNode(config("n1", s, { lazyCommitBroadcast: lazy }));
    electLeader(node, s, ["n2", "n3"]);
    node.propose(enc.encode("x"));
    persist(node, s);
    const term = node.status().term;
    node.step({ type: "MsgAppResp", from: "n2", to: "n1", term, index: s.lastIndex() });
    const afterAck = persist(node, s).messages;
    node.tick();
    return { commit: node.status().commit, afterAck, heartbeat: persist(node, s).messages };
  }

  it("commits as eagerly, but sends no empty append for the commit; the next heartbeat carries it", () => {
    const eager = commitBy(false);
    const lazy = commitBy(true);
    expect(lazy.commit).toBe(eager.commit);
    const emptyApp = (m: Message) => m.type === "MsgApp" && (m.entries ?? []).length === 0;
    expect(eager.afterAck.filter(emptyApp).map((m) => [m.to, m.commit])).toEqual([["n2", eager.commit]]);
    expect(lazy.afterAck).toEqual([]);
    const beat = lazy.heartbeat.find((m) => m.type === "MsgHeartbeat" && m.to === "n2");
    expect(beat?.commit).toBe(lazy.commit);
  });
});

describe("learners", () => {
  it("acknowledgements from learners never commit anything, however many there are", () => {
    const s = new MemoryStorage({ voters: ["n1", "n2", "n3"], learners: ["n4", "n5"] });
    const node = new RawNode(config("n1", s));
    electLeader(node, s, ["n2", "n3"]);
    node.propose(enc.encode("x"));
    persist(node, s);
    const last = s.lastIndex();
    for (const l of ["n4", "n5"]) node.step({ type: "MsgAppResp", from: l, to: "n1", term: 2, index: last });
    expect(node.status().commit).toBe(1);
    node.step({ type: "MsgAppResp", from: "n2", to: "n1", term: 2, index: last });
    expect(node.status().commit).toBe(last);
  });
});

describe("replication mechanics", () => {
  it("fast backtracking: a follower with a long conflicting tail is repaired with one rejection", () => {
    const net = new Network({ voters: ["n1", "n2", "n3"], seed: 3 });
    net.member("n1").node.campaign();
    net.process("n1");
    net.deliver();
    // n1 (cut off) piles up 40 uncommitted entries of term 2.
    net.isolate("n1");
    for (let i = 0; i < 40; i++) net.member("n1").node.propose(enc.encode(`old${i}`));
    net.process("n1");
    net.deliver();
    // n2 leads term 3 and commits 40 entries of its own.
    net.member("n2").node.campaign();
    net.process("n2");
    net.deliver();
    for (let i = 0; i < 40; i++) net.member("n2").node.propose(enc.encode(`new${i}`));
    net.process("n2");
    net.deliver();
    expect(net.member("n2").node.status().commit).toBe(43);
    // n3 takes over in term 4: it starts probing n1 just past its own last index (44).
    net.member("n3").node.campaign();
    net.process("n3");
    net.deliver();
    expect(net.member("n3").node.status()).toMatchObject({ role: "leader", term: 4 });
    net.heal();
    let rejections = 0;
    net.queue = net.queue.filter((m) => m.to !== "n1");
    const count = (m: Message) => {
      if (m.type === "MsgAppResp" && m.from === "n1" && m.reject) rejections++;
    };
    for (let i = 0; i < 3; i++) {
      net.tick("n3");
      while (net.queue.length > 0) {
        const m = net.deliverAt(0);
        if (m) count(m);
      }
    }
    expect(net.member("n1").app.data).toEqual(Array.from({ length: 40 }, (_, i) => `new${i}`));
    // The hint skips the whole term-2 tail at once instead of probing entry by entry.
    expect(rejections).toBeGreaterThan(0);
    expect(rejections).toBeLessThanOrEqual(2);
  });

  it("flow control: at most maxInflightMsgs unacknowledged MsgApp per follower", () => {
    const net = new Network({ voters: ["n1", "n2", "n3"], seed: 5, maxInflightMsgs: 2 });
    net.member("n1").node.campaign();
    net.process("n1");
    net.deliver();
    expect(net.member("n1").node.status().progress?.n2?.state).toBe("replicate");
    for (let i = 0; i < 6; i++) {
      net.member("n1").node.propose(enc.encode(`e${i}`));
      net.process("n1");
    }
    const toN2 = net.queue.filter(
      (m) => m.to === "n2" && m.type === "MsgApp" && (m.entries?.length ?? 0) > 0,
    );
    expect(toN2).toHaveLength(2);
    // Acknowledgements open the window again and everything gets through.
    net.deliver();
    expect(net.member("n2").app.data).toEqual(["e0", "e1", "e2", "e3", "e4", "e5"]);
  });

  it("reportUnreachable drops a follower back to probing", () => {
    const net = new Network({ voters: ["n1", "n2", "n3"] });
    net.member("n1").node.campaign();
    net.process("n1");
    net.deliver();
    expect(net.member("n1").node.status().progress?.n2?.state).toBe("replicate");
    net.member("n1").node.reportUnreachable("n2");
    expect(net.member("n1").node.status().progress?.n2?.state).toBe("probe");
  });

  it("a lost snapshot is resent: after reportSnapshot(fail), or by itself after two election timeouts", () => {
    const net = new Network({ voters: ["n1", "n2", "n3"] });
    net.member("n1").node.campaign();
    net.process("n1");
    net.deliver();
    net.isolate("n3");
    for (let i = 0; i < 3; i++) net.member("n1").node.propose(enc.encode(`e${i}`));
    net.process("n1");
    net.deliver();
    net.compact("n1");
    net.heal();
    const snaps = () => net.queue.filter((m) => m.type === "MsgSnap" && m.to === "n3").length;
    // Heartbeat -> response -> probe -> entries compacted -> MsgSnap.
    net.tick("n1");
    net.deliver((m) => m.type !== "MsgSnap");
    expect(snaps()).toBe(1);
    net.queue = net.queue.filter((m) => m.type !== "MsgSnap"); // lost
    expect(net.member("n1").node.status().progress?.n3?.state).toBe("snapshot");
    net.member("n1").node.reportSnapshot("n3", false);
    net.tick("n1");
    net.deliver((m) => m.type !== "MsgSnap");
    expect(snaps()).toBe(1);
    net.queue = net.queue.filter((m) => m.type !== "MsgSnap"); // lost again, nobody reports it
    for (let i = 0; i < 19; i++) net.tick("n1");
    net.deliver((m) => m.type !== "MsgSnap");
    expect(snaps()).toBe(0);
    net.tick("n1");
    net.deliver((m) => m.type !== "MsgSnap");
    expect(snaps()).toBe(1);
    net.deliver();
    expect(net.member("n3").app.data).toEqual(["e0", "e1", "e2"]);
  });
});

describe("elections", () => {
  it("a candidate asks voters only, never learners", () => {
    const s = new MemoryStorage({ voters: ["n1", "n2", "n3"], learners: ["n4"] });
    const node = new RawNode(config("n1", s));
    node.campaign();
    expect(node.ready().messages.map((m) => m.to)).toEqual(["n2", "n3"]);
  });

  it("election timeouts are drawn from [electionTicks, 2*electionTicks) using the injected random source", () => {
    for (const [r, ticks] of [
      [0, 10],
      [0.999, 19],
      [0.5, 15],
    ] as const) {
      const node = new RawNode(config("n1", new MemoryStorage(voters3), { random: () => r }));
      let n = 0;
      while (node.status().role === "follower" && n < 100) {
        node.tick();
        n++;
      }
      expect(n).toBe(ticks);
    }
  });

  it("electionJitterTicks narrows the draw to [electionTicks, electionTicks + electionJitterTicks)", () => {
    for (const [r, ticks] of [
      [0, 10],
      [0.999, 14],
      [0.5, 12],
    ] as const) {
      const node = new RawNode(
        config("n1", new MemoryStorage(voters3), { random: () => r, electionJitterTicks: 5 }),
      );
      let n = 0;
      while (node.status().role === "follower" && n < 100) {
        node.tick();
        n++;
      }
      expect(n).toBe(ticks);
    }
  });

  it("a pre-candidate asks the voters that have not answered again every heartbeat interval, and wins once one grants", () => {
    const s = new MemoryStorage(voters3);
    const node = new RawNode(config("n1", s, { preVote: true, checkQuorum: true, random: () => 0 }));
    node.step({ type: "MsgHeartbeat", from: "n3", to: "n1", term: 2, commit: 1 });
    persist(node, s);
    const preVotesTo = () =>
      persist(node, s)
        .messages.filter((m) => m.type === "MsgPreVote")
        .map((m) => m.to);
    for (let i = 0; i < 10; i++) node.tick(); // the leader n3 went silent: election timeout
    expect(node.status().role).toBe("preCandidate");
    expect(preVotesTo()).toEqual(["n2", "n3"]);
    // n2 still heard from n3 within its lease and ignored it; n3 is gone. Neither answered: ask both again.
    node.tick();
    expect(preVotesTo()).toEqual(["n2", "n3"]);
    // A refusal is an answer: n2 is not asked again, n3 still is.
    node.step({ type: "MsgPreVoteResp", from: "n2", to: "n1", term: 2, reject: true });
    node.tick();
    expect(preVotesTo()).toEqual(["n3"]);
    expect(node.status()).toMatchObject({ role: "preCandidate", term: 2 }); // asking changed no term
    node.step({ type: "MsgPreVoteResp", from: "n3", to: "n1", term: 3 });
    expect(node.status()).toMatchObject({ role: "candidate", term: 3 });
  });

  it("with check-quorum, a follower that hears from its leader ignores a disruptive vote request", () => {
    const s = new MemoryStorage(voters3);
    const node = new RawNode(config("n2", s, { checkQuorum: true }));
    node.step({ type: "MsgHeartbeat", from: "n1", to: "n2", term: 2, commit: 1 });
    persist(node, s);
    node.step({ type: "MsgVote", from: "n3", to: "n2", term: 5, index: 9, logTerm: 4 });
    expect(node.status()).toMatchObject({ term: 2, lead: "n1", vote: null });
    expect(node.hasReady()).toBe(false);
    // ...unless the request comes from a leadership transfer.
    node.step({
      type: "MsgVote",
      from: "n3",
      to: "n2",
      term: 5,
      index: 9,
      logTerm: 4,
      context: enc.encode("transfer"),
    });
    expect(node.status()).toMatchObject({ term: 5, vote: "n3" });
  });

  it("a pre-vote request changes neither the term nor the vote of the node asked", () => {
    const s = new MemoryStorage(voters3);
    const node = new RawNode(config("n2", s, { preVote: true }));
    node.step({ type: "MsgPreVote", from: "n3", to: "n2", term: 2, index: 1, logTerm: 1 });
    const rd = node.ready();
    expect(rd.messages).toEqual([{ type: "MsgPreVoteResp", from: "n2", to: "n3", term: 2 }]);
    expect(rd.hardState).toBeUndefined();
    expect(node.status()).toMatchObject({ term: 1, vote: null });
  });
});

describe("local operations refuse with typed errors", () => {
  it("bad arguments are BadParameter", () => {
    const node = new RawNode(config("n1", new MemoryStorage(voters3)));
    expect(errorOf(() => node.propose("x" as unknown as Uint8Array))?.code).toBe("BadParameter");
    expect(errorOf(() => node.readIndex(undefined as unknown as Uint8Array))?.code).toBe("BadParameter");
    expect(errorOf(() => node.transferLeadership(""))?.code).toBe("BadParameter");
    expect(errorOf(() => node.applyConfChange({ type: "removeNode", node: "n9" }))?.code).toBe(
      "BadParameter",
    );
  });

  it("a follower checks a conf change against its own view before forwarding it", () => {
    const s = new MemoryStorage(voters3);
    const node = new RawNode(config("n2", s));
    node.step({ type: "MsgHeartbeat", from: "n1", to: "n2", term: 2, commit: 1 });
    persist(node, s);
    expect(errorOf(() => node.proposeConfChange({ type: "addVoter", node: "n3" }))?.message).toMatch(
      /n3 is already a voter/,
    );
    node.proposeConfChange({ type: "addLearner", node: "n4" });
    const fwd = node.ready().messages.find((m) => m.type === "MsgProp");
    expect(fwd).toMatchObject({ to: "n1", term: 0 });
    expect(fwd?.entries?.[0]?.type).toBe("confChange");
  });
});

describe("ReadIndex rounds on the leader", () => {
  /** A three-member cluster with n1 leading and an entry of its term committed (reads are served). */
  function ledByN1(): Network {
    const net = new Network({ voters: ["n1", "n2", "n3"], seed: 11 });
    net.member("n1").node.campaign();
    net.process("n1");
    net.deliver();
    expect(net.leaders()).toEqual(["n1"]);
    return net;
  }
  const readHeartbeats = (net: Network) =>
    net.queue.filter((m) => m.type === "MsgHeartbeat" && m.from === "n1" && m.context !== undefined);

  it("reads arriving while a round is out wait and go together in the next round, not one round each", () => {
    const net = ledByN1();
    net.member("n1").node.readIndex(enc.encode("a"));
    net.process("n1");
    // One round, to a majority with the leader: one follower (n2 and n3 both answered lately; id order).
    expect(readHeartbeats(net).map((m) => m.to)).toEqual(["n2"]);
    // Three more reads (the leader's own and forwarded ones) while that round is out: no new round yet.
    net.member("n1").node.readIndex(enc.encode("b"));
    net.member("n3").node.readIndex(enc.encode("c"));
    net.process("n1");
    net.process("n3");
    net.deliver((m) => m.type === "MsgReadIndex");
    net.member("n1").node.readIndex(enc.encode("d"));
    net.process("n1");
    expect(readHeartbeats(net)).toHaveLength(1);
    // The first round's acknowledgement confirms only the read that was waiting when it was sent.
    net.deliver((m) => m.type === "MsgHeartbeat" || m.type === "MsgHeartbeatResp", 2);
    const answered = () => [
      ...net.member("n1").app.readStates.map((r) => new TextDecoder().decode(r.requestCtx)),
      ...net.member("n3").app.readStates.map((r) => new TextDecoder().decode(r.requestCtx)),
    ];
    expect(answered()).toEqual(["a"]);
    // ... and send the one next round that carries all three, to n3, whose read waits in it.
    expect(readHeartbeats(net).map((m) => m.to)).toEqual(["n3"]);
    net.deliver();
    expect(answered().sort()).toEqual(["a", "b", "c", "d"]);
    expect(net.queue).toEqual([]);
  });

  it("a round goes to followers heard from lately before a silent one, and never needs the silent one", () => {
    const net = new Network({ voters: ["n1", "n2", "n3", "n4", "n5"], seed: 11, checkQuorum: true });
    net.member("n1").node.campaign();
    net.process("n1");
    net.deliver();
    net.isolate("n2");
    // Past an election timeout: check-quorum forgets who was active, then hears n3..n5 again.
    for (let i = 0; i < 25; i++) net.round(["n1"]);
    net.member("n1").node.readIndex(enc.encode("a"));
    net.process("n1");
    // Five voters: two followers make a majority with the leader; n2 (silent) is not one of them.
    expect(readHeartbeats(net).map((m) => m.to)).toEqual(["n3", "n4"]);
    net.deliver();
    expect(net.member("n1").app.readStates.map((r) => new TextDecoder().decode(r.requestCtx))).toEqual(["a"]);
  });

  it("a round whose acknowledgements are lost is completed by the next periodic heartbeat", () => {
    const net = ledByN1();
    net.member("n1").node.readIndex(enc.encode("a"));
    net.process("n1");
    net.queue.splice(0); // the round's heartbeats are lost
    net.member("n1").node.readIndex(enc.encode("b"));
    net.process("n1");
    expect(readHeartbeats(net)).toHaveLength(0); // waits: a round is (as far as n1 knows) out
    net.tick("n1", 1); // heartbeatTicks = 1: the periodic heartbeat carries the waiting reads
    net.deliver();
    expect(net.member("n1").app.readStates.map((r) => new TextDecoder().decode(r.requestCtx))).toEqual([
      "a",
      "b",
    ]);
  });
});
