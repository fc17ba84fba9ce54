/**
 * Raft's safety properties (Figure 3 of the paper) checked over a test Network as
 * it runs. Test-only. Each check throws with a description of the violation.
 */
import type { Network } from "./network.js";

export class SafetyChecker {
  /** term -> the one node that led it. */
  private readonly leaderOfTerm = new Map<number, string>();
  /** index -> "term:type:data" of the entry every node applied there. */
  private readonly appliedAt = new Map<number, string>();
  private readonly wasLeader = new Map<string, number>();
  violations = 0;

  constructor(private readonly net: Network) {
    net.onApply = (id, index, key) => this.checkApply(id, index, key);
    net.onReady = (id) => this.checkLeader(id);
  }

  /** Election safety: at most one leader per term. Leader completeness on each new leader. */
  private checkLeader(id: string): void {
    const s = this.net.member(id).node.status();
    if (s.role !== "leader") return;
    const other = this.leaderOfTerm.get(s.term);
    if (other !== undefined && other !== id) {
      throw new Error(`election safety: ${other} and ${id} both led term ${s.term}`);
    }
    this.leaderOfTerm.set(s.term, id);
    if (this.wasLeader.get(id) === s.term) return;
    this.wasLeader.set(id, s.term);
    // Leader completeness: a new leader holds every entry anyone applied.
    const log = this.net.member(id).node.logEntries();
    const first = log[0]?.index ?? Number.POSITIVE_INFINITY;
    for (const [index, key] of this.appliedAt) {
      if (index < first) continue; // compacted into the leader's snapshot
      const e = log[index - first];
      const mine = e ? `${e.term}:${e.type}:${new TextDecoder().decode(e.data)}` : "(missing)";
      if (mine !== key) {
        throw new Error(
          `leader completeness: ${id} leads term ${s.term} with ${mine} at ${index}, applied was ${key}`,
        );
      }
    }
  }

  /** State machine safety: no two nodes apply different entries at the same index. */
  private checkApply(id: string, index: number, key: string): void {
    const prior = this.appliedAt.get(index);
    if (prior !== undefined && prior !== key) {
      throw new Error(
        `state machine safety: ${id} applied ${key} at ${index}, another node applied ${prior}`,
      );
    }
    this.appliedAt.set(index, key);
  }

  /** Log matching: same index and term => identical entries and identical prefixes. */
  checkLogMatching(): void {
    const logs = this.net.ids().map((id) => ({
      id,
      byIndex: new Map(
        this.net
          .member(id)
          .node.logEntries()
          .map((e) => [e.index, e]),
      ),
    }));
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const la = logs[a]!;
        const lb = logs[b]!;
        // Walk down from the highest common index: once terms agree, everything below must agree.
        let agreed = false;
        const indexes = [...la.byIndex.keys()].filter((i) => lb.byIndex.has(i)).sort((x, y) => y - x);
        for (const i of indexes) {
          const ea = la.byIndex.get(i)!;
          const eb = lb.byIndex.get(i)!;
          if (ea.term === eb.term) agreed = true;
          if (!agreed) continue;
          const same =
            ea.term === eb.term &&
            ea.type === eb.type &&
            ea.data.length === eb.data.length &&
            ea.data.every((x, k) => x === eb.data[k]);
          if (!same) {
            throw new Error(`log matching: ${la.id} and ${lb.id} agree above index ${i} but differ at ${i}`);
          }
        }
      }
    }
  }

  get leaderTermCount(): number {
    return this.leaderOfTerm.size;
  }

  get appliedCount(): number {
    return this.appliedAt.size;
  }
}
