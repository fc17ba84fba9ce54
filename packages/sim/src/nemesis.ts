import type { Prng } from "@hsmpool/faults";
import { describeShape, linksCut, type NodeName } from "@hsmpool/faults";
import {
  type Fault,
  type Intensity,
  linkFaultConfig,
  linksOf,
  resolveShape,
  resolveTarget,
} from "./faults.js";
import type { Network } from "./network.js";

/**
 * Applies and undoes faults (Jepsen's "nemesis"): resolves symbolic targets against
 * the current membership and leader, cuts and heals links on the Network, and asks
 * its host to crash, restart, pause or resume nodes. It knows nothing about Raft, so
 * a pool simulator can drive its own nodes with the same fault schedules.
 * Scheduling (when a fault starts and ends) stays with the caller's event queue.
 */

export interface NemesisHost {
  /** Nodes faults may hit: started and not removed from the cluster. */
  members(): NodeName[];
  leader(): NodeName | null;
  /** Power-cut `node` now; false if it was not running. */
  crash(node: NodeName, prng: Prng, corruptProbability: number): boolean;
  restart(node: NodeName): void;
  /** Freeze `node`; false if it was not running. */
  pause(node: NodeName): boolean;
  resume(node: NodeName): void;
  /** Optional (hosts with a supervisor): crash `node`'s process for the supervisor to restart. */
  kill?(node: NodeName, prng: Prng): boolean;
  /** Optional: `node`'s server is lost for good; false if losing it now is not in the fault model. */
  loseServer?(node: NodeName): boolean;
  /** Optional: the supervisor crashes (false if it is down already) and restarts on `restartSupervisor`. */
  crashSupervisor?(): boolean;
  restartSupervisor?(): void;
}

export class Nemesis {
  private readonly active = new Map<number, () => void>();

  constructor(
    private readonly network: Network,
    private readonly prng: Prng,
    private readonly intensity: Intensity,
    private readonly host: NemesisHost,
  ) {}

  get activeFaults(): number {
    return this.active.size;
  }

  /**
   * Start fault `id` now. Returns what it did ("crash n2", "partition ..."), or null
   * when it had nothing to hit (e.g. its target is already down).
   */
  start(fault: Fault, id: number): string | null {
    const ids = this.host.members();
    if (ids.length === 0 || this.active.has(id)) return null;
    const prng = this.prng.split(`fault-${fault.salt}`);
    const leader = this.host.leader();
    const a = fault.action;
    const key = `fault-${id}`;
    switch (a.kind) {
      case "crash": {
        const node = resolveTarget(a.target, ids, leader, prng);
        if (!this.host.crash(node, prng.split("disk"), this.intensity.corruptOnCrashProbability)) return null;
        this.active.set(id, () => this.host.restart(node));
        return `crash ${node}`;
      }
      case "pause": {
        const node = resolveTarget(a.target, ids, leader, prng);
        if (!this.host.pause(node)) return null;
        this.active.set(id, () => this.host.resume(node));
        return `pause ${node}`;
      }
      case "partition": {
        const shape = resolveShape(a.shape, ids, resolveTarget(a.target, ids, leader, prng), prng);
        const links = linksCut(shape, ids);
        this.network.partition(key, links);
        this.active.set(id, () => this.network.healPartition(key));
        return `partition ${describeShape(shape)} (${links.length} links cut)`;
      }
      case "link": {
        const links = a.target === "all" ? "all" : linksOf(resolveTarget(a.target, ids, leader, prng), ids);
        this.network.addLinkFault(key, links, linkFaultConfig(a.effect, this.intensity));
        this.active.set(id, () => this.network.clearLinkFault(key));
        return `link ${a.effect} on ${links === "all" ? "all links" : `${links.length} links`}`;
      }
      case "kill": {
        const node = resolveTarget(a.target, ids, leader, prng);
        if (!this.host.kill?.(node, prng.split("disk"))) return null;
        return `kill ${node}`;
      }
      case "lose-server": {
        const node = resolveTarget(a.target, ids, leader, prng);
        if (!this.host.loseServer?.(node)) return null;
        return `lose the server of ${node}`;
      }
      case "supervisor-crash": {
        if (!this.host.crashSupervisor?.()) return null;
        this.active.set(id, () => this.host.restartSupervisor?.());
        return "crash the supervisor";
      }
    }
  }

  /** Undo fault `id` (restart, resume, heal); a no-op if it is not active. */
  end(id: number): void {
    const undo = this.active.get(id);
    if (!undo) return;
    this.active.delete(id);
    undo();
  }

  /** Undo every active fault and clear the network of partitions and link faults. */
  healAll(): void {
    for (const id of [...this.active.keys()]) this.end(id);
    this.network.healAll();
  }
}
