/**
 * The node's Prometheus series (issue 19). Every label is a closed set: a gRPC method
 * name, an HsmPoolError code, an HSM session operation. Key names are customer data and
 * never become a label; no value is ever derived from key material.
 */
import { Counter, Gauge, Histogram, LATENCY_BUCKETS, newRegistry, type Registry } from "@hsmpool/metrics";

/** What the Raft gauges read at scrape time. */
export interface RaftView {
  term: number;
  commitIndex: number;
  appliedIndex: number;
}

export class NodeMetrics {
  readonly registry: Registry;
  private readonly leaderChanges: Counter;
  private readonly requests: Counter<"operation" | "result">;
  private readonly requestSeconds: Histogram<"operation" | "result">;
  private readonly hsmSeconds: Histogram<"operation" | "result">;
  private readonly walFsyncSeconds: Histogram;
  private readonly authorizationRefusals: Counter<"operation" | "reason">;
  private lastLeader: string | null | undefined;
  /** Labelled children by "operation result" (closed label sets: bounded), so a call skips prom-client's label hashing. */
  private readonly requestSeries = new Map<
    string,
    { count: { inc(): void }; seconds: { observe(v: number): void } }
  >();
  private readonly hsmSeries = new Map<string, { observe(v: number): void }>();

  constructor(
    labels: { node: string; pool: string },
    raft: () => RaftView | null,
    options: { processMetrics: boolean },
  ) {
    const registry = newRegistry("hsmpool_node_", options);
    registry.setDefaultLabels(labels);
    this.registry = registry;
    const registers = [registry];
    const raftGauge = (name: string, help: string, read: (v: RaftView) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const view = raft();
          if (view) this.set(read(view));
        },
      });
    raftGauge("hsmpool_node_raft_term", "Current Raft term", (v) => v.term);
    raftGauge("hsmpool_node_raft_commit_index", "Highest log index known committed", (v) => v.commitIndex);
    raftGauge(
      "hsmpool_node_raft_applied_index",
      "Highest log index applied to the key store",
      (v) => v.appliedIndex,
    );
    this.leaderChanges = new Counter({
      name: "hsmpool_node_raft_leader_changes_total",
      help: "Times this node saw the Raft leader change (including to none)",
      registers,
    });
    this.requests = new Counter({
      name: "hsmpool_node_requests_total",
      help: "Data-plane requests by operation and result (ok or the error code)",
      labelNames: ["operation", "result"],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: "hsmpool_node_request_duration_seconds",
      help: "Data-plane request latency by operation and result",
      labelNames: ["operation", "result"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.hsmSeconds = new Histogram({
      name: "hsmpool_node_hsm_operation_duration_seconds",
      help: "HSM partition session call latency by operation and result",
      labelNames: ["operation", "result"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.walFsyncSeconds = new Histogram({
      name: "hsmpool_node_wal_fsync_duration_seconds",
      help: "Raft WAL fdatasync latency (one per persisted Ready)",
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.authorizationRefusals = new Counter({
      name: "hsmpool_node_authorization_refusals_total",
      help: "Requests refused for want of a valid identity (Unauthenticated) or permission (Forbidden)",
      labelNames: ["operation", "reason"],
      registers,
    });
    // Present from the first scrape, so a dashboard shows 0 rather than "no data".
    this.leaderChanges.inc(0);
    this.walFsyncSeconds.zero({});
  }

  leaderSeen(leader: string | null): void {
    if (this.lastLeader !== undefined && leader !== this.lastLeader) this.leaderChanges.inc();
    this.lastLeader = leader;
  }

  request(operation: string, result: string, seconds: number): void {
    const key = `${operation} ${result}`;
    let series = this.requestSeries.get(key);
    if (series === undefined) {
      series = {
        count: this.requests.labels({ operation, result }),
        seconds: this.requestSeconds.labels({ operation, result }),
      };
      this.requestSeries.set(key, series);
    }
    series.count.inc();
    series.seconds.observe(seconds);
  }

  authorizationRefused(operation: string, reason: "Unauthenticated" | "Forbidden"): void {
    this.authorizationRefusals.inc({ operation, reason });
  }

  hsmOperation(operation: string, ok: boolean, seconds: number): void {
    const result = ok ? "ok" : "error";
    const key = `${operation} ${result}`;
    let series = this.hsmSeries.get(key);
    if (series === undefined) {
      series = this.hsmSeconds.labels({ operation, result });
      this.hsmSeries.set(key, series);
    }
    series.observe(seconds);
  }

  walFsync(seconds: number): void {
    this.walFsyncSeconds.observe(seconds);
  }
}
