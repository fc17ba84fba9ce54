import type { Link, NodeName, Prng } from "@hsmpool/faults";

/**
 * The simulated network: per-link delay, loss, duplication and reordering, plus
 * partitions as sets of cut directed links. It decides *when* (if ever) a message
 * arrives; the caller owns the event queue and the payloads, so the same model
 * carries Raft messages today and pool-protocol messages later.
 *
 * Delay is `delayMinUs` plus an exponential tail with mean `delayMeanUs - delayMinUs`
 * (as TigerBeetle's packet simulator does). Links are FIFO by default, like the TCP
 * streams Raft implementations use between peers: a message never overtakes an
 * earlier one on the same link. The reorder knob holds a fraction of messages back
 * (they leave the FIFO), and duplicates arrive on their own schedule, so reordering
 * is a fault to inject, not background noise.
 */

export interface LinkConfig {
  delayMinUs: number;
  delayMeanUs: number;
  /** Probability a message is silently dropped. */
  lossProbability: number;
  /** Probability a message is delivered twice (the copy gets its own delay). */
  duplicateProbability: number;
  /** Probability a message is held back by up to `reorderDelayUs` extra. */
  reorderProbability: number;
  reorderDelayUs: number;
  /** Keep per-link send order for messages that are not reordered or duplicated. */
  fifo: boolean;
}

export const DEFAULT_LINK: LinkConfig = {
  delayMinUs: 200,
  delayMeanUs: 1_000,
  lossProbability: 0,
  duplicateProbability: 0,
  reorderProbability: 0,
  reorderDelayUs: 0,
  fifo: true,
};

export interface NetworkStats {
  sent: number;
  lostToPartition: number;
  lostToLinkFault: number;
  duplicated: number;
  reordered: number;
}

function linkKey(from: NodeName, to: NodeName): string {
  return `${from}>${to}`;
}

export class Network {
  /** Cut count per directed link (several overlapping partitions may cut the same link). */
  private readonly cuts = new Map<string, number>();
  private readonly partitions = new Map<string, Link[]>();
  /** Active link-fault overrides, in the order they were applied. */
  private readonly linkFaults = new Map<
    string,
    { links: Set<string> | "all"; config: Partial<LinkConfig> }
  >();
  /** Latest in-order arrival time per directed link (for FIFO links). */
  private readonly lastArrivalUs = new Map<string, number>();
  readonly stats: NetworkStats = {
    sent: 0,
    lostToPartition: 0,
    lostToLinkFault: 0,
    duplicated: 0,
    reordered: 0,
  };

  constructor(
    private readonly prng: Prng,
    private readonly defaults: LinkConfig = DEFAULT_LINK,
  ) {
    validateLinkConfig(defaults);
  }

  /** Cut `links` until healPartition(id). */
  partition(id: string, links: readonly Link[]): void {
    if (this.partitions.has(id)) throw new Error(`partition ${id} is already active`);
    this.partitions.set(id, links.slice());
    for (const l of links) {
      const k = linkKey(l.from, l.to);
      this.cuts.set(k, (this.cuts.get(k) ?? 0) + 1);
    }
  }

  healPartition(id: string): void {
    const links = this.partitions.get(id);
    if (!links) return;
    this.partitions.delete(id);
    for (const l of links) {
      const k = linkKey(l.from, l.to);
      const n = (this.cuts.get(k) ?? 0) - 1;
      if (n <= 0) this.cuts.delete(k);
      else this.cuts.set(k, n);
    }
  }

  /** Override link parameters (loss, duplication, delay...) on some links, or all, until clearLinkFault(id). */
  addLinkFault(id: string, links: readonly Link[] | "all", config: Partial<LinkConfig>): void {
    validateLinkConfig({ ...this.defaults, ...config });
    const set = links === "all" ? "all" : new Set(links.map((l) => linkKey(l.from, l.to)));
    this.linkFaults.set(id, { links: set, config });
  }

  clearLinkFault(id: string): void {
    this.linkFaults.delete(id);
  }

  healAll(): void {
    for (const id of [...this.partitions.keys()]) this.healPartition(id);
    this.linkFaults.clear();
  }

  get activePartitions(): number {
    return this.partitions.size;
  }

  get activeLinkFaults(): number {
    return this.linkFaults.size;
  }

  isCut(from: NodeName, to: NodeName): boolean {
    return this.cuts.size > 0 && this.cuts.has(linkKey(from, to));
  }

  /** The parameters in force on one link right now (later faults override earlier ones). */
  configFor(from: NodeName, to: NodeName): LinkConfig {
    if (this.linkFaults.size === 0) return this.defaults;
    const k = linkKey(from, to);
    let c = this.defaults;
    for (const f of this.linkFaults.values()) {
      if (f.links === "all" || f.links.has(k)) c = { ...c, ...f.config };
    }
    return c;
  }

  /**
   * Decide the fate of one message sent at `nowUs`: the arrival time of each copy
   * that will arrive — none if lost, two if duplicated. Partitions are checked here
   * and again at delivery time (isCut), so a partition also drops messages in flight.
   */
  send(from: NodeName, to: NodeName, nowUs: number): number[] {
    this.stats.sent++;
    if (this.isCut(from, to)) {
      this.stats.lostToPartition++;
      return [];
    }
    const c = this.configFor(from, to);
    if (this.prng.chance(c.lossProbability)) {
      this.stats.lostToLinkFault++;
      return [];
    }
    const first = this.arrival(from, to, c, nowUs, true);
    if (!this.prng.chance(c.duplicateProbability)) return [first];
    this.stats.duplicated++;
    return [first, this.arrival(from, to, c, nowUs, false)];
  }

  private arrival(from: NodeName, to: NodeName, c: LinkConfig, nowUs: number, inStream: boolean): number {
    const at = nowUs + Math.round(c.delayMinUs + this.prng.exponential(c.delayMeanUs - c.delayMinUs));
    if (this.prng.chance(c.reorderProbability)) {
      this.stats.reordered++;
      return at + Math.round(this.prng.float() * c.reorderDelayUs);
    }
    if (!c.fifo || !inStream) return at;
    const k = linkKey(from, to);
    const fifoAt = Math.max(at, this.lastArrivalUs.get(k) ?? 0);
    this.lastArrivalUs.set(k, fifoAt);
    return fifoAt;
  }
}

function validateLinkConfig(c: LinkConfig): void {
  const probs = [c.lossProbability, c.duplicateProbability, c.reorderProbability];
  if (probs.some((p) => !(p >= 0 && p <= 1))) throw new RangeError("link probabilities must be in [0, 1]");
  if (!(c.delayMinUs >= 0 && c.delayMeanUs >= c.delayMinUs)) {
    throw new RangeError("link delay needs 0 <= delayMinUs <= delayMeanUs");
  }
  if (!(c.reorderDelayUs >= 0)) throw new RangeError("reorderDelayUs must be >= 0");
}
