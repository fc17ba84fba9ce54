/**
 * Linearizability of the key store, checked per key (keys are independent objects in
 * the pool's model, so a history is linearizable iff every key's sub-history is —
 * Herlihy & Wing's locality; a list is projected onto every key as a read of it).
 *
 * Per-key model (the pool's key store, packages/pool KeyStore, with soft delete): the key's
 * latest version (0 when absent or purged) and whether it is soft-deleted.
 * - create: a live or absent key gets version latest+1; a deleted name is refused (Conflict).
 * - rotate: a live key gets version latest+1; otherwise KeyNotFound.
 * - update (tags): a live key answers its latest version; otherwise KeyNotFound.
 * - delete: a live key becomes deleted, versions kept; otherwise KeyNotFound.
 * - recover: a deleted key is live again with the same versions; otherwise KeyNotFound.
 * - purge: a deleted key is gone for good (the next create makes version 1); otherwise KeyNotFound.
 * - restore of a backup whose latest version is n: an absent name gets versions up to n;
 *   a live or deleted name is refused (Conflict).
 * - get / list / sign / backup read the latest version of a live key, or KeyNotFound;
 *   verify of version v finds it iff the key is live and latest >= v. Pure.
 */

import { type LinOp, type Model, searchLinearization } from "@hsmpool/pool";
import { type ClientEvent, type HistoryEvent, type Operation, pairOperations } from "../history.js";
import { type OpName, WRITE_OPS } from "../scenario/schema.js";
import type { CheckerResult } from "./result.js";

export type KeyInput =
  | { f: "create" | "rotate" | "update" | "delete" | "recover" | "purge" }
  | { f: "restore"; version: number }
  | { f: "read"; via: OpName }
  | { f: "verify"; version: number };
export interface KeyOutput {
  found: boolean;
  version?: number;
}

export interface KeyState {
  latest: number;
  deleted: boolean;
}

const live = (s: KeyState) => s.latest > 0 && !s.deleted;
/** A step that takes effect only on a key in the right state; elsewhere it answers KeyNotFound and changes nothing. */
const when = (
  applies: boolean,
  state: KeyState,
  out: KeyOutput | undefined,
  next: KeyState,
  version?: number,
): { ok: boolean; next: KeyState } => {
  if (!applies) return { ok: out === undefined || !out.found, next: state };
  const seen = out === undefined || (out.found && (version === undefined || out.version === version));
  return { ok: seen, next };
};

export const KEY_MODEL: Model<KeyState, KeyInput, KeyOutput> = {
  init: { latest: 0, deleted: false },
  step(s, input, out) {
    switch (input.f) {
      case "create":
        // On a deleted name the pool answers Conflict (a definite failure, never an observation here).
        if (s.deleted) return { ok: out === undefined, next: s };
        return when(true, s, out, { latest: s.latest + 1, deleted: false }, s.latest + 1);
      case "rotate":
        return when(live(s), s, out, { latest: s.latest + 1, deleted: false }, s.latest + 1);
      case "update":
        return when(live(s), s, out, s, s.latest);
      case "delete":
        return when(live(s), s, out, { latest: s.latest, deleted: true });
      case "recover":
        return when(s.deleted, s, out, { latest: s.latest, deleted: false }, s.latest);
      case "purge":
        return when(s.deleted, s, out, { latest: 0, deleted: false });
      case "restore":
        // On a live or deleted name the pool answers Conflict: no effect.
        if (s.latest > 0) return { ok: out === undefined, next: s };
        return when(true, s, out, { latest: input.version, deleted: false }, input.version);
      case "read":
        if (out === undefined) return { ok: true, next: s };
        return { ok: out.found ? live(s) && out.version === s.latest : !live(s), next: s };
      case "verify":
        return { ok: out === undefined || out.found === (live(s) && s.latest >= input.version), next: s };
    }
  },
  stateKey: (s) => `${s.latest}${s.deleted ? "d" : ""}`,
  inputKey: (input) =>
    input.f === "verify" || input.f === "restore"
      ? `${input.f}:${input.version}`
      : input.f === "read"
        ? "read"
        : input.f,
};

/** Codes after which a write is known NOT to have taken effect; any other failure of a write is "unknown". */
export const DEFINITE_WRITE_FAILURES: ReadonlySet<string> = new Set([
  "BadParameter",
  "KeyNotFound",
  "Conflict",
  "Forbidden",
  "OperationNotAllowed",
  "Unauthenticated",
]);

export interface KeyOperation {
  key: string;
  /** The history operation it came from. */
  op: Operation;
  lin: LinOp<KeyInput, KeyOutput>;
}

const isWrite = (f: OpName) => WRITE_OPS.has(f);
const READS: ReadonlySet<OpName> = new Set(["get", "sign", "backup"]);

/** The per-key operations of a history; `keys` is the workload's key space (list is projected onto each). */
export function keyOperations(
  events: readonly HistoryEvent[],
  keys: readonly string[],
): Map<string, KeyOperation[]> {
  const byKey = new Map<string, KeyOperation[]>(keys.map((k) => [k, []]));
  const add = (key: string, op: Operation, lin: LinOp<KeyInput, KeyOutput>) => {
    let list = byKey.get(key);
    if (!list) {
      list = [];
      byKey.set(key, list);
    }
    list.push({ key, op, lin });
  };
  for (const op of pairOperations(events)) {
    const { invoke, complete } = op;
    const callIndex = invoke.index;
    const outcome = classify(invoke, complete);
    if (outcome === "skip") continue;
    if (invoke.f === "list") {
      if (outcome === "unknown" || !complete) continue;
      const present = complete.value?.keys ?? {};
      for (const key of byKey.keys()) {
        const v = present[key];
        add(key, op, {
          input: { f: "read", via: "list" },
          output: v === undefined ? { found: false } : { found: true, version: v },
          callIndex,
          returnIndex: complete.index,
        });
      }
      continue;
    }
    const key = invoke.key;
    if (key === undefined) continue;
    const f = invoke.f;
    const input: KeyInput =
      f === "verify"
        ? { f: "verify", version: invoke.value?.signedVersion ?? 1 }
        : f === "restore"
          ? { f: "restore", version: invoke.value?.backupVersion ?? 1 }
          : READS.has(f)
            ? { f: "read", via: f }
            : { f: f as "create" | "rotate" | "update" | "delete" | "recover" | "purge" };
    if (outcome === "unknown" || !complete) {
      add(key, op, { input, output: undefined, callIndex, returnIndex: Number.POSITIVE_INFINITY });
      continue;
    }
    const output: KeyOutput =
      outcome === "notFound"
        ? { found: false }
        : complete.value?.version !== undefined
          ? { found: true, version: complete.value.version }
          : { found: true };
    add(key, op, { input, output, callIndex, returnIndex: complete.index });
  }
  return byKey;
}

/** What a completion means for the model: an observation, "notFound", unknown, or nothing (skip). */
function classify(
  invoke: ClientEvent,
  complete: ClientEvent | undefined,
): "ok" | "notFound" | "unknown" | "skip" {
  if (!complete) return isWrite(invoke.f) ? "unknown" : "skip";
  switch (complete.type) {
    case "ok":
      return "ok";
    case "fail":
      if (complete.error?.code === "KeyNotFound")
        return invoke.f === "create" || invoke.f === "list" || invoke.f === "restore" ? "skip" : "notFound";
      if (isWrite(invoke.f) && !DEFINITE_WRITE_FAILURES.has(complete.error?.code ?? "")) return "unknown";
      return "skip";
    case "unknown":
      return isWrite(invoke.f) ? "unknown" : "skip";
    default:
      return "skip";
  }
}

export interface KeyVerdict {
  key: string;
  operations: number;
  verdict: true | false | "unknown";
  steps: number;
  /** For false: a sentence a person can follow; for unknown: why the search stopped. */
  explanation?: string;
  /** For false: history indexes of the operations around the one that could not be placed. */
  witness?: number[];
}

const describe = (k: KeyOperation): string => {
  const c = k.op.complete;
  const out = k.lin.output;
  const result =
    out === undefined
      ? "outcome unknown"
      : out.found
        ? out.version !== undefined
          ? `version ${out.version}`
          : "ok"
        : "KeyNotFound";
  const where = `process ${k.op.invoke.process}, history #${k.op.invoke.index}..${c ? `#${c.index}` : "end"}, ${(k.op.invoke.timeMs / 1000).toFixed(2)} s`;
  return `${k.op.invoke.f} → ${result} (${where})`;
};

export function checkKey(key: string, ops: readonly KeyOperation[], maxSteps: number): KeyVerdict {
  const r = searchLinearization(
    KEY_MODEL,
    ops.map((o) => o.lin),
    maxSteps,
  );
  if (r.verdict === true) return { key, operations: ops.length, verdict: true, steps: r.steps };
  if (r.verdict === "unknown")
    return { key, operations: ops.length, verdict: "unknown", steps: r.steps, explanation: r.reason };
  const stuck = r.stuckAt !== undefined ? ops[r.stuckAt] : undefined;
  const placed = r.longestPrefix.map((i) => ops[i] as KeyOperation);
  // The witness: what the longest attempt placed last, and every operation overlapping the stuck one.
  const overlapping = stuck
    ? ops.filter((o) => o.lin.callIndex < stuck.lin.returnIndex && o.lin.returnIndex > stuck.lin.callIndex)
    : [];
  const witness = [...new Set([...placed.slice(-3), ...overlapping].map((o) => o.op.invoke.index))].sort(
    (a, b) => a - b,
  );
  let state = KEY_MODEL.init;
  for (const p of placed) state = KEY_MODEL.step(state, p.lin.input, p.lin.output).next;
  return {
    key,
    operations: ops.length,
    verdict: false,
    steps: r.steps,
    explanation:
      `no order of the ${ops.length} operations on ${key} explains what the clients saw: the longest consistent ` +
      `order places ${placed.length}` +
      (placed.length > 0
        ? ` (ending with ${describe(placed.at(-1) as KeyOperation)}, leaving latest version ${state.latest}${state.deleted ? ", deleted" : ""})`
        : "") +
      (stuck ? `, then ${describe(stuck)} cannot take effect` : ""),
    witness,
  };
}

/** Every key's verdict; valid is false if any key is, else unknown if any key is, else true. */
export function checkLinearizability(
  events: readonly HistoryEvent[],
  keys: readonly string[],
  maxSteps: number,
): CheckerResult {
  const verdicts = [...keyOperations(events, keys)].map(([key, ops]) => checkKey(key, ops, maxSteps));
  const bad = verdicts.filter((v) => v.verdict === false);
  const unknown = verdicts.filter((v) => v.verdict === "unknown");
  const ops = verdicts.reduce((n, v) => n + v.operations, 0);
  const valid = bad.length > 0 ? false : unknown.length > 0 ? "unknown" : true;
  const summary =
    valid === true
      ? `${verdicts.length} keys, ${ops} operations: every key's history is linearizable`
      : valid === false
        ? `${bad.length} of ${verdicts.length} keys not linearizable: ${bad[0]?.explanation}`
        : `${unknown.length} of ${verdicts.length} keys undecided (${unknown[0]?.explanation})`;
  return { name: "linearizability", valid, summary, details: { maxSteps, keys: verdicts } };
}
