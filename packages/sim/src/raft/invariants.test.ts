import type { Entry, Message } from "@hsmpool/raft";
import { MemoryStorage } from "@hsmpool/raft";
import { describe, expect, it } from "vitest";
import { chainDigest, type Digest, EMPTY_DIGEST } from "./digest.js";
import { type InvariantName, InvariantViolation, LogMirror, RaftChecker } from "./invariants.js";

const e = (index: number, term: number, byte = index): Entry => ({
  index,
  term,
  type: "normal",
  data: new Uint8Array([byte]),
});

function digestOf(entries: Entry[]): Digest {
  return entries.reduce<Digest>((d, x) => chainDigest(d, x), EMPTY_DIGEST);
}

function violation(fn: () => void): InvariantName | "none" {
  try {
    fn();
    return "none";
  } catch (err) {
    if (err instanceof InvariantViolation) return err.invariant;
    throw err;
  }
}

const msg = (m: Partial<Message> & Pick<Message, "type" | "from" | "to" | "term">): Message => m;

describe("LogMirror", () => {
  it("overwrites a conflicting suffix like storage does and chains digests", () => {
    const m = new LogMirror();
    m.append([e(1, 1), e(2, 1), e(3, 1)]);
    m.append([e(2, 2, 9)]);
    expect(m.lastIndex).toBe(2);
    expect(m.termAt(2)).toBe(2);
    expect(m.digestAt(2)).toEqual(digestOf([e(1, 1), e(2, 2, 9)]));
    expect(() => m.append([e(5, 2)])).toThrow(/gap/);
  });
});

describe("RaftChecker catches each kind of violation", () => {
  it("election safety: two leaders in one term", () => {
    const c = new RaftChecker();
    c.observeLeader("n1", 3, "test");
    expect(violation(() => c.observeLeader("n1", 3, "again"))).toBe("none");
    expect(violation(() => c.observeLeader("n2", 3, "test"))).toBe("election-safety");
  });

  it("election safety: a leader-only message from a second node in the same term", () => {
    const c = new RaftChecker();
    c.observeSent(msg({ type: "MsgApp", from: "n1", to: "n2", term: 4 }));
    expect(violation(() => c.observeSent(msg({ type: "MsgHeartbeat", from: "n3", to: "n2", term: 4 })))).toBe(
      "election-safety",
    );
  });

  it("election safety: one node voting for two candidates in a term", () => {
    const c = new RaftChecker();
    c.observeSent(msg({ type: "MsgVoteResp", from: "n1", to: "n2", term: 5 }));
    c.observeSent(msg({ type: "MsgVoteResp", from: "n1", to: "n3", term: 5, reject: true }));
    expect(violation(() => c.observeSent(msg({ type: "MsgVoteResp", from: "n1", to: "n3", term: 5 })))).toBe(
      "election-safety",
    );
  });

  it("log matching: same index and term, different history", () => {
    const c = new RaftChecker();
    c.observeAppend("n1", [e(1, 1), e(2, 2)]);
    c.observeAppend("n2", [e(1, 1), e(2, 2)]);
    c.observeAppend("n3", [e(1, 2, 77)]); // a different term at index 1 is allowed...
    expect(violation(() => c.observeAppend("n3", [e(2, 2)]))).toBe("log-matching"); // ...but not then (2, 2)
  });

  it("commit bounds: a commit index beyond the node's own log", () => {
    const c = new RaftChecker();
    c.observeAppend("n1", [e(1, 1)]);
    expect(violation(() => c.observeCommit("n1", 2, 1))).toBe("commit-bounds");
  });

  it("leader completeness: a new leader without an entry committed in an earlier term", () => {
    const c = new RaftChecker();
    c.observeAppend("n1", [e(1, 1), e(2, 1)]);
    c.observeCommit("n1", 2, 1);
    c.observeAppend("n2", [e(1, 1)]);
    expect(violation(() => c.observeBecameLeader("n2", 2))).toBe("leader-completeness");
    // Holding it is fine.
    c.observeAppend("n3", [e(1, 1), e(2, 1)]);
    expect(violation(() => c.observeBecameLeader("n3", 3))).toBe("none");
  });

  it("leader completeness does not blame a leader of an older term for later commits", () => {
    const c = new RaftChecker();
    c.observeAppend("n1", [e(1, 5)]);
    c.observeCommit("n1", 1, 5); // committed in term 5
    c.observeAppend("n2", []);
    expect(violation(() => c.observeBecameLeader("n2", 4))).toBe("none");
  });

  it("state machine safety: two nodes apply different entries at one index", () => {
    const c = new RaftChecker();
    c.checkApplied("n1", 0, EMPTY_DIGEST);
    c.checkApplied("n1", 1, digestOf([e(1, 1)]));
    expect(violation(() => c.checkApplied("n2", 1, digestOf([e(1, 1, 5)])))).toBe("state-machine-safety");
  });

  it("state machine safety: a different prefix committed at an index committed before", () => {
    const c = new RaftChecker();
    c.observeAppend("n1", [e(1, 1)]);
    c.observeCommit("n1", 1, 1);
    c.observeAppend("n2", [e(1, 2)]);
    expect(violation(() => c.observeCommit("n2", 1, 2))).toBe("state-machine-safety");
  });

  it("persist-before-send: a restart that forgot its term or its vote", () => {
    const c = new RaftChecker();
    c.observeSent(msg({ type: "MsgVoteResp", from: "n1", to: "n2", term: 7 }));
    const storage = new MemoryStorage({ voters: ["n1", "n2", "n3"], learners: [] });
    expect(violation(() => c.observeRecovered("n1", storage, { term: 6, vote: null, commit: 1 }))).toBe(
      "persist-before-send",
    );
    expect(violation(() => c.observeRecovered("n1", storage, { term: 7, vote: "n3", commit: 1 }))).toBe(
      "persist-before-send",
    );
    expect(violation(() => c.observeRecovered("n1", storage, { term: 7, vote: "n2", commit: 1 }))).toBe(
      "none",
    );
  });

  it("pre-vote terms are not promises: a restart below a pre-vote's term is fine", () => {
    const c = new RaftChecker();
    c.observeSent(msg({ type: "MsgPreVote", from: "n1", to: "n2", term: 9 }));
    const storage = new MemoryStorage({ voters: ["n1", "n2", "n3"], learners: [] });
    expect(violation(() => c.observeRecovered("n1", storage, { term: 8, vote: null, commit: 1 }))).toBe(
      "none",
    );
  });

  it("linearizable read: a read that misses a write acknowledged before it started", () => {
    const c = new RaftChecker();
    c.checkApplied("n1", 0, EMPTY_DIGEST);
    c.checkApplied("n1", 1, digestOf([e(1, 1)]));
    c.checkApplied("n1", 2, digestOf([e(1, 1), e(2, 1)]));
    c.observeApplyWrite(100, 1);
    c.observeApplyWrite(101, 2);
    c.observeAck(100, 0, 1, 1);
    c.observeAck(101, 0, 2, 1);
    c.readStarted(1, 0, 0);
    expect(violation(() => c.observeRead(1, "n2", 100, 5))).toBe("linearizable-read");
    c.readStarted(2, 0, 0);
    expect(violation(() => c.observeRead(2, "n2", 101, 5))).toBe("none");
    c.readStarted(3, 0, 0);
    // The write's later (duplicate) application does not count if the node had not applied it.
    c.observeApplyWrite(100, 3);
    expect(violation(() => c.observeRead(3, "n2", 100, 2))).toBe("linearizable-read");
  });

  it("durability: the final leader lacks an acknowledged write", () => {
    const c = new RaftChecker();
    c.checkApplied("n1", 0, EMPTY_DIGEST);
    c.checkApplied("n1", 1, digestOf([e(1, 1)]));
    c.observeAck(100, 0, 1, 1);
    c.observeAppend("n2", [e(1, 2, 3)]);
    expect(violation(() => c.checkDurable("n2", 3))).toBe("durability");
    c.observeAppend("n3", [e(1, 1)]);
    expect(violation(() => c.checkDurable("n3", 3))).toBe("none");
  });
});
