/**
 * A proxy for every directed peer link among the pool's possible member ids
 * (n1..nK, so replacements are covered too), and the mapping nodes are given so they
 * dial their peers through them. Faults are set per link; the wire bytes are scanned
 * for secrets on the way through.
 */
import type { Link, Prng } from "@hsmpool/faults";
import { type Needle, StreamScanner } from "../checkers/leaks.js";
import { type LinkFaults, LinkProxy } from "./link-proxy.js";

export const linkName = (l: Link): string => `${l.from}->${l.to}`;

export class LinkFabric {
  private constructor(
    private readonly proxies: Map<string, LinkProxy>,
    private readonly scanners: Map<string, StreamScanner>,
  ) {}

  /** Starts proxies for every ordered pair of `nodeIds`; `upstreamOf(id)` is where `id` listens for peers now. */
  static async start(opts: {
    nodeIds: readonly string[];
    upstreamOf: (nodeId: string) => Promise<string | undefined>;
    needles: () => readonly Needle[];
    prng: Prng;
  }): Promise<LinkFabric> {
    const proxies = new Map<string, LinkProxy>();
    const scanners = new Map<string, StreamScanner>();
    try {
      for (const from of opts.nodeIds) {
        for (const to of opts.nodeIds) {
          if (from === to) continue;
          const name = linkName({ from, to });
          const scanner = new StreamScanner(opts.needles);
          const rng = opts.prng.split(name);
          scanners.set(name, scanner);
          proxies.set(
            name,
            await LinkProxy.start({
              name,
              upstream: () => opts.upstreamOf(to),
              random: () => rng.float(),
              onBytes: (b) => scanner.push(b),
            }),
          );
        }
      }
    } catch (e) {
      await Promise.all([...proxies.values()].map((p) => p.close()));
      throw e;
    }
    return new LinkFabric(proxies, scanners);
  }

  /** `{ from: { to: "127.0.0.1:port" } }`: what each node dials to reach each peer. */
  mapping(): Record<string, Record<string, string>> {
    const out: Record<string, Record<string, string>> = {};
    for (const [name, p] of this.proxies) {
      const [from, to] = name.split("->") as [string, string];
      out[from] ??= {};
      out[from][to] = p.address;
    }
    return out;
  }

  private proxy(l: Link): LinkProxy | undefined {
    return this.proxies.get(linkName(l));
  }

  /** Applies `faults` to `links` (links to ids without a proxy are ignored); returns the links it changed. */
  apply(links: readonly Link[], faults: Partial<LinkFaults>): Link[] {
    const changed: Link[] = [];
    for (const l of links) {
      const p = this.proxy(l);
      if (!p) continue;
      p.setFaults(faults);
      changed.push(l);
    }
    return changed;
  }

  clear(links: readonly Link[]): void {
    for (const l of links) this.proxy(l)?.clearFaults();
  }

  /** Every link from or to `nodeId`, or all links. */
  linksOf(nodeId: string | "all"): Link[] {
    return [...this.proxies.keys()]
      .map((n) => {
        const [from, to] = n.split("->") as [string, string];
        return { from, to };
      })
      .filter((l) => nodeId === "all" || l.from === nodeId || l.to === nodeId);
  }

  stats(): { bytes: number; findings: { where: string; what: string }[] } {
    let bytes = 0;
    const findings: { where: string; what: string }[] = [];
    for (const [name, s] of this.scanners) {
      bytes += s.bytesScanned;
      for (const what of s.findings) findings.push({ where: `link ${name}`, what });
    }
    return { bytes, findings };
  }

  async close(): Promise<void> {
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
  }
}
