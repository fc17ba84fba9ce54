/**
 * Where a replacement runs (pure): a free server in a rack that no live member
 * uses, never a lost server or one a fenced member sat on. Racks that lost a server
 * (a failing power supply or switch may take the rest) are used only when no other
 * rack qualifies.
 */
import { isHsmPoolError } from "@hsmpool/errors";
import type { HealingConfig, HealingState } from "./model.js";
import { type PlacedMember, placeMembers } from "./placement.js";

export type ReplacementPlacement = { ok: true; placed: PlacedMember } | { ok: false; reason: string };

const LIVE = new Set(["active", "joining"]);

/**
 * `leaving`: a live member that the replacement takes over from (an upgrade), whose
 * rack therefore does not count as used.
 */
export function placeReplacement(
  config: HealingConfig,
  state: HealingState,
  leaving: string | null,
): ReplacementPlacement {
  const live = state.members.filter((m) => LIVE.has(m.lifecycle) && m.id !== leaving);
  const liveRacks = new Set(live.map((m) => m.rackId));
  const lost = new Set(state.lostServers.map((s) => s.serverId));
  const busyServers = new Set([
    ...lost,
    ...state.members
      .filter((m) => m.lifecycle !== "retired" && m.lifecycle !== "failed")
      .map((m) => m.serverId),
  ]);
  const rackOf = new Map(config.inventory.flatMap((r) => r.servers.map((s) => [s.id, r.id] as const)));
  const scarred = new Set([
    ...[...lost].map((s) => rackOf.get(s)).filter((r): r is string => r !== undefined),
    ...state.members.filter((m) => m.lifecycle === "fenced").map((m) => m.rackId),
  ]);
  const seed = (config.placementSeed + state.nextMemberNumber * 7919) % 2 ** 31;
  for (const busyRacks of [new Set([...liveRacks, ...scarred]), liveRacks]) {
    try {
      const [placed] = placeMembers({ racks: config.inventory, count: 1, busyServers, busyRacks, seed });
      if (placed) return { ok: true, placed };
    } catch (e) {
      if (!isHsmPoolError(e, "ServiceUnavailable")) throw e;
    }
  }
  const used = [...liveRacks].sort().join(", ") || "none";
  return {
    ok: false,
    reason:
      `no spare server: every rack either hosts a live member (${used}) or has no free server ` +
      `(lost: ${[...lost].sort().join(", ") || "none"}); add a rack to the fabric`,
  };
}
