import {
  defaultHealingConfig,
  type HealingAction,
  type HealingConfig,
  type HealingFile,
  type HealingInput,
  type HealingState,
  healingStep,
  type InventoryRack,
  initialHealingState,
  type MemberRecord,
  type NodeObservation,
  restoreHealingState,
  toHealingFile,
} from "@hsmpool/healing";

/**
 * The HSM fabric controller as a sim actor: the real HFC's pure healing core
 * (`healingStep` from @hsmpool/healing) fed in virtual time, with the process
 * shell's duties done through a narrow world interface. Like the HFC process it polls
 * every member's Status each `healthIntervalMs`, counts a member as down after
 * `failureThreshold` missed polls, notices exits of the processes it launched, and
 * carries out `launch`, `fence` and `stop`. Its state is "persisted" after every step,
 * before the step's actions run (as the HFC writes its run dir); a crash drops the
 * in-memory state and a restart resumes from the persisted copy, adopting the nodes
 * that kept running.
 */

export interface HealingWorld {
  nowUs(): number;
  /** Run `fn` after `delayUs` of simulated time (an actor event). */
  after(delayUs: number, fn: () => void): void;
  /** The running process of `id` (its incarnation stands for the pid), or null. */
  processOf(id: string): number | null;
  /** What a Status probe of `id` answers; null when the process does not answer (down, frozen). */
  probe(id: string): NodeObservation | null;
  /** Servers marked lost (the fabric's inventory; `hsmpool fabric lose-server`). */
  lostServers(): readonly string[];
  /** Start `member` (restart in place, or a blank joiner on its server); the pid, or why not. */
  launch(member: MemberRecord): { ok: true; pid: number } | { ok: false; reason: string };
  /** SIGKILL / SIGTERM: the process stops and is never restarted by anyone but this actor. */
  kill(id: string): void;
  trace(n: number): void;
  log(make: () => string): void;
}

/** Deliberately wrong controller behaviours (invariant self-tests only). */
export type HealingUnsafeMode =
  /** Lost members are fenced but no joiner is ever launched. */
  | "neverReplace"
  /** Joiners are placed on a spare server in a rack a live member already uses. */
  | "sameRackReplacement";

export interface HealingActorOptions {
  inventory: readonly InventoryRack[];
  members: readonly MemberRecord[];
  placementSeed: number;
  healthIntervalMs: number;
  failureThreshold: number;
  unsafeMode?: HealingUnsafeMode | undefined;
}

/** What survives an HFC crash: the run dir's pool.json, healing.json and fabric-state.json. */
interface Persisted {
  members: MemberRecord[];
  healing: HealingFile;
  lostServers: HealingState["lostServers"];
}

const US_PER_MS = 1000;

export class HealingActor {
  readonly config: HealingConfig;
  private state: HealingState | null = null;
  private persisted: Persisted | null = null;
  /** Bumped on every crash, so polls scheduled by a dead incarnation do nothing. */
  private incarnation = 0;
  private readonly misses = new Map<string, number>();
  private queue: HealingInput[] = [];
  private stepping = false;
  crashes = 0;
  launches = 0;
  fences = 0;

  constructor(
    private readonly world: HealingWorld,
    private readonly options: HealingActorOptions,
  ) {
    this.config = defaultHealingConfig({
      poolSize: 3,
      inventory: options.inventory,
      placementSeed: options.placementSeed,
    });
  }

  get running(): boolean {
    return this.state !== null;
  }

  /** The controller's current book (null while crashed). */
  get healing(): HealingState | null {
    return this.state;
  }

  /** First start: the pool's three members were launched by `hsmpool up` and are adopted. */
  start(): void {
    this.boot(initialHealingState(this.options.members.map((m) => ({ ...m }))));
  }

  crash(): boolean {
    if (!this.state) return false;
    this.crashes++;
    this.incarnation++;
    this.state = null;
    this.queue = [];
    this.misses.clear();
    this.world.log(() => "HFC crashes (its nodes keep running; its run dir survives)");
    return true;
  }

  restart(): void {
    if (this.state || !this.persisted) return;
    const p = structuredClone(this.persisted);
    this.world.log(() => "HFC restarts from its run dir");
    this.boot(restoreHealingState(p.members, p.healing, { version: 1, lostServers: p.lostServers }));
  }

  private boot(state: HealingState): void {
    this.state = state;
    this.save();
    const atMs = this.nowMs();
    // As FabricController.takeOverNodes: adopt what runs, restart what died unsupervised.
    for (const m of state.members) {
      const pid = this.world.processOf(m.id);
      const live = m.lifecycle === "active" || m.lifecycle === "joining";
      if (!live) {
        if (pid !== null) this.world.kill(m.id);
        if (m.lifecycle === "fenced") this.feed({ type: "fenced", memberId: m.id, atMs });
      } else if (pid !== null) this.feed({ type: "adopted", memberId: m.id, pid, atMs });
      else if (m.peerAddress !== "" || m.lifecycle === "joining") {
        this.feed({
          type: "process-exited",
          memberId: m.id,
          pid: 0,
          exit: { code: null, signal: "SIGKILL" },
          refusal: null,
          atMs,
        });
      }
    }
    this.schedulePoll();
  }

  private nowMs(): number {
    return Math.floor(this.world.nowUs() / US_PER_MS);
  }

  private schedulePoll(): void {
    const incarnation = this.incarnation;
    this.world.after(this.options.healthIntervalMs * US_PER_MS, () => {
      if (incarnation !== this.incarnation || !this.state) return;
      this.poll();
      this.schedulePoll();
    });
  }

  /** One health round: lost servers, process exits, Status probes, then a tick. */
  private poll(): void {
    const state = this.state;
    if (!state) return;
    const atMs = this.nowMs();
    for (const serverId of this.world.lostServers()) {
      if (!state.lostServers.some((s) => s.serverId === serverId))
        this.feed({ type: "server-lost", serverId, atMs });
    }
    for (const m of [...(this.state?.members ?? [])]) {
      const rt = this.state?.runtime[m.id];
      if (!rt || (m.lifecycle !== "active" && m.lifecycle !== "joining")) continue;
      const pid = this.world.processOf(m.id);
      if (rt.process === "running" && pid !== rt.pid) {
        this.feed({
          type: "process-exited",
          memberId: m.id,
          pid: rt.pid,
          exit: { code: null, signal: "SIGKILL" },
          refusal: null,
          atMs,
        });
        continue;
      }
      if (rt.process !== "running") continue;
      const status = this.world.probe(m.id);
      if (status) {
        this.misses.set(m.id, 0);
        this.feed({ type: "node-status", memberId: m.id, status, atMs });
      } else {
        const missed = (this.misses.get(m.id) ?? 0) + 1;
        this.misses.set(m.id, missed);
        if (missed >= this.options.failureThreshold)
          this.feed({ type: "node-status", memberId: m.id, status: null, atMs });
      }
    }
    this.feed({ type: "tick", atMs });
  }

  /** Inputs are stepped one at a time; actions may feed more inputs (launched, fenced). */
  private feed(input: HealingInput): void {
    this.queue.push(input);
    if (this.stepping) return;
    this.stepping = true;
    try {
      for (let next = this.queue.shift(); next && this.state; next = this.queue.shift()) {
        const { state, actions } = healingStep(this.config, this.state, next);
        this.state = state;
        this.save();
        for (const action of actions) this.perform(action);
      }
    } finally {
      this.stepping = false;
    }
  }

  private save(): void {
    const s = this.state;
    if (!s) return;
    this.persisted = structuredClone({
      members: s.members,
      healing: toHealingFile(s, 0),
      lostServers: s.lostServers,
    });
  }

  private perform(action: HealingAction): void {
    const state = this.state;
    if (!state) return;
    const atMs = this.nowMs();
    const m = state.members.find((x) => x.id === action.memberId);
    if (!m) return;
    this.world.trace(ACTION_CODES[action.type]);
    switch (action.type) {
      case "launch": {
        if (m.lifecycle === "joining" && m.peerAddress === "") {
          if (this.options.unsafeMode === "neverReplace") {
            this.world.log(() => `HFC (unsafe neverReplace) does not launch joiner ${m.id}`);
            return;
          }
          if (this.options.unsafeMode === "sameRackReplacement") this.misplace(state, m);
        }
        this.launches++;
        const r = this.world.launch(m);
        this.world.log(() => `HFC launches ${m.id} on ${m.serverId}: ${r.ok ? "ok" : r.reason}`);
        if (r.ok) {
          this.feed({
            type: "launched",
            memberId: m.id,
            pid: r.pid,
            peerAddress: `${m.id}.sim:7001`,
            dataAddress: `${m.id}.sim:7002`,
            atMs,
          });
        } else this.feed({ type: "launch-failed", memberId: m.id, reason: r.reason, atMs });
        return;
      }
      case "fence":
        this.fences++;
        this.world.log(() => `HFC fences ${m.id}`);
        this.world.kill(m.id);
        this.feed({ type: "fenced", memberId: m.id, atMs });
        return;
      case "stop":
        this.world.log(() => `HFC stops ${m.id} (${action.signal})`);
        this.world.kill(m.id);
        return;
    }
  }

  /** unsafe sameRackReplacement: move the joiner onto a free server of a rack a live member uses. */
  private misplace(state: HealingState, joiner: MemberRecord): void {
    const lost = new Set(state.lostServers.map((s) => s.serverId));
    const used = new Set(state.members.map((x) => x.serverId));
    const liveRacks = new Set(
      state.members.filter((x) => x.lifecycle === "active" && x.id !== joiner.id).map((x) => x.rackId),
    );
    for (const rack of this.options.inventory) {
      if (!liveRacks.has(rack.id)) continue;
      const server = rack.servers.find((s) => !lost.has(s.id) && !used.has(s.id));
      if (!server) continue;
      joiner.serverId = server.id;
      joiner.rackId = rack.id;
      this.save();
      return;
    }
  }
}

const ACTION_CODES: Record<HealingAction["type"], number> = { launch: 1, fence: 2, stop: 3 };
