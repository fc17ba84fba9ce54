/**
 * Losing hardware through the HFC control API: a server (its power or board failed)
 * or a whole rack (every server in it, spare ones included). The HFC fences the
 * members that ran there and replaces them on spare servers in racks no live member
 * uses. Lost hardware stays lost: "heal" undoes nothing, the pool heals itself.
 */
import type { Prng } from "@hsmpool/faults";
import type { StatusSample } from "../timeline.js";
import type { FaultInjector, Injected } from "./nemesis.js";
import type { ConcreteFault } from "./plan.js";
import { resolveTarget } from "./targets.js";

export interface ServerControl {
  loseServer(serverId: string): Promise<{ serverId: string; fenced: string[] }>;
}

/** The fabric's racks and their servers (public inventory). */
export type Inventory = { rackId: string; serverIds: string[] }[];

function targetMember(fault: ConcreteFault, status: StatusSample | undefined, prng: Prng) {
  const t = "target" in fault && fault.target !== "all" ? fault.target : "random";
  const r = resolveTarget(t, status, prng);
  if ("error" in r) throw new Error(r.error);
  const m = status?.members.find((x) => x.id === r.nodeId);
  if (!m || m.server === "") throw new Error(`the HFC does not say which server ${r.nodeId} runs on`);
  return m;
}

const stays = async () => "lost hardware stays lost; the HFC replaces its members";

export function serverLossInjector(hfc: ServerControl): FaultInjector {
  return {
    async inject(fault, status, prng): Promise<Injected> {
      const m = targetMember(fault, status, prng);
      const r = await hfc.loseServer(m.server);
      return {
        targets: r.fenced.length > 0 ? r.fenced : [m.id],
        detail: `server ${m.server} lost (${m.id}${status?.primary === m.id ? ", primary" : ""}; fenced ${r.fenced.join(", ") || "none"})`,
        heal: stays,
      };
    },
  };
}

export function rackLossInjector(hfc: ServerControl, inventory: () => Promise<Inventory>): FaultInjector {
  return {
    async inject(fault, status, prng): Promise<Injected> {
      const m = targetMember(fault, status, prng);
      const rack = (await inventory()).find((r) => r.rackId === m.rack);
      if (!rack) throw new Error(`rack ${m.rack} of ${m.id} is not in the fabric inventory`);
      const fenced: string[] = [];
      for (const serverId of rack.serverIds) fenced.push(...(await hfc.loseServer(serverId)).fenced);
      return {
        targets: fenced.length > 0 ? fenced : [m.id],
        detail: `rack ${m.rack} lost (servers ${rack.serverIds.join(", ")}; fenced ${fenced.join(", ") || "none"})`,
        heal: stays,
      };
    },
  };
}
