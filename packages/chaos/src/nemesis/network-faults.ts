/**
 * Network faults on the link proxies: partitions (Jepsen's shapes, as the exact
 * set of directed links they cut — @hsmpool/faults' linksCut) and link degradation
 * (latency, jitter, bandwidth, resets, blackhole). Healing clears the links again.
 */
import type { Link, PartitionShape, Prng } from "@hsmpool/faults";
import { describeShape, linksCut } from "@hsmpool/faults";
import type { LinkFabric } from "../proxy/link-fabric.js";
import type { StatusSample } from "../timeline.js";
import type { FaultInjector, Injected } from "./nemesis.js";
import type { ConcreteFault } from "./plan.js";
import { resolveTarget } from "./targets.js";

/** The partition shape a fault asks for, over the members up now (pure). */
export function partitionShape(
  fault: Extract<ConcreteFault, { kind: "partition" }>,
  status: StatusSample | undefined,
  prng: Prng,
): { shape: PartitionShape; members: string[] } {
  const members = (status?.members ?? []).filter((m) => m.health === "up").map((m) => m.id);
  if (members.length < 2)
    throw new Error(`a partition needs at least two members up (up: ${members.join(", ") || "none"})`);
  const pick = (spec: string) => {
    const r = resolveTarget(spec, status, prng);
    if ("error" in r) throw new Error(r.error);
    return r.nodeId;
  };
  const others = (id: string) => members.filter((m) => m !== id);
  switch (fault.shape) {
    case "isolate-primary":
      return { shape: { kind: "isolate", node: pick("primary") }, members };
    case "isolate":
      return { shape: { kind: "isolate", node: pick(fault.target) }, members };
    case "majority-minority": {
      const minority = pick(fault.target);
      return { shape: { kind: "halves", sides: [others(minority), [minority]] }, members };
    }
    case "one-way": {
      const from = pick(fault.target);
      return { shape: { kind: "one-way", from: [from], to: others(from) }, members };
    }
    case "bridge": {
      const bridge = pick(fault.target);
      const rest = prng.shuffled(others(bridge));
      const half = Math.ceil(rest.length / 2);
      return {
        shape: { kind: "bridge", left: rest.slice(0, half), bridge, right: rest.slice(half) },
        members,
      };
    }
    case "majorities-ring":
      return { shape: { kind: "ring", order: prng.shuffled(members) }, members };
  }
}

export function partitionInjector(links: LinkFabric): FaultInjector {
  return {
    async inject(fault, status, prng): Promise<Injected> {
      if (fault.kind !== "partition") throw new Error(`partition injector got ${fault.kind}`);
      const { shape, members } = partitionShape(fault, status, prng);
      const cut: Link[] = linksCut(shape, members);
      const changed = links.apply(cut, { blackhole: true });
      const touched = [...new Set(changed.flatMap((l) => [l.from, l.to]))].sort();
      return {
        targets: touched,
        detail: `partition ${describeShape(shape)} (${changed.length} directed links cut${changed.length === 0 ? ": with 3 members a majorities ring cuts nothing" : ""})`,
        async heal() {
          links.clear(changed);
          return `partition healed (${changed.length} links restored)`;
        },
      };
    },
  };
}

export function linkInjector(links: LinkFabric): FaultInjector {
  return {
    async inject(fault, status, prng): Promise<Injected> {
      if (fault.kind !== "link") throw new Error(`link injector got ${fault.kind}`);
      let node: string | "all" = "all";
      if (fault.target !== "all") {
        const r = resolveTarget(fault.target, status, prng);
        if ("error" in r) throw new Error(r.error);
        node = r.nodeId;
      }
      const affected = links.linksOf(node);
      const changed = links.apply(affected, {
        latencyMs: fault.latencyMs,
        jitterMs: fault.jitterMs,
        bandwidthBytesPerS: fault.bandwidthBytesPerS,
        resetProbability: fault.resetProbability,
        blackhole: fault.blackhole,
      });
      const what = [
        fault.latencyMs > 0 ? `latency ${fault.latencyMs} ms` : "",
        fault.jitterMs > 0 ? `jitter ${fault.jitterMs} ms` : "",
        fault.bandwidthBytesPerS > 0 ? `${fault.bandwidthBytesPerS} B/s` : "",
        fault.resetProbability > 0 ? `resets p=${fault.resetProbability}` : "",
        fault.blackhole ? "blackhole" : "",
      ]
        .filter((x) => x !== "")
        .join(", ");
      return {
        targets: node === "all" ? [] : [node],
        detail: `links of ${node === "all" ? "every member" : node}: ${what} (${changed.length} directed links)`,
        async heal() {
          links.clear(changed);
          return `links restored (${changed.length})`;
        },
      };
    },
  };
}
