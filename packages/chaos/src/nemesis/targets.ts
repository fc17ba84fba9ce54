/**
 * Which member a fault hits, decided when it fires from the latest pool status
 * (pure): the primary, an up secondary, any up member, or a named node.
 */
import type { Prng } from "@hsmpool/faults";
import type { TargetSpec } from "../scenario/schema.js";
import type { StatusSample } from "../timeline.js";

export type Resolved = { nodeId: string } | { error: string };

export function resolveTarget(spec: TargetSpec, status: StatusSample | undefined, prng: Prng): Resolved {
  if (!status || status.state === "unreachable")
    return { error: "the HFC does not answer, so no target can be chosen" };
  const up = status.members.filter((m) => m.health === "up");
  switch (spec) {
    case "primary":
      return status.primary !== ""
        ? { nodeId: status.primary }
        : { error: "the pool has no primary right now" };
    case "secondary": {
      const secondaries = up.filter((m) => m.id !== status.primary && m.role !== "primary");
      return secondaries.length > 0
        ? { nodeId: prng.pick(secondaries).id }
        : { error: "no secondary is up right now" };
    }
    case "random":
      return up.length > 0 ? { nodeId: prng.pick(up).id } : { error: "no member is up right now" };
    default:
      return status.members.some((m) => m.id === spec)
        ? { nodeId: spec }
        : {
            error: `${spec} is not a member of the pool (members: ${status.members.map((m) => m.id).join(", ")})`,
          };
  }
}
