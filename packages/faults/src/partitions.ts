/**
 * Network partition shapes (after Jepsen's nemeses), each turned into the exact set
 * of *directed* links it cuts. Pure functions of the member list, so a table test
 * can pin every shape down.
 */

export type NodeName = string;

/** A directed link: messages from `from` to `to`. */
export interface Link {
  from: NodeName;
  to: NodeName;
}

export type PartitionShape =
  /** Messages from every node of `from` to every node of `to` are lost; the reverse direction works. */
  | { kind: "one-way"; from: NodeName[]; to: NodeName[] }
  /** `node` can neither send to nor receive from anyone. */
  | { kind: "isolate"; node: NodeName }
  /** Two sides that cannot talk to each other in either direction (majority/minority when sizes differ). */
  | { kind: "halves"; sides: [NodeName[], NodeName[]] }
  /** Left and right cannot talk; the bridge node talks to both (Jepsen's "bridge"). */
  | { kind: "bridge"; left: NodeName[]; bridge: NodeName; right: NodeName[] }
  /**
   * Jepsen's "majorities ring": nodes in ring order, each connected only to the nodes
   * within ring distance d, d the least with 2d+1 >= a majority; so every node sees a
   * majority but no two nodes see the same one. With 3 nodes every pair is adjacent
   * and nothing is cut.
   */
  | { kind: "ring"; order: NodeName[] };

function cross(a: readonly NodeName[], b: readonly NodeName[], out: Link[]): void {
  for (const from of a) for (const to of b) if (from !== to) out.push({ from, to });
}

/** Every directed link cut by `shape` among `members` (no duplicates, stable order). */
export function linksCut(shape: PartitionShape, members: readonly NodeName[]): Link[] {
  const out: Link[] = [];
  switch (shape.kind) {
    case "one-way":
      cross(shape.from, shape.to, out);
      break;
    case "isolate": {
      const others = members.filter((m) => m !== shape.node);
      cross([shape.node], others, out);
      cross(others, [shape.node], out);
      break;
    }
    case "halves":
      cross(shape.sides[0], shape.sides[1], out);
      cross(shape.sides[1], shape.sides[0], out);
      break;
    case "bridge":
      cross(shape.left, shape.right, out);
      cross(shape.right, shape.left, out);
      break;
    case "ring": {
      const n = shape.order.length;
      const d = Math.ceil(Math.floor(n / 2) / 2);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          if (i === j) continue;
          const dist = Math.min((i - j + n) % n, (j - i + n) % n);
          if (dist > d) out.push({ from: shape.order[i] as NodeName, to: shape.order[j] as NodeName });
        }
      }
      break;
    }
  }
  const seen = new Set<string>();
  return out.filter((l) => {
    const k = `${l.from}>${l.to}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** A one-line description for transcripts ("halves [n1,n2] | [n3]"). */
export function describeShape(shape: PartitionShape): string {
  const list = (ns: readonly NodeName[]) => `[${ns.join(",")}]`;
  switch (shape.kind) {
    case "one-way":
      return `one-way ${list(shape.from)} -x-> ${list(shape.to)}`;
    case "isolate":
      return `isolate ${shape.node}`;
    case "halves":
      return `halves ${list(shape.sides[0])} | ${list(shape.sides[1])}`;
    case "bridge":
      return `bridge ${list(shape.left)} <- ${shape.bridge} -> ${list(shape.right)}`;
    case "ring":
      return `majorities-ring ${list(shape.order)}`;
  }
}
