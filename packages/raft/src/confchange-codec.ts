import { fail } from "@hsmpool/errors";
import type { ConfChange } from "./types.js";

const TYPES = new Set(["addVoter", "addLearner", "removeNode"]);

/** Encode a ConfChange as the data of a confChange log entry (UTF-8 JSON). */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ type: cc.type, node: cc.node }));
}

/** Decode and validate a confChange entry's data. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(data));
  } catch {
    fail("BadParameter", "conf change entry data is not valid JSON");
  }
  const o = v as { type?: unknown; node?: unknown };
  if (typeof o !== "object" || o === null || typeof o.type !== "string" || !TYPES.has(o.type)) {
    fail("BadParameter", "conf change type must be addVoter, addLearner or removeNode");
  }
  if (typeof o.node !== "string" || o.node.length === 0) {
    fail("BadParameter", "conf change node must be a non-empty node id");
  }
  return { type: o.type as ConfChange["type"], node: o.node };
}
