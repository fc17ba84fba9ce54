/**
 * A tiny deterministic in-package network of RawNodes for scenario and stress tests
 * (test-only; excluded from the build). Every node persists each Ready to its
 * MemoryStorage *before* its messages enter the network, then applies committed
 * entries to a toy state machine (the list of applied payloads).
 */
import { Prng } from "@hsmpool/faults";
import { decodeConfChange } from "../confchange-codec.js";
import { RawNode } from "../rawnode.js";
import { MemoryStorage } from "../storage.js";
import type { ConfState, Entry, Message, ReadState, Role, UnsafeVariant } from "../types.js";

/**
 * A seeded draw in [0, 1) from the simulator's PRNG (@hsmpool/faults, xoshiro128**):
 * one generator for every seeded test in the project.
 */
export function prng(seed: number): () => number {
  return drawsOf(Prng.fromSeed(seed));
}

function drawsOf(p: Prng): () => number {
  return () => p.float();
}

export interface NetworkOptions {
  voters: string[];
  learners?: string[];
  preVote?: boolean;
  checkQuorum?: boolean;
  electionTicks?: number;
  heartbeatTicks?: number;
  seed?: number;
  disableProposalForwarding?: boolean;
  maxInflightMsgs?: number;
  maxSizePerMsgBytes?: number;
  unsafeVariant?: UnsafeVariant;
}

/** What a node's application has done with the committed log. */
export interface AppState {
  /** Payloads of applied normal entries, in order (the toy state machine). */
  data: string[];
  appliedIndex: number;
  conf: ConfState;
  readStates: ReadState[];
  /** Index and term of every applied entry (for the state-machine-safety checker). */
  appliedEntries: Map<number, string>;
}

export interface Member {
  id: string;
  storage: MemoryStorage;
  node: RawNode;
  app: AppState;
}

export type ApplyListener = (id: string, index: number, key: string) => void;

const dec = new TextDecoder();

export class Network {
  readonly members = new Map<string, Member>();
  /** Messages sent and not yet delivered or dropped, in send order. */
  queue: Message[] = [];
  /** Blocked directed links "a->b". */
  private readonly blocked = new Set<string>();
  /** Nodes that are crashed (not ticked, messages to them dropped). */
  readonly down = new Set<string>();
  private readonly rand: () => number;
  onApply: ApplyListener | undefined;
  onReady: ((id: string) => void) | undefined;

  constructor(readonly opts: NetworkOptions) {
    this.rand = prng(opts.seed ?? 1);
    const conf = { voters: [...opts.voters], learners: [...(opts.learners ?? [])] };
    for (const id of [...conf.voters, ...conf.learners]) this.addMember(id, new MemoryStorage(conf));
  }

  /** A fresh node with empty storage (to be added by a conf change), or a founding member. */
  addMember(id: string, storage = new MemoryStorage()): Member {
    const snap = storage.snapshot();
    const app: AppState = {
      data: snap.data.length > 0 ? (JSON.parse(dec.decode(snap.data)) as string[]) : [],
      appliedIndex: snap.meta.index,
      conf: snap.meta.conf,
      readStates: [],
      appliedEntries: new Map(),
    };
    const m: Member = { id, storage, node: this.newNode(id, storage), app };
    this.members.set(id, m);
    return m;
  }

  private newNode(id: string, storage: MemoryStorage): RawNode {
    const o = this.opts;
    return new RawNode({
      id,
      storage,
      electionTicks: o.electionTicks ?? 10,
      heartbeatTicks: o.heartbeatTicks ?? 1,
      random: drawsOf(Prng.fromSeed(o.seed ?? 1).split(`node/${id}`)),
      preVote: o.preVote ?? false,
      checkQuorum: o.checkQuorum ?? false,
      ...(o.disableProposalForwarding ? { disableProposalForwarding: true } : {}),
      ...(o.maxInflightMsgs ? { maxInflightMsgs: o.maxInflightMsgs } : {}),
      ...(o.maxSizePerMsgBytes ? { maxSizePerMsgBytes: o.maxSizePerMsgBytes } : {}),
      ...(o.unsafeVariant ? { unsafeVariant: o.unsafeVariant } : {}),
    });
  }

  member(id: string): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no node ${id}`);
    return m;
  }

  ids(): string[] {
    return [...this.members.keys()].sort();
  }

  liveIds(): string[] {
    return this.ids().filter((id) => !this.down.has(id));
  }

  /** Drain a node's Ready loop: persist, then send, then apply, then advance. */
  process(id: string): void {
    const m = this.member(id);
    if (this.down.has(id)) return;
    for (let guard = 0; m.node.hasReady(); guard++) {
      if (guard > 1000) throw new Error(`${id}: Ready loop does not settle`);
      const rd = m.node.ready();
      if (rd.snapshot) {
        m.storage.applySnapshot(rd.snapshot);
        m.app.data =
          rd.snapshot.data.length > 0 ? (JSON.parse(dec.decode(rd.snapshot.data)) as string[]) : [];
        m.app.appliedIndex = rd.snapshot.meta.index;
        m.app.conf = rd.snapshot.meta.conf;
      }
      m.storage.append(rd.entries);
      if (rd.hardState) m.storage.setHardState(rd.hardState);
      // Persisted: now the messages may leave (a copy, as a real network would deliver).
      for (const msg of rd.messages) this.queue.push(structuredClone(msg));
      for (const e of rd.committedEntries) this.apply(m, e);
      m.app.readStates.push(...rd.readStates);
      m.node.advance(rd);
      this.onReady?.(id);
    }
  }

  private apply(m: Member, e: Entry): void {
    if (e.index <= m.app.appliedIndex) throw new Error(`${m.id}: entry ${e.index} applied twice`);
    if (e.index !== m.app.appliedIndex + 1)
      throw new Error(`${m.id}: applied ${e.index} after ${m.app.appliedIndex}`);
    m.app.appliedIndex = e.index;
    const key = `${e.term}:${e.type}:${dec.decode(e.data)}`;
    m.app.appliedEntries.set(e.index, key);
    this.onApply?.(m.id, e.index, key);
    if (e.type === "confChange") {
      m.app.conf = m.node.applyConfChange(decodeConfChange(e.data));
    } else if (e.data.length > 0) {
      m.app.data.push(dec.decode(e.data));
    }
  }

  processAll(): void {
    for (const id of this.liveIds()) this.process(id);
  }

  /** Messages a node sent before it crashed may still arrive; messages to a crashed node are lost. */
  linkUp(from: string, to: string): boolean {
    return !this.blocked.has(`${from}->${to}`) && !this.down.has(to);
  }

  /** Deliver one queued message (by position); dropped if its link is down. */
  deliverAt(i: number): Message | undefined {
    const [msg] = this.queue.splice(i, 1);
    if (!msg) return undefined;
    if (!this.members.has(msg.to) || !this.linkUp(msg.from, msg.to)) return undefined;
    this.member(msg.to).node.step(msg);
    this.process(msg.to);
    return msg;
  }

  /**
   * Deliver queued messages (and the messages they cause) in FIFO order until none
   * matching `filter` remain. Messages not matching stay queued, in order.
   */
  deliver(filter: (m: Message) => boolean = () => true, maxMessages = Number.POSITIVE_INFINITY): number {
    let delivered = 0;
    while (delivered < maxMessages) {
      const i = this.queue.findIndex(filter);
      if (i === -1) return delivered;
      if (++delivered > 100_000) throw new Error("deliver: too many messages (livelock?)");
      this.deliverAt(i);
    }
    return delivered;
  }

  tick(id: string, times = 1): void {
    for (let i = 0; i < times; i++) {
      if (this.down.has(id)) return;
      this.member(id).node.tick();
      this.process(id);
    }
  }

  /** One round: every live node (or those listed) ticks once, then all traffic is delivered. */
  round(ids: string[] = this.liveIds()): void {
    for (const id of ids) this.tick(id);
    this.deliver();
  }

  isolate(id: string): void {
    for (const other of this.ids()) {
      if (other === id) continue;
      this.blocked.add(`${id}->${other}`);
      this.blocked.add(`${other}->${id}`);
    }
  }

  /** Split into groups that can only talk within themselves. */
  partition(groups: string[][]): void {
    this.heal();
    const groupOf = new Map<string, number>();
    groups.forEach((g, i) => {
      for (const id of g) groupOf.set(id, i);
    });
    for (const a of this.ids()) {
      for (const b of this.ids()) {
        if (a !== b && groupOf.get(a) !== groupOf.get(b)) this.blocked.add(`${a}->${b}`);
      }
    }
  }

  block(from: string, to: string): void {
    this.blocked.add(`${from}->${to}`);
  }

  heal(): void {
    this.blocked.clear();
  }

  /** Crash: volatile state is lost; what was persisted stays in storage. */
  crash(id: string): void {
    this.down.add(id);
  }

  /** Restart a crashed node from its storage (its app replays from the storage snapshot). */
  restart(id: string): void {
    const m = this.member(id);
    this.down.delete(id);
    const snap = m.storage.snapshot();
    m.app.data = snap.data.length > 0 ? (JSON.parse(dec.decode(snap.data)) as string[]) : [];
    m.app.appliedIndex = snap.meta.index;
    m.app.conf = snap.meta.conf;
    m.node = this.newNode(id, m.storage);
    this.process(id);
  }

  /** Take an application snapshot at the applied index and compact the log up to it. */
  compact(id: string): number {
    const m = this.member(id);
    const index = m.app.appliedIndex;
    m.storage.createSnapshot(index, m.app.conf, new TextEncoder().encode(JSON.stringify(m.app.data)));
    m.storage.compact(index);
    return index;
  }

  leaders(): string[] {
    return this.liveIds().filter((id) => this.member(id).node.status().role === "leader");
  }

  role(id: string): Role {
    return this.member(id).node.status().role;
  }

  random(): number {
    return this.rand();
  }

  /** One line per node, for failure messages. */
  describe(): string {
    return this.ids()
      .map((id) => {
        const s = this.member(id).node.status();
        const log = this.member(id)
          .node.logEntries()
          .map((e) => `${e.index}:${e.term}`)
          .join(" ");
        return `${id}${this.down.has(id) ? " (down)" : ""}: ${s.role} term=${s.term} lead=${s.lead} vote=${s.vote} commit=${s.commit} applied=${s.applied} log=[${log}] data=[${this.member(id).app.data.join(",")}]`;
      })
      .join("\n");
  }
}
