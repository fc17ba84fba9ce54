/**
 * Rack-aware placement (pure). Picks one free server in each of `count` distinct
 * racks, so losing a rack (power, switch) costs the pool at most one member. The
 * choice is a function of the inventory (as a set: input order does not matter),
 * the servers that are not free, and a seed the caller records.
 */
import { fail } from "@hsmpool/errors";
import { Prng } from "@hsmpool/faults";

export interface InventoryRack {
  id: string;
  servers: readonly { id: string }[];
}

export interface PlacementRequest {
  racks: readonly InventoryRack[];
  /** How many members to place (the pool size, 3). */
  count: number;
  /** Servers that already host something or are fenced: never chosen. */
  busyServers?: ReadonlySet<string>;
  /** Racks that must not be used (for healing: the racks of the live members). */
  busyRacks?: ReadonlySet<string>;
  seed: number;
}

export interface PlacedMember {
  serverId: string;
  rackId: string;
}

const byId = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function checkInventory(racks: readonly InventoryRack[]): void {
  const rackIds = new Set<string>();
  const serverIds = new Set<string>();
  for (const rack of racks) {
    if (rackIds.has(rack.id))
      fail("BadParameter", `inventory lists rack ${rack.id} twice`, { rackId: rack.id });
    rackIds.add(rack.id);
    for (const server of rack.servers) {
      if (serverIds.has(server.id)) {
        fail("BadParameter", `inventory lists server ${server.id} twice`, { serverId: server.id });
      }
      serverIds.add(server.id);
    }
  }
}

/**
 * Returns `count` placements in distinct racks, or throws ServiceUnavailable naming
 * how many racks have a free server when there are fewer than `count` of them.
 */
export function placeMembers(req: PlacementRequest): PlacedMember[] {
  if (!Number.isInteger(req.count) || req.count < 1) {
    fail("BadParameter", `placement count must be a positive integer, got ${req.count}`);
  }
  if (!Number.isInteger(req.seed)) fail("BadParameter", `placement seed must be an integer, got ${req.seed}`);
  checkInventory(req.racks);
  const busyServers = req.busyServers ?? new Set<string>();
  const busyRacks = req.busyRacks ?? new Set<string>();

  // Sorting first makes the result independent of the inventory's listing order.
  const candidates = [...req.racks]
    .sort(byId)
    .filter((rack) => !busyRacks.has(rack.id))
    .map((rack) => ({
      id: rack.id,
      free: rack.servers.filter((s) => !busyServers.has(s.id)).sort(byId),
    }))
    .filter((rack) => rack.free.length > 0);

  if (candidates.length < req.count) {
    const which =
      candidates.length === 0
        ? "no rack has"
        : `only ${candidates.length} (${candidates.map((r) => r.id).join(", ")}) have`;
    fail(
      "ServiceUnavailable",
      `cannot place ${req.count} members in distinct racks: ${which} a free server; ` +
        `the fabric needs at least ${req.count} racks with a free server (e.g. \`hsmpool fabric init --racks ${req.count}\`)`,
      { needed: req.count, racksWithFreeServer: candidates.map((r) => r.id) },
    );
  }

  const prng = Prng.fromSeed(req.seed);
  return prng
    .shuffled(candidates)
    .slice(0, req.count)
    .map((rack) => {
      const server = rack.free[prng.int(rack.free.length)] as { id: string };
      return { serverId: server.id, rackId: rack.id };
    });
}
