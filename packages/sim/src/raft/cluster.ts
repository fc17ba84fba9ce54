import { isHsmPoolError } from "@hsmpool/errors";
import type { Prng } from "@hsmpool/faults";
import type { ConfChange, Entry, Message, NodeId, RawNode, Role, UnsafeVariant } from "@hsmpool/raft";
import { describeFault, type Fault, type Intensity } from "../faults.js";
import { Nemesis, type NemesisHost } from "../nemesis.js";
import { Network } from "../network.js";
import { EventQueue, formatSimTime, US_PER_MS } from "../scheduler.js";
import { TraceHash, Transcript } from "../trace.js";
import { cloneMessage, describeMessage, MESSAGE_CODES } from "./format.js";
import { InvariantViolation, RaftChecker } from "./invariants.js";
import { encodeReadCtx, encodeWrite, type KvWrite } from "./kv.js";
import { type NodeHost, type RaftTuning, SimRaftNode } from "./node.js";
import type { OperatorOp, ScenarioPlan } from "./scenarios.js";
import { type ClientOp, Workload } from "./workload.js";

/**
 * The Raft cluster harness: owns the event queue, network, nodes, workload,
 * operator and fault schedule of one run, and turns each event into calls on the
 * nodes. Everything random comes from named splits of the run's PRNG.
 */

export const TICK_US = 50 * US_PER_MS;
const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 2;
/** Operator actions that cannot run yet (no leader, a conf change pending) are retried this often. */
const OP_RETRY_US = 300 * US_PER_MS;
const OP_MAX_ATTEMPTS = 30;

export type SimEvent =
  | { k: "tick"; node: SimRaftNode }
  | { k: "deliver"; m: Message }
  | { k: "fsync"; node: SimRaftNode; incarnation: number }
  | { k: "fault-start"; fault: Fault; id: number }
  | { k: "fault-arm"; fault: Fault; id: number }
  | { k: "fault-end"; id: number }
  | { k: "client" }
  | { k: "op"; op: OperatorOp; attempt: number }
  | { k: "heal" }
  | { k: "liveness" };

const EVENT_CODES: Record<SimEvent["k"], number> = {
  tick: 1,
  deliver: 2,
  fsync: 3,
  "fault-start": 4,
  "fault-arm": 10,
  "fault-end": 5,
  client: 6,
  op: 7,
  heal: 8,
  liveness: 9,
};

export interface ClusterOptions {
  plan: ScenarioPlan;
  intensity: Intensity;
  durationUs: number;
  /** All faults heal here; undefined: no heal point (the run is too short for a liveness check). */
  healAtUs: number | undefined;
  livenessBoundUs: number;
  unsafeVariant?: UnsafeVariant;
  transcript?: (line: string) => void;
}

export interface ClusterStats {
  events: number;
  eventsByKind: Record<SimEvent["k"], number>;
  messagesSent: number;
  messagesDelivered: number;
  snapshotsDelivered: number;
  crashes: number;
  restarts: number;
  leaderChanges: number;
  confChangesApplied: number;
  writesIssued: number;
  writesAcked: number;
  readsIssued: number;
  readsChecked: number;
  highestCommit: number;
  faultsApplied: number;
}

export class RaftCluster implements NodeHost {
  readonly checker = new RaftChecker();
  readonly queue = new EventQueue<SimEvent>();
  readonly trace = new TraceHash();
  readonly transcript: Transcript;
  readonly nodes = new Map<NodeId, SimRaftNode>();
  private readonly nodeNumber = new Map<NodeId, number>();
  private readonly network: Network;
  private readonly workload: Workload;
  private readonly opPrng: Prng;
  private readonly tickPrng: Prng;
  private readonly nemesis: Nemesis;
  /** Reactive faults waiting for the next election. */
  private armedFaults: { fault: Fault; id: number }[] = [];
  /** Client requests sent to a paused node, handled when it resumes. */
  private readonly deferredOps = new Map<NodeId, ClientOp[]>();
  private healedAtUs: number | undefined;
  private firstAckAfterHealUs: number | undefined;
  private readonly tickUs = new Map<NodeId, number>();
  readonly stats: ClusterStats = {
    events: 0,
    eventsByKind: {
      tick: 0,
      deliver: 0,
      fsync: 0,
      "fault-start": 0,
      "fault-arm": 0,
      "fault-end": 0,
      client: 0,
      op: 0,
      heal: 0,
      liveness: 0,
    },
    messagesSent: 0,
    messagesDelivered: 0,
    snapshotsDelivered: 0,
    crashes: 0,
    restarts: 0,
    leaderChanges: 0,
    confChangesApplied: 0,
    writesIssued: 0,
    writesAcked: 0,
    readsIssued: 0,
    readsChecked: 0,
    highestCommit: 0,
    faultsApplied: 0,
  };

  constructor(
    prng: Prng,
    private readonly options: ClusterOptions,
  ) {
    const { plan } = options;
    this.transcript = new Transcript(options.transcript !== undefined, options.transcript);
    this.network = new Network(prng.split("network"), plan.link);
    this.nemesis = new Nemesis(this.network, prng.split("faults"), options.intensity, this.nemesisHost());
    this.workload = new Workload(prng.split("workload"));
    this.opPrng = prng.split("operator");
    this.tickPrng = prng.split("ticks");
    const tuning: RaftTuning = {
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: HEARTBEAT_TICKS,
      preVote: plan.preVote,
      checkQuorum: plan.checkQuorum,
      maxSizePerMsgBytes: plan.maxSizePerMsgBytes,
      maxInflightMsgs: plan.maxInflightMsgs,
      lazyCommitBroadcast: plan.lazyCommitBroadcast,
      ...(options.unsafeVariant ? { unsafeVariant: options.unsafeVariant } : {}),
    };
    const voters: NodeId[] = [];
    for (let i = 1; i <= plan.voters; i++) voters.push(`n${i}`);
    const nodePrng = prng.split("nodes");
    for (let i = 1; i <= plan.voters + plan.spares; i++) {
      const id = `n${i}`;
      // Spares join later by conf change, so they start knowing no members.
      const conf = i <= plan.voters ? { voters, learners: [] } : { voters: [], learners: [] };
      const fsyncDelay = (p: Prng) => 100 + Math.round(p.exponential(900));
      const node = new SimRaftNode(id, conf, nodePrng.split(id), tuning, plan.compaction, this, fsyncDelay);
      this.nodes.set(id, node);
      this.nodeNumber.set(id, i);
      // Each node's clock runs up to ±1% fast or slow, and ticks at its own phase.
      this.tickUs.set(id, Math.round(TICK_US * (0.99 + 0.02 * this.tickPrng.float())));
    }
  }

  /** Schedule everything of the plan and start the initial voters. */
  start(): void {
    const { plan, healAtUs } = this.options;
    for (const node of this.nodes.values()) {
      if (this.nodeNumber.get(node.id)! <= plan.voters) this.startNode(node);
    }
    plan.faults.forEach((fault, id) => {
      this.queue.at(fault.atUs, { k: fault.onElection ? "fault-arm" : "fault-start", fault, id });
    });
    for (const op of plan.ops) this.queue.at(op.atUs, { k: "op", op: op.op, attempt: 0 });
    this.queue.after(this.workload.gapUs(), { k: "client" });
    if (healAtUs !== undefined) {
      this.queue.at(healAtUs, { k: "heal" });
      const deadline = healAtUs + this.options.livenessBoundUs;
      if (deadline <= this.options.durationUs) this.queue.at(deadline, { k: "liveness" });
    }
  }

  private startNode(node: SimRaftNode): void {
    node.start();
    const tick = this.tickUs.get(node.id)!;
    this.queue.after(this.tickPrng.int(tick) + 1, { k: "tick", node });
    node.pump();
  }

  /** Process events until simulated time passes durationUs. Throws InvariantViolation. */
  run(): void {
    const end = this.options.durationUs;
    for (;;) {
      const t = this.queue.peekTime();
      if (t === undefined || t > end) break;
      const ev = this.queue.pop()!;
      this.stats.events++;
      this.stats.eventsByKind[ev.k]++;
      this.handle(ev);
    }
    this.finalChecks();
  }

  get nowUs(): number {
    return this.queue.now;
  }

  log(make: () => string): void {
    this.transcript.line(() => `t=${formatSimTime(this.queue.now)} ${make()}`);
  }

  private num(id: NodeId): number {
    return this.nodeNumber.get(id) ?? 0;
  }

  private handle(ev: SimEvent): void {
    const tr = this.trace;
    tr.add(EVENT_CODES[ev.k]);
    tr.add(this.queue.now);
    switch (ev.k) {
      case "tick": {
        const node = ev.node;
        tr.add(this.num(node.id));
        if (node.state === "decommissioned") return;
        node.tick();
        this.queue.after(this.tickUs.get(node.id)!, ev);
        return;
      }
      case "deliver":
        this.deliver(ev.m);
        return;
      case "fsync":
        tr.add(this.num(ev.node.id));
        ev.node.fsyncDone(ev.incarnation);
        return;
      case "fault-start":
        tr.add(ev.id);
        this.startFault(ev.fault, ev.id);
        return;
      case "fault-arm":
        tr.add(ev.id);
        this.armedFaults.push({ fault: ev.fault, id: ev.id });
        return;
      case "fault-end":
        tr.add(ev.id);
        this.nemesis.end(ev.id);
        return;
      case "client":
        this.clientOp();
        this.queue.after(this.workload.gapUs(), ev);
        return;
      case "op":
        this.operatorOp(ev.op, ev.attempt);
        return;
      case "heal":
        this.healAll();
        return;
      case "liveness":
        this.checkLiveness();
        return;
    }
  }

  // ---- network -------------------------------------------------------------

  send(m: Message): void {
    this.stats.messagesSent++;
    const target = this.nodes.get(m.to);
    if (!target) return;
    const arrivals = this.network.send(m.from, m.to, this.queue.now);
    if (arrivals.length === 0) {
      this.log(() => `${m.from} -> ${m.to} ${describeMessage(m)} lost`);
      if (m.type === "MsgSnap") this.reportSnapshot(m, false);
      return;
    }
    for (const at of arrivals) this.queue.at(at, { k: "deliver", m: cloneMessage(m) });
  }

  private deliver(m: Message): void {
    const tr = this.trace;
    tr.add(this.num(m.from));
    tr.add(this.num(m.to));
    tr.add(MESSAGE_CODES[m.type]);
    tr.add(m.term);
    tr.add(m.index ?? 0);
    tr.add(m.entries?.length ?? 0);
    if (this.network.isCut(m.from, m.to)) {
      this.log(() => `${m.from} -> ${m.to} ${describeMessage(m)} dropped in flight (partition)`);
      if (m.type === "MsgSnap") this.reportSnapshot(m, false);
      return;
    }
    const target = this.nodes.get(m.to);
    if (!target?.running) {
      if (m.type === "MsgSnap") this.reportSnapshot(m, false);
      return;
    }
    this.stats.messagesDelivered++;
    this.log(() => `${m.from} -> ${m.to} ${describeMessage(m)}`);
    target.step(m);
    if (m.type === "MsgSnap") {
      this.stats.snapshotsDelivered++;
      this.reportSnapshot(m, true);
    }
  }

  /** The transport tells the leader whether a snapshot got through (as etcd's transport does). */
  private reportSnapshot(m: Message, ok: boolean): void {
    const sender = this.nodes.get(m.from);
    if (sender?.state !== "up" || !sender.raw) return;
    sender.act((raw) => raw.reportSnapshot(m.to, ok));
  }

  scheduleFsync(node: SimRaftNode, delayUs: number): void {
    this.queue.after(delayUs, { k: "fsync", node, incarnation: node.incarnation });
  }

  // ---- node callbacks ------------------------------------------------------

  onRoleChange(node: SimRaftNode, role: Role, term: number): void {
    this.log(() => `${node.id} is now ${role} (term ${term})`);
    if (role !== "leader") return;
    this.stats.leaderChanges++;
    const armed = this.armedFaults;
    if (armed.length === 0) return;
    this.armedFaults = [];
    for (const { fault, id } of armed) {
      this.queue.after(fault.onElection?.delayUs ?? 0, { k: "fault-start", fault, id });
    }
  }

  onApplied(node: SimRaftNode, e: Entry, write: KvWrite | null): void {
    if (e.index > this.stats.highestCommit) this.stats.highestCommit = e.index;
    if (!write) return;
    this.checker.observeApplyWrite(write.writeId, e.index);
    if (!node.localWrites.delete(write.writeId)) return;
    this.checker.observeAck(write.writeId, write.key, e.index, node.term);
    this.stats.writesAcked++;
    this.log(() => `client <- ${node.id} ack w${write.writeId} (k${write.key}) at index ${e.index}`);
    const proposedAt = this.workload.proposedAtUs.get(write.writeId);
    if (
      this.healedAtUs !== undefined &&
      this.firstAckAfterHealUs === undefined &&
      proposedAt !== undefined &&
      proposedAt >= this.healedAtUs
    ) {
      this.firstAckAfterHealUs = this.queue.now;
    }
    this.workload.proposedAtUs.delete(write.writeId);
  }

  onConfApplied(node: SimRaftNode, cc: ConfChange): void {
    this.stats.confChangesApplied++;
    this.log(() => `${node.id} applies conf change ${cc.type} ${cc.node}`);
    if (cc.type !== "removeNode") return;
    // Applied anywhere means committed: the operator now stops the removed node for good.
    const removed = this.nodes.get(cc.node);
    if (removed && removed.state !== "decommissioned") {
      removed.decommission();
      this.deferredOps.delete(removed.id);
      this.log(() => `operator decommissions ${cc.node}`);
    }
  }

  onReadServed(node: SimRaftNode, readId: number, key: number): void {
    const value = node.kv.get(key);
    this.log(
      () => `client <- ${node.id} read r${readId} k${key} = ${value === undefined ? "none" : `w${value}`}`,
    );
    this.checker.observeRead(readId, node.id, value, node.kv.applied);
  }

  // ---- membership view -----------------------------------------------------

  /** Started, not decommissioned nodes (up, paused or crashed). */
  members(): SimRaftNode[] {
    return [...this.nodes.values()].filter((n) => n.state !== "spare" && n.state !== "decommissioned");
  }

  /** The running leader with the highest term, if any. */
  leader(): SimRaftNode | null {
    let best: SimRaftNode | null = null;
    for (const n of this.nodes.values()) {
      if (n.state === "up" && n.role === "leader" && (!best || n.term > best.term)) best = n;
    }
    return best;
  }

  // ---- workload ------------------------------------------------------------

  private clientOp(): void {
    const candidates = this.members().filter((n) => n.running);
    const op = this.workload.next(this.queue.now);
    this.trace.add(op.kind === "write" ? op.writeId : -op.readId);
    if (candidates.length === 0) return;
    const node = this.workload.pickNode(candidates);
    this.trace.add(this.num(node.id));
    if (op.kind === "write") this.stats.writesIssued++;
    else {
      this.stats.readsIssued++;
      // The read is invoked now, even if the node is frozen and answers much later.
      this.checker.readStarted(op.readId, op.key, this.queue.now);
    }
    if (node.state === "paused") {
      const q = this.deferredOps.get(node.id) ?? [];
      q.push(op);
      this.deferredOps.set(node.id, q);
      return;
    }
    this.execute(node, op);
  }

  private execute(node: SimRaftNode, op: ClientOp): void {
    if (op.kind === "write") {
      this.log(() => `client -> ${node.id} write w${op.writeId} (k${op.key})`);
      node.localWrites.add(op.writeId);
      const ok = this.tryAct(node, (raw) => raw.propose(encodeWrite({ key: op.key, writeId: op.writeId })));
      if (!ok) node.localWrites.delete(op.writeId);
    } else {
      this.log(() => `client -> ${node.id} read r${op.readId} (k${op.key})`);
      node.readsAwaitingIndex.set(op.readId, op.key);
      const ok = this.tryAct(node, (raw) => raw.readIndex(encodeReadCtx(op.readId)));
      if (!ok) {
        node.readsAwaitingIndex.delete(op.readId);
        this.checker.readAbandoned(op.readId);
      }
    }
  }

  /** Run a request on a node; a refusal (HsmPoolError: not leader, no quorum, ...) is an ordinary outcome. */
  private tryAct(node: SimRaftNode, fn: (raw: RawNode) => void): boolean {
    try {
      node.act(fn);
      return true;
    } catch (e) {
      if (isHsmPoolError(e)) {
        this.log(() => `${node.id} refuses: ${e.message}`);
        return false;
      }
      throw e;
    }
  }

  // ---- faults --------------------------------------------------------------

  private startFault(fault: Fault, id: number): void {
    if (this.healedAtUs !== undefined) return; // a reactive fault that fired after the heal point
    const what = this.nemesis.start(fault, id);
    if (what === null) {
      this.log(() => `fault #${id} (${describeFault(fault)}) skipped: nothing to hit`);
      return;
    }
    this.stats.faultsApplied++;
    this.log(() => `fault #${id} starts: ${what} for ${formatSimTime(fault.durationUs)}`);
    this.queue.after(fault.durationUs, { k: "fault-end", id });
  }

  // ---- NemesisHost -----------------------------------------------------------

  private nemesisHost(): NemesisHost {
    return {
      members: () => this.members().map((n) => n.id),
      leader: () => this.leader()?.id ?? null,
      crash: (id, prng, corruptProbability) => {
        const node = this.nodes.get(id);
        if (!node?.running) return false;
        this.stats.crashes++;
        node.crash(prng, corruptProbability);
        this.deferredOps.delete(id);
        return true;
      },
      restart: (id) => {
        const node = this.nodes.get(id);
        if (node) this.restartNode(node);
      },
      pause: (id) => {
        const node = this.nodes.get(id);
        if (node?.state !== "up") return false;
        node.pause();
        return true;
      },
      resume: (id) => {
        const node = this.nodes.get(id);
        if (node) this.resumeNode(node);
      },
    };
  }

  private restartNode(node: SimRaftNode): void {
    if (node.state !== "down") return;
    this.stats.restarts++;
    node.restart();
  }

  private resumeNode(node: SimRaftNode): void {
    if (node.state !== "paused") return;
    this.log(() => `${node.id} resumes`);
    node.resume();
    const ops = this.deferredOps.get(node.id) ?? [];
    this.deferredOps.delete(node.id);
    for (const op of ops) {
      if (!node.isUp) break;
      this.execute(node, op);
    }
  }

  private healAll(): void {
    this.log(
      () => "all faults heal: partitions and link faults cleared, crashed nodes restart, paused nodes resume",
    );
    this.healedAtUs = this.queue.now;
    this.armedFaults = [];
    this.nemesis.healAll();
    for (const node of this.members()) {
      if (node.state === "down") this.restartNode(node);
      else if (node.state === "paused") this.resumeNode(node);
    }
  }

  // ---- operator (membership, leadership) -------------------------------------

  private operatorOp(op: OperatorOp, attempt: number): void {
    if (this.tryOperatorOp(op)) return;
    const healAt = this.options.healAtUs;
    const at = this.queue.now + OP_RETRY_US;
    if (attempt + 1 < OP_MAX_ATTEMPTS && (healAt === undefined || at < healAt)) {
      this.queue.at(at, { k: "op", op, attempt: attempt + 1 });
    } else {
      this.log(() => `operator gives up on ${op.kind}`);
    }
  }

  /** Run one operator action; false when it cannot run yet (no leader, change pending...). */
  private tryOperatorOp(op: OperatorOp): boolean {
    const leader = this.leader();
    if (!leader?.raw) return false;
    const status = leader.raw.status();
    const conf = status.conf;
    switch (op.kind) {
      case "transfer-leader": {
        const others = conf.voters.filter((v) => v !== leader.id && this.nodes.get(v)?.state === "up");
        if (others.length === 0) return false;
        const to = this.opPrng.pick(others);
        this.log(() => `operator asks ${leader.id} to transfer leadership to ${to}`);
        this.tryAct(leader, (raw) => raw.transferLeadership(to));
        return true;
      }
      case "add-learner": {
        const members = new Set([...conf.voters, ...conf.learners]);
        // Prefer a node started earlier whose addition did not commit; else start a spare.
        const nodes = [...this.nodes.values()];
        const joiner =
          nodes.find((n) => n.state === "up" && !members.has(n.id) && n.conf.voters.length === 0) ??
          nodes.find((n) => n.state === "spare");
        if (!joiner) return true; // no spare left: nothing to do
        if (joiner.state === "spare") {
          this.log(() => `operator starts ${joiner.id}`);
          this.startNode(joiner);
        }
        this.log(() => `operator proposes addLearner ${joiner.id} via ${leader.id}`);
        return this.tryAct(leader, (raw) => raw.proposeConfChange({ type: "addLearner", node: joiner.id }));
      }
      case "promote": {
        const progress = status.progress ?? {};
        const caughtUp = conf.learners.filter((l) => {
          const p = progress[l];
          return p !== undefined && p.match >= status.commit - 5 && this.nodes.get(l)?.state === "up";
        });
        if (caughtUp.length === 0) return false;
        const id = this.opPrng.pick(caughtUp);
        this.log(() => `operator proposes addVoter ${id} (promote) via ${leader.id}`);
        return this.tryAct(leader, (raw) => raw.proposeConfChange({ type: "addVoter", node: id }));
      }
      case "remove": {
        // Keep at least three voters: removal follows a promotion.
        if (conf.voters.length <= 3) return false;
        const followers = conf.voters.filter((v) => v !== leader.id);
        const id = op.target === "leader" ? leader.id : this.opPrng.pick(followers);
        this.log(() => `operator proposes removeNode ${id} via ${leader.id}`);
        return this.tryAct(leader, (raw) => raw.proposeConfChange({ type: "removeNode", node: id }));
      }
    }
  }

  // ---- liveness and end of run ---------------------------------------------

  private checkLiveness(): void {
    const bound = formatSimTime(this.options.livenessBoundUs);
    const leader = this.leader();
    if (!leader) {
      throw new InvariantViolation("liveness", `no leader ${bound} after the last fault healed`);
    }
    if (this.firstAckAfterHealUs === undefined) {
      throw new InvariantViolation(
        "liveness",
        `no write proposed after the last fault healed was acknowledged within ${bound} (leader ${leader.id}, term ${leader.term})`,
      );
    }
    this.log(
      () =>
        `liveness ok: leader ${leader.id}, first write after heal acked at ${formatSimTime(this.firstAckAfterHealUs!)}`,
    );
  }

  private finalChecks(): void {
    this.stats.readsChecked = this.checker.readsChecked;
    if (this.healedAtUs === undefined) return;
    const leader = this.leader();
    if (leader) this.checker.checkDurable(leader.id, leader.term);
  }
}
