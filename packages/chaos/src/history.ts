/**
 * The run history (history.jsonl): one JSON object per line, in the real-time order
 * the harness saw things happen (one process, one event loop, so append order IS
 * real-time order — the checkers use `index`, `timeMs` is for people and plots).
 *
 * Client events (Jepsen style): `invoke`, then exactly one of
 * - `ok`      the pool answered and the operation took effect (or read what it read);
 * - `fail`    the pool gave a definite answer that nothing changed (a KeyNotFound is
 *             also an observation: the key was absent), or a read that got no answer
 *             (reads change nothing, so a lost read is simply a failed one);
 * - `unknown` a write whose outcome the client never learned (timeout, no quorum, a
 *             dead connection): it may have taken effect, now or later, or never.
 * Nemesis events: `start` (fault injected), `heal` (fault undone), `error` (could not
 * inject; the fault did not happen). Pure: the clock is injected.
 */
import { fail } from "@hsmpool/errors";
import type { FaultKind, OpName } from "./scenario/schema.js";
import { OP_NAMES } from "./scenario/schema.js";

export type ClientEventType = "invoke" | "ok" | "fail" | "unknown";

/** What a completed operation returned (only what the checkers need; never key material). */
export interface OpValue {
  /** create: the new version; get/sign: the version read or used; list: absent. */
  version?: number;
  /** list: the keys present, with their latest version. */
  keys?: Record<string, number>;
  /** verify: whether the signature verified. */
  valid?: boolean;
  /** sign: the node that ran it. */
  servedBy?: string;
  /** verify: the version the signature was made with (the verify asks for exactly that version). */
  signedVersion?: number;
  /** verify: history index of the sign that produced the signature. */
  signIndex?: number;
  /** restore: the latest version in the backup it restores (what backup read). */
  backupVersion?: number;
}

export interface ClientEvent {
  index: number;
  timeMs: number;
  process: number;
  type: ClientEventType;
  f: OpName;
  /** The key (all operations but list). */
  key?: string;
  value?: OpValue;
  error?: { code: string; message: string };
  /** Completions: time since the invoke. */
  latencyMs?: number;
  /** Reads made after every fault was healed, for the durability checker. */
  final?: boolean;
}

export type NemesisEventType = "start" | "heal" | "error";

export interface NemesisEvent {
  index: number;
  timeMs: number;
  process: "nemesis";
  type: NemesisEventType;
  f: FaultKind;
  /** Same id on a fault's start, heal and error. */
  faultId: number;
  /** Node ids the fault hit (resolved from primary/secondary/random when it fired). */
  targets: string[];
  detail: string;
}

export type HistoryEvent = ClientEvent | NemesisEvent;

export const isClientEvent = (e: HistoryEvent): e is ClientEvent => e.process !== "nemesis";
export const isNemesisEvent = (e: HistoryEvent): e is NemesisEvent => e.process === "nemesis";

type NewClientEvent = Omit<ClientEvent, "index" | "timeMs">;
type NewNemesisEvent = Omit<NemesisEvent, "index" | "timeMs" | "process">;

/** Appends events with increasing index and the injected clock's time; hands each to `sink` (the file writer). */
export class HistoryRecorder {
  readonly events: HistoryEvent[] = [];

  constructor(
    private readonly nowMs: () => number,
    private readonly sink: (event: HistoryEvent) => void = () => {},
  ) {}

  /** The recorder's clock (ms since the run started). */
  now(): number {
    return this.nowMs();
  }

  client(e: NewClientEvent): ClientEvent {
    const event: ClientEvent = { index: this.events.length, timeMs: round1(this.nowMs()), ...e };
    this.push(event);
    return event;
  }

  nemesis(e: NewNemesisEvent): NemesisEvent {
    const event: NemesisEvent = {
      index: this.events.length,
      timeMs: round1(this.nowMs()),
      process: "nemesis",
      ...e,
    };
    this.push(event);
    return event;
  }

  private push(e: HistoryEvent): void {
    this.events.push(e);
    this.sink(e);
  }
}

const round1 = (ms: number) => Math.round(ms * 10) / 10;

export function encodeHistoryLine(e: HistoryEvent): string {
  return `${JSON.stringify(e)}\n`;
}

const CLIENT_TYPES = new Set<string>(["invoke", "ok", "fail", "unknown"]);
const NEMESIS_TYPES = new Set<string>(["start", "heal", "error"]);

/** Reads history.jsonl back; a malformed line is BadParameter naming its line. */
export function parseHistory(text: string, file = "history.jsonl"): HistoryEvent[] {
  const out: HistoryEvent[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${file}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      fail("BadParameter", `${where}: not a JSON object`);
    }
    const e = v as Record<string, unknown>;
    if (typeof e !== "object" || e === null || typeof e.index !== "number" || typeof e.timeMs !== "number") {
      fail("BadParameter", `${where}: an event needs numeric index and timeMs`);
    }
    if (e.index !== out.length)
      fail("BadParameter", `${where}: index ${e.index} out of order (expected ${out.length})`);
    if (e.process === "nemesis") {
      if (!NEMESIS_TYPES.has(String(e.type)) || typeof e.faultId !== "number" || !Array.isArray(e.targets)) {
        fail("BadParameter", `${where}: a nemesis event needs type start|heal|error, faultId and targets`);
      }
    } else if (
      typeof e.process !== "number" ||
      !CLIENT_TYPES.has(String(e.type)) ||
      !(OP_NAMES as readonly string[]).includes(String(e.f))
    ) {
      fail(
        "BadParameter",
        `${where}: a client event needs a numeric process, type invoke|ok|fail|unknown and f`,
      );
    }
    out.push(e as unknown as HistoryEvent);
  });
  return out;
}

/** A client operation: its invoke paired with its completion (absent while still running). */
export interface Operation {
  invoke: ClientEvent;
  complete?: ClientEvent;
}

/** Pairs every invoke with the next completion of the same process (a process runs one operation at a time). */
export function pairOperations(events: readonly HistoryEvent[]): Operation[] {
  const open = new Map<number, Operation>();
  const ops: Operation[] = [];
  for (const e of events) {
    if (!isClientEvent(e)) continue;
    if (e.type === "invoke") {
      if (open.has(e.process))
        fail(
          "BadParameter",
          `history: process ${e.process} invoked twice without a completion (index ${e.index})`,
        );
      const op: Operation = { invoke: e };
      open.set(e.process, op);
      ops.push(op);
    } else {
      const op = open.get(e.process);
      if (!op)
        fail(
          "BadParameter",
          `history: a completion of process ${e.process} without an invoke (index ${e.index})`,
        );
      if (op.invoke.f !== e.f)
        fail("BadParameter", `history: process ${e.process} completed ${e.f} but invoked ${op.invoke.f}`);
      op.complete = e;
      open.delete(e.process);
    }
  }
  return ops;
}
