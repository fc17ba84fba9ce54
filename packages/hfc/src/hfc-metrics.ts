/**
 * The HFC's Prometheus series (issue 19): healing events and how long each healing phase
 * took, launches, lost servers, member health. Labels are closed sets (kinds, phases,
 * health states); node ids are public names the HFC itself assigns.
 */
import { Counter, Gauge, Histogram, newRegistry, type Registry } from "@hsmpool/metrics";
import type { HealingEvent, PhaseMark, PoolStatus } from "@hsmpool/wire";

/** Seconds: a phase lasts from a few ms (detected → fenced) to a join timeout (minutes). */
const PHASE_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];

export class HfcMetrics {
  readonly registry: Registry;
  private readonly healingPhases: Counter<"kind" | "phase">;
  private readonly phaseSeconds: Histogram<"kind" | "phase">;
  private readonly launches: Counter<"node">;
  private readonly serversLost: Counter<"how">;

  constructor(labels: { pool: string }, status: () => PoolStatus) {
    const registry = newRegistry("hsmpool_hfc_");
    registry.setDefaultLabels(labels);
    this.registry = registry;
    const registers = [registry];
    this.healingPhases = new Counter({
      name: "hsmpool_hfc_healing_events_total",
      help: "Healing phases reached, by kind of healing (restart, replace, upgrade) and phase",
      labelNames: ["kind", "phase"],
      registers,
    });
    this.phaseSeconds = new Histogram({
      name: "hsmpool_hfc_healing_phase_duration_seconds",
      help: "How long a healing stayed in a phase before reaching the next one",
      labelNames: ["kind", "phase"],
      buckets: PHASE_BUCKETS,
      registers,
    });
    this.launches = new Counter({
      name: "hsmpool_hfc_node_launches_total",
      help: "Node processes launched (first launches, restarts and joiners)",
      labelNames: ["node"],
      registers,
    });
    this.serversLost = new Counter({
      name: "hsmpool_hfc_servers_lost_total",
      help: "Servers declared lost, by how (operator request or missed health checks)",
      labelNames: ["how"],
      registers,
    });
    new Gauge({
      name: "hsmpool_hfc_members",
      help: "Live members by health",
      labelNames: ["health"],
      registers,
      collect() {
        const counts: Record<string, number> = { up: 0, down: 0, "crash-looping": 0 };
        for (const m of status().members) counts[m.health] = (counts[m.health] ?? 0) + 1;
        for (const [health, n] of Object.entries(counts)) this.set({ health }, n);
      },
    });
    new Gauge({
      name: "hsmpool_hfc_pool_healthy",
      help: "1 when the pool is healthy (every member up and synced, one primary), else 0",
      registers,
      collect() {
        this.set(status().state === "healthy" ? 1 : 0);
      },
    });
    new Gauge({
      name: "hsmpool_hfc_pool_term",
      help: "Highest Raft term the members report",
      registers,
      collect() {
        this.set(status().term);
      },
    });
    this.healingPhases.inc({ kind: "restart", phase: "detected" }, 0);
    this.healingPhases.inc({ kind: "replace", phase: "detected" }, 0);
  }

  /** A healing reached `mark`; `previous` (if any) is the phase it leaves. */
  healingPhase(record: HealingEvent, mark: PhaseMark, previous: PhaseMark | undefined): void {
    this.healingPhases.inc({ kind: record.kind, phase: mark.phase });
    if (previous) {
      this.phaseSeconds.observe(
        { kind: record.kind, phase: previous.phase },
        Math.max(0, mark.atMs - previous.atMs) / 1000,
      );
    }
  }

  launched(nodeId: string): void {
    this.launches.inc({ node: nodeId });
  }

  serverLost(how: "requested" | "missed-health-checks"): void {
    this.serversLost.inc({ how });
  }
}
