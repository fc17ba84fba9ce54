/**
 * Test helpers for the healing controller (not exported from the package): a pool
 * of three bootstrap members on a four-rack fabric, and a driver that feeds inputs
 * and collects actions.
 */

import { defaultHealingConfig, healingStep, initialHealingState } from "../controller.js";
import type {
  HealingAction,
  HealingConfig,
  HealingInput,
  HealingRecord,
  HealingState,
  NodeObservation,
} from "../model.js";
import { spec } from "./fixtures.js";

/** `racks` racks of `serversPerRack` servers: rack-<r> holds r<r>-s1..s<n>. */
export function inventory(racks: number, serversPerRack = 2) {
  return Array.from({ length: racks }, (_, r) => ({
    id: `rack-${r + 1}`,
    servers: Array.from({ length: serversPerRack }, (_, s) => ({ id: `r${r + 1}-s${s + 1}` })),
  }));
}

export function config(racks = 4, serversPerRack = 2, overrides: Partial<HealingConfig> = {}): HealingConfig {
  return defaultHealingConfig({
    poolSize: 3,
    inventory: inventory(racks, serversPerRack),
    placementSeed: 7,
    ...overrides,
  });
}

export function observation(fields: Partial<NodeObservation> = {}): NodeObservation {
  return {
    role: "secondary",
    membership: "voter",
    ownership: "synced",
    members: [
      { id: "n1", role: "voter" },
      { id: "n2", role: "voter" },
      { id: "n3", role: "voter" },
    ],
    svn: 1,
    mrsigner: "bb".repeat(32),
    ...fields,
  };
}

/** Feeds inputs one by one; keeps the state and every action emitted, in order. */
export class Driver {
  state: HealingState;
  readonly actions: HealingAction[] = [];
  private nextPid = 1000;

  constructor(
    readonly cfg: HealingConfig = config(),
    state?: HealingState,
  ) {
    this.state = state ?? initialHealingState(["n1", "n2", "n3"].map((id) => spec(id)));
  }

  feed(input: HealingInput): HealingAction[] {
    const step = healingStep(this.cfg, this.state, input);
    this.state = step.state;
    this.actions.push(...step.actions);
    return step.actions;
  }

  /** Every bootstrap member launched and answering as a synced voter. */
  boot(atMs = 0, primary = "n1"): this {
    for (const id of ["n1", "n2", "n3"]) {
      this.launched(id, atMs);
      this.status(id, { role: id === primary ? "primary" : "secondary" }, atMs);
    }
    this.actions.length = 0;
    return this;
  }

  launched(memberId: string, atMs: number, pid = this.nextPid++): HealingAction[] {
    const m = this.member(memberId);
    const port = 7000 + Number(memberId.slice(1));
    return this.feed({
      type: "launched",
      memberId,
      pid,
      peerAddress: m.peerAddress || `127.0.0.1:${port}`,
      dataAddress: m.dataAddress || `127.0.0.1:${port + 100}`,
      atMs,
    });
  }

  status(memberId: string, fields: Partial<NodeObservation>, atMs: number): HealingAction[] {
    return this.feed({ type: "node-status", memberId, status: observation(fields), atMs });
  }

  exited(memberId: string, atMs: number, refusal: string | null = null, signal = "SIGKILL"): HealingAction[] {
    const rt = this.state.runtime[memberId];
    return this.feed({
      type: "process-exited",
      memberId,
      pid: rt?.pid ?? 0,
      exit: { code: null, signal },
      refusal,
      atMs,
    });
  }

  member(id: string) {
    const m = this.state.members.find((x) => x.id === id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  record(id: string): HealingRecord {
    const r = this.state.healings.find((x) => x.id === id);
    if (!r) throw new Error(`no healing ${id}`);
    return r;
  }

  latest(): HealingRecord {
    const r = this.state.healings.at(-1);
    if (!r) throw new Error("no healing yet");
    return r;
  }
}

export const phasesOf = (r: HealingRecord) => r.phases.map((p) => p.phase);
