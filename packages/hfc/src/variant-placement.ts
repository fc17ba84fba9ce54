/**
 * The replaceIntoUsedRack variant (variants.ts; simulator self-tests only): the joiner
 * is launched on a spare server of a rack a live member already uses, the placement
 * mistake the healing sweep's "three racks" invariant must catch.
 */
import type { MemberSpec } from "@hsmpool/wire";
import type { ControllerContext } from "./controller-context.js";

export function misplacedJoiner(ctx: ControllerContext, joiner: MemberSpec): MemberSpec {
  const { members, lostServers } = ctx.healing;
  const lost = new Set(lostServers.map((s) => s.serverId));
  const used = new Set(members.map((m) => m.serverId));
  const liveRacks = new Set(
    members.filter((m) => m.lifecycle === "active" && m.id !== joiner.id).map((m) => m.rackId),
  );
  for (const rack of ctx.healingConfig.inventory) {
    if (!liveRacks.has(rack.id)) continue;
    const server = rack.servers.find((s) => !lost.has(s.id) && !used.has(s.id));
    if (!server) continue;
    ctx.log.warn(
      { nodeId: joiner.id, server: server.id, rack: rack.id },
      "UNSAFE variant replaceIntoUsedRack: the joiner goes into a rack a live member uses",
    );
    return { ...joiner, serverId: server.id, rackId: rack.id };
  }
  return joiner;
}
