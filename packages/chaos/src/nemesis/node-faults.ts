/**
 * Faults inside a node, through its TEST-ONLY control file: the HSM (error rate,
 * latency, wedge — the HSM device's own fault hooks), the disk under its Raft WAL
 * (slow fsync, full, failing writes) and its clock (an offset on every time it
 * reads). Healing puts that part of the node back to normal.
 */
import type { Prng } from "@hsmpool/faults";
import type { StatusSample } from "../timeline.js";
import type { ControlFiles } from "./control-files.js";
import { NO_NODE_FAULTS } from "./control-files.js";
import type { FaultInjector, Injected } from "./nemesis.js";
import type { ConcreteFault } from "./plan.js";
import { resolveTarget } from "./targets.js";

function target(fault: ConcreteFault, status: StatusSample | undefined, prng: Prng): string {
  const t = "target" in fault && fault.target !== "all" ? fault.target : "random";
  const r = resolveTarget(t, status, prng);
  if ("error" in r) throw new Error(r.error);
  return r.nodeId;
}

export function nodeFaultInjector(files: ControlFiles): FaultInjector {
  return {
    async inject(fault, status, prng): Promise<Injected> {
      const nodeId = target(fault, status, prng);
      const role = status?.primary === nodeId ? "primary" : "secondary";
      switch (fault.kind) {
        case "hsm": {
          await files.set(nodeId, {
            hsm: { errorRate: fault.errorRate, latencyMs: fault.latencyMs, wedge: fault.wedge },
          });
          const what = [
            fault.errorRate > 0 ? `${Math.round(fault.errorRate * 100)}% of operations fail` : "",
            fault.latencyMs > 0 ? `+${fault.latencyMs} ms per operation` : "",
            fault.wedge ? "wedged" : "",
          ].filter((x) => x !== "");
          return {
            targets: [nodeId],
            detail: `HSM of ${nodeId} (${role}): ${what.join(", ")}`,
            heal: async () => {
              await files.set(nodeId, { hsm: NO_NODE_FAULTS.hsm });
              return `HSM of ${nodeId} back to normal`;
            },
          };
        }
        case "disk": {
          await files.set(nodeId, { disk: { mode: fault.mode, delayMs: fault.delayMs } });
          return {
            targets: [nodeId],
            detail: `disk of ${nodeId} (${role}): ${fault.mode}${fault.mode === "slow-fsync" ? ` ${fault.delayMs} ms` : ""}`,
            heal: async () => {
              await files.set(nodeId, { disk: NO_NODE_FAULTS.disk });
              return `disk of ${nodeId} back to normal`;
            },
          };
        }
        case "clock": {
          await files.set(nodeId, { clock: { offsetMs: fault.offsetMs } });
          return {
            targets: [nodeId],
            detail: `clock of ${nodeId} (${role}) ${fault.offsetMs} ms ahead`,
            heal: async () => {
              await files.set(nodeId, { clock: NO_NODE_FAULTS.clock });
              return `clock of ${nodeId} back in step`;
            },
          };
        }
        default:
          throw new Error(`the node-fault injector cannot inject ${fault.kind}`);
      }
    },
  };
}
