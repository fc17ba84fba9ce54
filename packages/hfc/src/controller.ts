/**
 * The HFC process shell: opens the fabric and the fabric CA, places and launches
 * the pool's nodes, serves the control API, polls member health and stops
 * everything on Shutdown. Decisions live in pure modules (placement, health,
 * status, node-config); this class performs their effects.
 */
import { randomBytes, randomInt } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { resolve } from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { fail } from "@hsmpool/errors";
import { openFabric } from "@hsmpool/platform";
import type { Logger } from "pino";
import { writeJsonAtomic } from "./atomic-fs.js";
import { type ControlServer, startControlServer } from "./control-server.js";
import { certDerToPem, createCsrKeyPair } from "./csr.js";
import { fromServiceError } from "./grpc-errors.js";
import {
  type HealthConfig,
  type HealthStep,
  type MemberHealth,
  probeFailed,
  probeSucceeded,
  processExited,
  STARTING,
} from "./health.js";
import { type LaunchedNode, launchNode } from "./launcher.js";
import { buildNodeConfig, type RaftTiming } from "./node-config.js";
import { dataPlaneCredentials, NodeStatusClient } from "./node-status-client.js";
import { FabricCa } from "./pki.js";
import { placeMembers } from "./placement.js";
import { allocateLoopbackPorts } from "./ports.js";
import { isOurProcess, signalProcess, waitForExit } from "./processes.js";
import {
  isProcessAlive,
  type RunPaths,
  readHfcInfo,
  readNodePids,
  readPoolSpec,
  runPaths,
} from "./run-dir.js";
import { aggregatePoolStatus, statusMismatch } from "./status.js";
import type { HfcInfo, MemberSpec, NodeStatus, PoolSpec, PoolStatus } from "./types.js";

export const POOL_SIZE = 3;
const POOL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const KILL_SIGNALS = new Set<NodeJS.Signals>(["SIGKILL", "SIGTERM", "SIGSTOP", "SIGCONT"]);
/** How long nodes get to finish after SIGTERM before SIGKILL (the contract gives a node ~2 s to drain). */
const STOP_GRACE_MS = 5000;

export interface ControllerOptions {
  runDir: string;
  fabricDir: string;
  /** Only for a new pool; default `pool-<8 hex>`. */
  poolId?: string;
  /** The node entry script (`packages/node/dist/main.js`). */
  nodeMain: string;
  /** The signed enclave bundle the nodes launch (default: the node's dist dir). */
  bundleDir: string;
  health: HealthConfig;
  timing: RaftTiming;
  logger: Logger;
  /** Control API port on 127.0.0.1 (0: any free port). */
  controlPort?: number;
  nowMs?: () => number;
}

interface MemberRuntime {
  spec: MemberSpec;
  health: MemberHealth;
  process: LaunchedNode | undefined;
  running: boolean;
  probeInFlight: boolean;
  statusClient: NodeStatusClient;
}

export class FabricController {
  private readonly members = new Map<string, MemberRuntime>();
  private pollTimer: NodeJS.Timeout | undefined;
  private lastLogged = { state: "", primary: "", term: 0 };
  private stopping: Promise<void> | undefined;
  private resolveDone!: () => void;
  /** Resolves once the controller has stopped every node and its server. */
  readonly done = new Promise<void>((r) => {
    this.resolveDone = r;
  });

  private constructor(
    private readonly opts: ControllerOptions,
    private readonly paths: RunPaths,
    private readonly fabricDir: string,
    private readonly pool: PoolSpec,
    private readonly ca: FabricCa,
    private readonly log: Logger,
    private readonly nowMs: () => number,
  ) {}

  static async start(opts: ControllerOptions): Promise<FabricController> {
    const paths = runPaths(opts.runDir);
    const log = opts.logger;
    const nowMs = opts.nowMs ?? Date.now;
    await mkdir(paths.runDir, { recursive: true, mode: 0o700 });
    const claim = await readHfcInfo(paths.runDir);
    if (claim && claim.pid !== process.pid && isProcessAlive(claim.pid)) {
      fail("Conflict", `an HFC (pid ${claim.pid}) already runs pool ${claim.poolId} in ${paths.runDir}`, {
        pid: claim.pid,
      });
    }
    const fabric = await openFabric(opts.fabricDir);
    const ca = await FabricCa.openOrCreate(paths.pkiDir);
    const pool = await FabricController.loadOrPlacePool(opts, paths, fabric.info.racks, nowMs, log);
    for (const m of pool.members) fabric.server(m.serverId); // a pool.json naming unknown servers fails here

    const controller = new FabricController(opts, paths, fabric.dir, pool, ca, log, nowMs);
    await controller.boot();
    return controller;
  }

  private static async loadOrPlacePool(
    opts: ControllerOptions,
    paths: RunPaths,
    racks: { id: string; servers: { id: string }[] }[],
    nowMs: () => number,
    log: Logger,
  ): Promise<PoolSpec> {
    const existing = await readPoolSpec(paths.runDir);
    if (existing) {
      if (opts.poolId !== undefined && opts.poolId !== existing.poolId) {
        fail("Conflict", `${paths.runDir} holds pool ${existing.poolId}, not ${opts.poolId}`, {
          poolId: existing.poolId,
        });
      }
      log.info({ poolId: existing.poolId }, "resuming pool from pool.json");
      return existing;
    }
    const poolId = opts.poolId ?? `pool-${randomBytes(4).toString("hex")}`;
    if (!POOL_ID.test(poolId)) {
      fail(
        "BadParameter",
        `pool id must be 1..64 letters, digits, '.', '_' or '-', got ${JSON.stringify(poolId)}`,
      );
    }
    const placementSeed = randomInt(0, 2 ** 31);
    const placed = placeMembers({ racks, count: POOL_SIZE, seed: placementSeed });
    const ports = await allocateLoopbackPorts(2 * POOL_SIZE);
    const members: MemberSpec[] = placed.map((p, i) => ({
      id: `n${i + 1}`,
      serverId: p.serverId,
      rackId: p.rackId,
      partition: 0,
      peerAddress: `127.0.0.1:${ports[2 * i]}`,
      dataAddress: `127.0.0.1:${ports[2 * i + 1]}`,
      bundleDir: resolve(opts.bundleDir),
    }));
    const pool: PoolSpec = { poolId, placementSeed, members, createdMs: nowMs() };
    await writeJsonAtomic(paths.poolJson, pool);
    log.info(
      { poolId, placementSeed, members: members.map((m) => `${m.id}@${m.serverId}/${m.rackId}`) },
      "pool placed",
    );
    return pool;
  }

  private async boot(): Promise<void> {
    const identity = await createCsrKeyPair("hsmpool-hfc");
    const issued = await this.ca.issueClientCert(identity.csrDer);
    const credentials: grpc.ChannelCredentials = dataPlaneCredentials({
      caCertPem: this.ca.caCertPem,
      certPem: certDerToPem(issued.certDer),
      privateKeyPem: identity.privateKeyPem,
    });
    for (const spec of this.pool.members) {
      this.members.set(spec.id, {
        spec,
        health: STARTING,
        process: undefined,
        running: false,
        probeInFlight: false,
        statusClient: new NodeStatusClient(spec.dataAddress, credentials),
      });
    }
    const server = await startControlServer(this.handlers(), {
      port: this.opts.controlPort ?? 0,
      onInternalError: (method, e) =>
        this.log.error(
          { method, err: e instanceof Error ? e.stack : String(e) },
          "control API internal error",
        ),
    });
    this.controlServer = server;
    await this.stopStaleNodes();
    for (const m of this.members.values()) {
      await writeJsonAtomic(
        this.paths.nodeConfig(m.spec.id),
        buildNodeConfig(this.pool, m.spec, {
          fabricDir: this.fabricDir,
          hfcAddress: server.address,
          fabricCaCertPath: this.paths.caCert,
          stateDir: this.paths.nodeStateDir(m.spec.id),
          mode: "bootstrap",
          timing: this.opts.timing,
        }),
      );
      await mkdir(this.paths.nodeStateDir(m.spec.id), { recursive: true, mode: 0o700 });
    }
    for (const m of this.members.values()) this.launch(m);
    await this.writePids();
    const info: HfcInfo = {
      pid: process.pid,
      controlAddress: server.address,
      poolId: this.pool.poolId,
      fabricDir: this.fabricDir,
      startedMs: this.nowMs(),
    };
    // hfc.json last: its presence tells the CLI the control API answers.
    await writeJsonAtomic(this.paths.hfcJson, info);
    this.log.info({ controlAddress: server.address, poolId: this.pool.poolId }, "HFC ready");
    this.pollTimer = setInterval(() => this.pollAll(), this.opts.health.healthIntervalMs);
  }

  private controlServer: ControlServer | undefined;

  /** Node processes a previous, crashed HFC left running for this run dir are stopped before relaunch. */
  private async stopStaleNodes(): Promise<void> {
    const pids = await readNodePids(this.paths.runDir);
    for (const [nodeId, pid] of Object.entries(pids)) {
      if (!this.members.has(nodeId) || !isOurProcess(pid, this.paths.nodeConfig(nodeId))) continue;
      this.log.warn({ nodeId, nodePid: pid }, "stopping a node left running by a previous HFC");
      signalProcess(pid, "SIGKILL");
      await waitForExit(pid, 2000);
    }
  }

  private launch(m: MemberRuntime): void {
    const launched = launchNode({
      nodeId: m.spec.id,
      nodeMain: this.opts.nodeMain,
      configPath: this.paths.nodeConfig(m.spec.id),
      logPath: this.paths.nodeLog(m.spec.id),
    });
    m.process = launched;
    m.running = true;
    this.log.info(
      { nodeId: m.spec.id, nodePid: launched.pid, server: m.spec.serverId, rack: m.spec.rackId },
      "node launched",
    );
    void launched.exited.then((exit) => {
      if (m.process !== launched) return;
      m.running = false;
      const level = this.stopping ? "info" : "warn";
      this.log[level]({ nodeId: m.spec.id, nodePid: launched.pid, ...exit }, "node process exited");
      const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
      this.applyHealth(m, processExited(m.spec.id, m.health, `process exited (${how})`, this.nowMs()));
    });
  }

  private async writePids(): Promise<void> {
    const pids: Record<string, number> = {};
    for (const m of this.members.values()) if (m.process && m.running) pids[m.spec.id] = m.process.pid;
    await writeJsonAtomic(this.paths.pidsJson, pids);
  }

  // ---------------------------------------------------------------- health

  private pollAll(): void {
    const deadlineMs = Math.max(200, this.opts.health.healthIntervalMs);
    for (const m of this.members.values()) {
      if (m.probeInFlight) continue;
      m.probeInFlight = true;
      m.statusClient
        .status(deadlineMs)
        .then(
          (status) => this.onProbe(m, status, null),
          (e: unknown) => this.onProbe(m, null, fromServiceError(e, "Status").error.message),
        )
        .finally(() => {
          m.probeInFlight = false;
        });
    }
  }

  private onProbe(m: MemberRuntime, status: NodeStatus | null, error: string | null): void {
    const now = this.nowMs();
    // An answer that raced with the process's exit is not a sign of life.
    const mismatch = !m.running
      ? "process not running"
      : status
        ? statusMismatch(m.spec, this.pool.poolId, status)
        : null;
    const step =
      status && !mismatch
        ? probeSucceeded(m.spec.id, m.health, status, now)
        : probeFailed(m.spec.id, m.health, mismatch ?? error ?? "no answer", now, this.opts.health);
    this.applyHealth(m, step);
  }

  private applyHealth(m: MemberRuntime, step: HealthStep): void {
    m.health = step.state;
    for (const event of step.events) {
      if (event.type === "member-up") this.log.info({ nodeId: event.memberId }, "member up");
      else this.log.warn({ nodeId: event.memberId, reason: event.reason }, "member down");
    }
    this.logPoolChanges();
  }

  private logPoolChanges(): void {
    const s = this.status();
    const last = this.lastLogged;
    if (s.state !== last.state || s.primary !== last.primary || s.term !== last.term) {
      this.log.info({ state: s.state, primary: s.primary, term: s.term }, "pool status changed");
      this.lastLogged = { state: s.state, primary: s.primary, term: s.term };
    }
  }

  status(): PoolStatus {
    return aggregatePoolStatus({
      poolId: this.pool.poolId,
      memberCount: POOL_SIZE,
      members: [...this.members.values()].map((m) => ({
        spec: m.spec,
        health: m.health,
        pid: m.process?.pid ?? 0,
      })),
      fabricDir: this.fabricDir,
      runDir: this.paths.runDir,
      observedMs: this.nowMs(),
    });
  }

  // ---------------------------------------------------------------- control API

  private member(nodeId: string): MemberRuntime {
    return (
      this.members.get(nodeId) ??
      fail(
        "NotFound",
        `no member ${JSON.stringify(nodeId)} in pool ${this.pool.poolId} (members: ${[...this.members.keys()].join(", ")})`,
        {
          nodeId,
        },
      )
    );
  }

  private resolveTarget(target: string): MemberRuntime {
    if (target === "primary") {
      const { primary } = this.status();
      if (primary === "")
        fail("ServiceUnavailable", "the pool has no primary right now; name a node id instead");
      return this.member(primary);
    }
    if (target === "secondary") {
      const secondary = this.status().members.find((m) => m.role === "secondary" && m.health === "up");
      if (!secondary) fail("NotFound", "no secondary is up right now; name a node id instead");
      return this.member(secondary.id);
    }
    return this.member(target);
  }

  private async kill(target: string, signalName: string): Promise<{ nodeId: string; pid: number }> {
    const signal = (signalName === "" ? "SIGKILL" : signalName) as NodeJS.Signals;
    if (!KILL_SIGNALS.has(signal)) {
      fail(
        "BadParameter",
        `signal must be one of ${[...KILL_SIGNALS].join(", ")}, got ${JSON.stringify(signalName)}`,
        {
          field: "signal",
        },
      );
    }
    const m = this.resolveTarget(target);
    if (!m.process || !m.running) fail("Conflict", `node ${m.spec.id} is not running`, { nodeId: m.spec.id });
    const pid = m.process.pid;
    signalProcess(pid, signal);
    this.log.warn({ nodeId: m.spec.id, nodePid: pid, signal, target }, "signal sent to node on request");
    return { nodeId: m.spec.id, pid };
  }

  private async restart(nodeId: string): Promise<void> {
    const m = this.member(nodeId);
    if (m.process && m.running) {
      fail("Conflict", `node ${nodeId} is still running (pid ${m.process.pid}); kill it first`, { nodeId });
    }
    this.launch(m);
    await this.writePids();
  }

  private async issueNodeCert(nodeId: string, csrDer: Uint8Array) {
    this.member(nodeId);
    const issued = await this.ca.issueNodeCert(nodeId, this.pool.poolId, csrDer);
    this.log.info({ nodeId }, "issued a data-plane server certificate");
    return issued;
  }

  private handlers() {
    return {
      issueNodeCert: (nodeId: string, csrDer: Uint8Array) => this.issueNodeCert(nodeId, csrDer),
      issueClientCert: (csrDer: Uint8Array) => this.ca.issueClientCert(csrDer),
      status: () => this.status(),
      kill: (target: string, signal: string) => this.kill(target, signal),
      restart: (nodeId: string) => this.restart(nodeId),
      shutdown: () => void this.shutdown(),
    };
  }

  // ---------------------------------------------------------------- shutdown

  /** SIGTERM every node, SIGKILL stragglers after a bounded wait, close the API, remove hfc.json. */
  shutdown(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  private async stop(): Promise<void> {
    this.log.info("shutting down");
    if (this.pollTimer) clearInterval(this.pollTimer);
    const running = [...this.members.values()].filter((m) => m.process && m.running);
    for (const m of running) {
      const pid = (m.process as LaunchedNode).pid;
      signalProcess(pid, "SIGTERM");
      signalProcess(pid, "SIGCONT"); // a stopped process would never see the SIGTERM
    }
    const exitedInTime = (m: MemberRuntime, ms: number) =>
      Promise.race([
        m.process?.exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), ms)),
      ]);
    await Promise.all(
      running.map(async (m) => {
        if (await exitedInTime(m, STOP_GRACE_MS)) return;
        this.log.warn({ nodeId: m.spec.id }, "node did not stop after SIGTERM; sending SIGKILL");
        signalProcess((m.process as LaunchedNode).pid, "SIGKILL");
        await exitedInTime(m, 2000);
      }),
    );
    for (const m of this.members.values()) m.statusClient.close();
    await this.writePids();
    await this.controlServer?.close();
    const claim = await readHfcInfo(this.paths.runDir).catch(() => undefined);
    if (claim?.pid === process.pid) await rm(this.paths.hfcJson, { force: true });
    this.log.info({ poolId: this.pool.poolId }, "HFC stopped");
    this.resolveDone();
  }
}
