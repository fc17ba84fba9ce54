/**
 * The harness side of the nodes' TEST-ONLY control channel: `<pool>/nodes/<id>/chaos.json`
 * (packages/node/src/chaos-hooks.ts), laid down for every member id a run may use
 * before the pool starts, then rewritten (temp + rename, so a node never reads half a
 * file) whenever a node fault starts or heals. Holds each node's current faults so
 * faults of different kinds on one node combine.
 */
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface NodeFaults {
  hsm: { errorRate: number; latencyMs: number; wedge: boolean };
  disk: { mode: "none" | "slow-fsync" | "full" | "fail-writes"; delayMs: number };
  clock: { offsetMs: number };
}

export const NO_NODE_FAULTS: NodeFaults = {
  hsm: { errorRate: 0, latencyMs: 0, wedge: false },
  disk: { mode: "none", delayMs: 0 },
  clock: { offsetMs: 0 },
};

/** Member ids a run prepares for: the three founders and the replacements healing may launch. */
export const MAX_MEMBER_IDS = 12;
export const memberIds = (n = MAX_MEMBER_IDS): string[] => Array.from({ length: n }, (_, i) => `n${i + 1}`);

export class ControlFiles {
  private readonly faults = new Map<string, NodeFaults>();

  constructor(
    private readonly poolDir: string,
    private readonly base: {
      unsafeAckBeforeCommit: boolean;
      peerDial: Record<string, Record<string, string>>;
    },
  ) {}

  path(nodeId: string): string {
    return join(this.poolDir, "nodes", nodeId, "chaos.json");
  }

  /** Writes every node's file with no faults (before the pool starts). */
  async prepare(nodeIds: readonly string[]): Promise<void> {
    for (const id of nodeIds) await this.write(id);
  }

  faultsOf(nodeId: string): NodeFaults {
    return this.faults.get(nodeId) ?? NO_NODE_FAULTS;
  }

  async set(nodeId: string, change: Partial<NodeFaults>): Promise<void> {
    this.faults.set(nodeId, { ...this.faultsOf(nodeId), ...change });
    await this.write(nodeId);
  }

  private async write(nodeId: string): Promise<void> {
    const file = this.path(nodeId);
    await mkdir(join(this.poolDir, "nodes", nodeId), { recursive: true, mode: 0o700 });
    const body = {
      unsafeAckBeforeCommit: this.base.unsafeAckBeforeCommit,
      peerDial: this.base.peerDial[nodeId] ?? {},
      faults: this.faultsOf(nodeId),
    };
    await writeFile(`${file}.tmp`, `${JSON.stringify(body, null, 2)}\n`);
    await rename(`${file}.tmp`, file);
  }
}
