/**
 * The pool's client endpoint: the balancer (balancer.ts) in front of the members'
 * data-plane ports, fed from the controller's view of which members are up.
 */
import { type Balancer, startBalancer } from "./balancer.js";
import { type ControllerContext, isLive } from "./controller-context.js";

/** Members answering health probes first; with none, any live member with an address (it may be back). */
export function endpointBackends(ctx: ControllerContext): string[] {
  const live = ctx.healing.members.filter((m) => isLive(m) && m.dataAddress !== "");
  const up = live.filter((m) => {
    const shell = ctx.shells.get(m.id);
    return shell?.running === true && shell.health.health === "up";
  });
  return (up.length > 0 ? up : live).map((m) => m.dataAddress);
}

/** On the port the previous HFC of this run dir used when it is free, so clients keep their URL. */
export async function startPoolEndpoint(ctx: ControllerContext, previousPort: number): Promise<Balancer> {
  const options = { backends: () => endpointBackends(ctx) };
  if (previousPort > 0) {
    try {
      return await startBalancer({ ...options, port: previousPort });
    } catch {
      ctx.log.warn({ port: previousPort }, "last endpoint port is taken; using another");
    }
  }
  return startBalancer(options);
}
