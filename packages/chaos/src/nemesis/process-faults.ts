/**
 * Faults on node processes through the HFC control API (no root needed): kill
 * (SIGKILL, healed by the HFC restarting the node in place) and pause (SIGSTOP,
 * healed by SIGCONT — a paused old primary must not acknowledge anything after it
 * resumes, which the checkers verify).
 */
import { isHsmPoolError } from "@hsmpool/errors";
import type { Prng } from "@hsmpool/faults";
import type { StatusSample } from "../timeline.js";
import type { FaultInjector, Injected } from "./nemesis.js";
import type { ConcreteFault } from "./plan.js";
import { resolveTarget } from "./targets.js";

/** The HFC calls the process faults need (FabricControllerClient has them). */
export interface ProcessControl {
  kill(target: string, signal?: string): Promise<{ nodeId: string; pid: number }>;
  restart(nodeId: string): Promise<void>;
}

function targetOf(fault: ConcreteFault, status: StatusSample | undefined, prng: Prng): string {
  const t = "target" in fault ? fault.target : "random";
  const r = resolveTarget(t === "all" ? "random" : t, status, prng);
  if ("error" in r) throw new Error(r.error);
  return r.nodeId;
}

const roleOf = (status: StatusSample | undefined, nodeId: string) =>
  status?.primary === nodeId ? "primary" : "secondary";

export function killInjector(hfc: ProcessControl): FaultInjector {
  return {
    async inject(fault, status, prng): Promise<Injected> {
      const nodeId = targetOf(fault, status, prng);
      const { pid } = await hfc.kill(nodeId, "SIGKILL");
      return {
        targets: [nodeId],
        detail: `SIGKILL ${nodeId} (${roleOf(status, nodeId)}, pid ${pid})`,
        async heal() {
          try {
            await hfc.restart(nodeId);
            return `restarted ${nodeId} in place`;
          } catch (e) {
            // The HFC may have restarted or replaced it on its own already: that is healing, not a harness error.
            if (isHsmPoolError(e, "Conflict")) return `${nodeId} was already running again`;
            throw e;
          }
        },
      };
    },
  };
}

export function pauseInjector(hfc: ProcessControl): FaultInjector {
  return {
    async inject(fault, status, prng): Promise<Injected> {
      const nodeId = targetOf(fault, status, prng);
      const { pid } = await hfc.kill(nodeId, "SIGSTOP");
      return {
        targets: [nodeId],
        detail: `SIGSTOP ${nodeId} (${roleOf(status, nodeId)}, pid ${pid})`,
        async heal() {
          try {
            await hfc.kill(nodeId, "SIGCONT");
            return `SIGCONT ${nodeId}`;
          } catch (e) {
            if (isHsmPoolError(e, "Conflict")) return `${nodeId} is no longer running (nothing to resume)`;
            throw e;
          }
        },
      };
    },
  };
}
