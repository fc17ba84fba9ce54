/**
 * The HFC process shell: opens the fabric and the fabric CA, places and launches
 * the pool's nodes, serves the control API, polls member health, feeds what it sees
 * to the pure healing controller and performs the actions it returns (launch,
 * fence, stop), and stops everything on Shutdown. Decisions live in pure modules
 * (placement, health, status, node-config, healing/); this class performs effects.
 *
 * Every observation becomes a HealingInput on one queue, processed one at a time:
 * step the controller, persist its state (so a fence or a joiner is on disk before
 * anything acts on it), then perform the actions. Follow-up observations (a process
 * launched, a fence confirmed) go back on the queue.
 */
import { randomBytes, randomInt } from "node:crypto";
import { mkdir, readFile, rm } from "node:fs/promises";
import { resolve } from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { fail, isHsmPoolError } from "@hsmpool/errors";
import { openFabric } from "@hsmpool/platform";
import type { Logger } from "pino";
import { writeJsonAtomic } from "./atomic-fs.js";
import { readBundleFacts } from "./bundle-facts.js";
import { type ControlServer, startControlServer } from "./control-server.js";
import { certDerToPem, createCsrKeyPair } from "./csr.js";
import { refusalOf } from "./exit-reason.js";
import { fromServiceError } from "./grpc-errors.js";
import { defaultHealingConfig, healingStep, initialHealingState } from "./healing/controller.js";
import type {
  HealingAction,
  HealingConfig,
  HealingInput,
  HealingState,
  NodeObservation,
} from "./healing/model.js";
import { restoreHealingState } from "./healing/persisted.js";
import { checkUpgrade } from "./healing/upgrade-check.js";
import { HealingStore, readFabricStateFile, readHealingFile } from "./healing-store.js";
import {
  type HealthConfig,
  type HealthStep,
  type MemberHealth,
  probeFailed,
  probeSucceeded,
  processExited,
  STARTING,
} from "./health.js";
import { type LaunchRequest, type NodeLauncher, type NodeProcess, processLauncher } from "./launcher.js";
import { buildNodeConfig, type RaftTiming } from "./node-config.js";
import { dataPlaneCredentials, NodeStatusClient } from "./node-status-client.js";
import { FabricCa } from "./pki.js";
import { type InventoryRack, placeMembers } from "./placement.js";
import { allocateLoopbackPorts } from "./ports.js";
import { findProcessesByConfig, isOurProcess, isRunning, signalProcess, waitForExit } from "./processes.js";
import { type RunPaths, readHfcInfo, readNodePids, readPoolSpec, runPaths } from "./run-dir.js";
import { aggregatePoolStatus, statusMismatch } from "./status.js";
import type { HfcInfo, MemberSpec, NodeConfig, NodeStatus, PoolSpec, PoolStatus } from "./types.js";

export const POOL_SIZE = 3;
const POOL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const KILL_SIGNALS = new Set<NodeJS.Signals>(["SIGKILL", "SIGTERM", "SIGSTOP", "SIGCONT"]);
/** How long nodes get to finish after SIGTERM before SIGKILL (the contract gives a node ~2 s to drain). */
const STOP_GRACE_MS = 5000;
/**
 * A member coming back (launched, not up yet, or healing) is probed this often
 * instead of every health interval, so the status shows it ready without delay.
 */
const RECOVERY_PROBE_MS = 50;
/** How long a fence waits for the killed process to be gone before it says so anyway. */
const FENCE_WAIT_MS = 5000;

export interface ControllerOptions {
  runDir: string;
  fabricDir: string;
  /** Only for a new pool; default `pool-<8 hex>`. */
  poolId?: string;
  /** The node entry script (`packages/node/dist/main.js`). */
  nodeMain: string;
  /** How nodes run: child processes (default) or one container each (DockerNodeLauncher). */
  launcher?: NodeLauncher;
  /** The signed enclave bundle the nodes launch (default: the node's dist dir). */
  bundleDir: string;
  health: HealthConfig;
  timing: RaftTiming;
  logger: Logger;
  /** Control API port on 127.0.0.1 (0: the port the last HFC of this run dir used, else any free port). */
  controlPort?: number;
  /** Healing timing overrides (join timeout, restart backoff). */
  healing?: Partial<Pick<HealingConfig, "joinTimeoutMs" | "restartBackoffBaseMs" | "restartBackoffMaxMs">>;
  nowMs?: () => number;
}

/** The shell's side of a member: its process, health and Status client. */
interface MemberShell {
  id: string;
  health: MemberHealth;
  process: NodeProcess | undefined;
  running: boolean;
  probeInFlight: boolean;
  statusClient: NodeStatusClient | undefined;
  statusAddress: string;
  /** When the next Status probe is due. */
  nextProbeMs: number;
  /** What was last fed to the healing controller about this member's Status. */
  fedObservation: string;
}

interface QueuedInput {
  input: HealingInput;
  done: () => void;
}

const isLive = (m: MemberSpec) => m.lifecycle === "active" || m.lifecycle === "joining";

export class FabricController {
  private readonly shells = new Map<string, MemberShell>();
  private readonly store: HealingStore;
  private readonly healingConfig: HealingConfig;
  private credentials!: grpc.ChannelCredentials;
  private controlServer: ControlServer | undefined;
  private controlPort = 0;
  private pollTimer: NodeJS.Timeout | undefined;
  private nextTickMs = 0;
  private lastLogged = { state: "", primary: "", term: 0 };
  private readonly inbox: QueuedInput[] = [];
  private readonly launcher: NodeLauncher;
  private draining = false;
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
    private readonly pool: Omit<PoolSpec, "members">,
    private healing: HealingState,
    inventory: InventoryRack[],
    private readonly preferredControlPort: number,
    private readonly ca: FabricCa,
    private readonly log: Logger,
    private readonly nowMs: () => number,
  ) {
    this.store = new HealingStore(paths);
    this.launcher = opts.launcher ?? processLauncher;
    this.healingConfig = defaultHealingConfig({
      poolSize: POOL_SIZE,
      inventory,
      placementSeed: pool.placementSeed,
      ...opts.healing,
    });
  }

  static async start(opts: ControllerOptions): Promise<FabricController> {
    const paths = runPaths(opts.runDir);
    const log = opts.logger;
    const nowMs = opts.nowMs ?? Date.now;
    await mkdir(paths.runDir, { recursive: true, mode: 0o700 });
    const claim = await readHfcInfo(paths.runDir);
    if (claim && claim.pid !== process.pid && isRunning(claim.pid)) {
      fail("Conflict", `an HFC (pid ${claim.pid}) already runs pool ${claim.poolId} in ${paths.runDir}`, {
        pid: claim.pid,
      });
    }
    const fabric = await openFabric(opts.fabricDir);
    const ca = await FabricCa.openOrCreate(paths.pkiDir);
    const pool = await FabricController.loadOrPlacePool(opts, paths, fabric.info.racks, nowMs, log);
    for (const m of pool.members) fabric.server(m.serverId); // a pool.json naming unknown servers fails here
    const healingFile = await readHealingFile(paths);
    const healing = healingFile
      ? restoreHealingState(pool.members, healingFile, await readFabricStateFile(paths))
      : initialHealingState(pool.members);
    const { members: _, ...poolParams } = pool;
    const preferredPort = opts.controlPort || healingFile?.controlPort || claimPort(claim);
    const controller = new FabricController(
      opts,
      paths,
      fabric.dir,
      poolParams,
      healing,
      fabric.info.racks,
      preferredPort,
      ca,
      log,
      nowMs,
    );
    await controller.boot();
    return controller;
  }

  private static async loadOrPlacePool(
    opts: ControllerOptions,
    paths: RunPaths,
    racks: InventoryRack[],
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
    const bundle = await readBundleFacts(opts.bundleDir).catch(() => undefined);
    const members: MemberSpec[] = placed.map((p, i) => ({
      id: `n${i + 1}`,
      serverId: p.serverId,
      rackId: p.rackId,
      partition: 0,
      peerAddress: `127.0.0.1:${ports[2 * i]}`,
      dataAddress: `127.0.0.1:${ports[2 * i + 1]}`,
      bundleDir: resolve(opts.bundleDir),
      lifecycle: "active",
      mode: "bootstrap",
      replaces: null,
      joinPeers: [],
      minPeerSvn: null,
      svn: bundle?.svn ?? 0,
      mrsigner: bundle?.mrsigner ?? "",
      replacedBy: null,
      wasVoter: true,
    }));
    const pool: PoolSpec = { poolId, placementSeed, members, createdMs: nowMs() };
    await writeJsonAtomic(paths.poolJson, pool);
    log.info(
      { poolId, placementSeed, members: members.map((m) => `${m.id}@${m.serverId}/${m.rackId}`) },
      "pool placed",
    );
    return pool;
  }

  // ---------------------------------------------------------------- boot

  private async boot(): Promise<void> {
    const identity = await createCsrKeyPair("hsmpool-hfc");
    const issued = await this.ca.issueClientCert(identity.csrDer);
    this.credentials = dataPlaneCredentials({
      caCertPem: this.ca.caCertPem,
      certPem: certDerToPem(issued.certDer),
      privateKeyPem: identity.privateKeyPem,
    });
    this.controlServer = await this.startControlApi();
    this.controlPort = Number(this.controlServer.address.split(":")[1]);
    await this.store.save(this.poolSpec(), this.healing, this.controlPort);
    await this.takeOverNodes();
    await this.writePids();
    const info: HfcInfo = {
      pid: process.pid,
      controlAddress: this.controlServer.address,
      poolId: this.pool.poolId,
      fabricDir: this.fabricDir,
      startedMs: this.nowMs(),
    };
    // hfc.json last: its presence tells the CLI the control API answers.
    await writeJsonAtomic(this.paths.hfcJson, info);
    this.log.info(
      { controlAddress: this.controlServer.address, poolId: this.pool.poolId, paused: this.healing.paused },
      "HFC ready",
    );
    this.pollTimer = setInterval(
      () => this.onTimer(),
      Math.min(RECOVERY_PROBE_MS, this.opts.health.healthIntervalMs),
    );
  }

  /** The port the previous HFC of this run dir used, so configured `hfcAddress`es stay right; else any. */
  private async startControlApi(): Promise<ControlServer> {
    const options = {
      onInternalError: (method: string, e: unknown) =>
        this.log.error(
          { method, err: e instanceof Error ? e.stack : String(e) },
          "control API internal error",
        ),
    };
    if (this.preferredControlPort > 0) {
      try {
        return await startControlServer(this.handlers(), { ...options, port: this.preferredControlPort });
      } catch (e) {
        if (this.opts.controlPort) throw e;
        this.log.warn({ port: this.preferredControlPort }, "last control port is taken; using another");
      }
    }
    return startControlServer(this.handlers(), { ...options, port: 0 });
  }

  /**
   * Picks up the nodes of this run dir. Processes a previous HFC left running (it
   * crashed) are adopted, not restarted: the pool kept serving and should not
   * notice. A live member whose process is gone after such a crash died
   * unsupervised: the healing controller restarts it. After a clean stop (or for a
   * new pool) the members are simply launched. A fenced member's process never
   * survives this.
   */
  private async takeOverNodes(): Promise<void> {
    const previous = await readNodePids(this.paths.runDir);
    // A node launched just before the previous HFC died may be missing from pids.json.
    const running = findProcessesByConfig(this.healing.members.map((m) => this.paths.nodeConfig(m.id)));
    const crashed = Object.keys(previous).length > 0 || running.size > 0;
    const now = this.nowMs();
    for (const m of this.healing.members) {
      const recorded = previous[m.id];
      const pid =
        recorded !== undefined && isRunning(recorded) && isOurProcess(recorded, this.paths.nodeConfig(m.id))
          ? recorded
          : running.get(this.paths.nodeConfig(m.id));
      const alive = pid !== undefined;
      if (!isLive(m)) {
        if (alive) {
          this.log.warn(
            { nodeId: m.id, nodePid: pid, lifecycle: m.lifecycle },
            "stopping a node that must not run",
          );
          signalProcess(pid, "SIGKILL");
          await waitForExit(pid, FENCE_WAIT_MS);
        }
        if (m.lifecycle === "fenced") this.enqueue({ type: "fenced", memberId: m.id, atMs: now });
        continue;
      }
      const shell = this.shell(m.id);
      if (m.peerAddress !== "") await this.refreshConfig(m);
      if (alive) {
        this.log.info({ nodeId: m.id, nodePid: pid }, "adopting a node the previous HFC launched");
        const addresses = m.peerAddress === "" ? await this.addressesFromConfig(m.id) : undefined;
        this.attach(shell, this.launcher.adopt(this.launchRequest(m.id), pid));
        this.enqueue({ type: "adopted", memberId: m.id, pid, atMs: now, ...addresses });
      } else if (crashed || m.lifecycle === "joining") {
        this.enqueue({
          type: "process-exited",
          memberId: m.id,
          pid: 0,
          exit: { code: null, signal: null },
          refusal: null,
          atMs: now,
        });
      } else {
        const launched = await this.launchProcess(m);
        this.enqueue({
          type: "launched",
          memberId: m.id,
          pid: launched.pid,
          peerAddress: m.peerAddress,
          dataAddress: m.dataAddress,
          atMs: now,
        });
      }
    }
  }

  /** A config written by an earlier HFC keeps everything but the HFC's address; a missing one is built. */
  private async refreshConfig(m: MemberSpec): Promise<void> {
    const path = this.paths.nodeConfig(m.id);
    const existing = await readFile(path, "utf8")
      .then((t) => JSON.parse(t) as NodeConfig)
      .catch(() => undefined);
    const config = existing
      ? { ...existing, hfcAddress: this.controlServer?.address ?? existing.hfcAddress }
      : this.nodeConfig(m);
    await mkdir(this.paths.nodeStateDir(m.id), { recursive: true, mode: 0o700 });
    await writeJsonAtomic(path, config);
  }

  private async addressesFromConfig(
    id: string,
  ): Promise<{ peerAddress: string; dataAddress: string } | undefined> {
    const config = await readFile(this.paths.nodeConfig(id), "utf8")
      .then((t) => JSON.parse(t) as NodeConfig)
      .catch(() => undefined);
    return config ? { peerAddress: config.peerListen, dataAddress: config.dataListen } : undefined;
  }

  private nodeConfig(m: MemberSpec): NodeConfig {
    return buildNodeConfig(this.poolSpec(), m, {
      fabricDir: this.fabricDir,
      hfcAddress: this.controlServer?.address ?? "",
      fabricCaCertPath: this.paths.caCert,
      stateDir: this.paths.nodeStateDir(m.id),
      timing: this.opts.timing,
      joinTimeoutMs: this.healingConfig.joinTimeoutMs,
    });
  }

  private poolSpec(): PoolSpec {
    return { ...this.pool, members: this.healing.members };
  }

  private spec(id: string): MemberSpec | undefined {
    return this.healing.members.find((m) => m.id === id);
  }

  private shell(id: string): MemberShell {
    let s = this.shells.get(id);
    if (!s) {
      s = {
        id,
        health: STARTING,
        process: undefined,
        running: false,
        probeInFlight: false,
        statusClient: undefined,
        statusAddress: "",
        nextProbeMs: 0,
        fedObservation: "",
      };
      this.shells.set(id, s);
    }
    return s;
  }

  // ---------------------------------------------------------------- processes

  private launchRequest(nodeId: string): LaunchRequest {
    return {
      nodeId,
      nodeMain: this.opts.nodeMain,
      configPath: this.paths.nodeConfig(nodeId),
      logPath: this.paths.nodeLog(nodeId),
    };
  }

  private async launchProcess(m: MemberSpec): Promise<NodeProcess> {
    const launched = await this.launcher.launch(this.launchRequest(m.id));
    this.log.info(
      {
        nodeId: m.id,
        nodePid: launched.pid,
        server: m.serverId,
        rack: m.rackId,
        mode: m.mode,
        launcher: this.launcher.kind,
      },
      "node launched",
    );
    this.attach(this.shell(m.id), launched);
    return launched;
  }

  private attach(shell: MemberShell, proc: NodeProcess): void {
    shell.process = proc;
    shell.running = true;
    shell.health = STARTING;
    shell.fedObservation = "";
    // A fresh channel: the old one may be backing off after the previous process died.
    shell.statusAddress = "";
    shell.nextProbeMs = 0;
    void proc.exited.then((exit) => this.onProcessExit(shell, proc, exit));
  }

  private async onProcessExit(
    shell: MemberShell,
    proc: NodeProcess,
    exit: { code: number | null; signal: string | null },
  ): Promise<void> {
    if (shell.process !== proc) return;
    shell.running = false;
    const level = this.stopping ? "info" : "warn";
    this.log[level](
      { nodeId: shell.id, nodePid: proc.pid, ...exit, adopted: proc.adopted },
      "node process exited",
    );
    const how = exit.signal
      ? `signal ${exit.signal}`
      : exit.code === null
        ? "exited"
        : `exit code ${exit.code}`;
    this.applyHealth(shell, processExited(shell.id, shell.health, `process exited (${how})`, this.nowMs()));
    if (this.stopping) return;
    void this.writePids();
    const refusal = await refusalOf(this.paths.nodeLog(shell.id), { pid: proc.pid, ...exit });
    if (refusal)
      this.log.warn({ nodeId: shell.id, refusal }, "node refused to run; it will not be relaunched");
    this.enqueue({
      type: "process-exited",
      memberId: shell.id,
      pid: proc.pid,
      exit,
      refusal,
      atMs: this.nowMs(),
    });
  }

  private async writePids(): Promise<void> {
    const pids: Record<string, number> = {};
    for (const s of this.shells.values()) if (s.process && s.running) pids[s.id] = s.process.pid;
    await writeJsonAtomic(this.paths.pidsJson, pids);
  }

  // ---------------------------------------------------------------- healing loop

  /** Queues an observation for the healing controller; resolves once it has been processed. */
  private enqueue(input: HealingInput): Promise<void> {
    return new Promise((done) => {
      this.inbox.push({ input, done });
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let item = this.inbox.shift(); item; item = this.inbox.shift()) {
        try {
          if (!this.stopping) await this.process(item.input);
        } catch (e) {
          this.log.error(
            { err: e instanceof Error ? e.stack : String(e), input: item.input.type },
            "healing step failed",
          );
        } finally {
          item.done();
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async process(input: HealingInput): Promise<void> {
    const before = this.healing;
    const { state, actions } = healingStep(this.healingConfig, before, input);
    this.logHealingChanges(before, state);
    // Persist first: a fence or a joiner is on disk before anything acts on it, and status never shows a state
    // that pool.json does not hold yet (a reader of the run dir after "ready" must find the member active).
    await this.store.save(this.poolSpec(), state, this.controlPort);
    this.healing = state;
    for (const action of actions) await this.perform(action);
    if (actions.length > 0 || before.members !== state.members) this.logPoolChanges();
  }

  private logHealingChanges(before: HealingState, after: HealingState): void {
    const old = new Map(before.healings.map((r) => [r.id, r.phases.length]));
    for (const r of after.healings) {
      const seen = old.get(r.id) ?? 0;
      for (const mark of r.phases.slice(seen)) {
        const level = mark.phase === "failed" ? "warn" : "info";
        this.log[level](
          {
            healing: r.id,
            kind: r.kind,
            nodeId: r.memberId,
            replacement: r.replacementId || undefined,
            phase: mark.phase,
            reason: r.reason || undefined,
          },
          "healing phase",
        );
      }
    }
  }

  private async perform(action: HealingAction): Promise<void> {
    switch (action.type) {
      case "launch":
        return this.performLaunch(action.memberId);
      case "fence":
        return this.performFence(action.memberId);
      case "stop":
        return this.performStop(action.memberId, action.signal);
    }
  }

  /** Restart in place (existing config) or first launch of a joiner (ports, join config). */
  private async performLaunch(memberId: string): Promise<void> {
    const m = this.spec(memberId);
    if (!m) return;
    const now = this.nowMs();
    try {
      let spec = m;
      if (m.peerAddress === "") {
        const [peerPort, dataPort] = await allocateLoopbackPorts(2);
        spec = { ...m, peerAddress: `127.0.0.1:${peerPort}`, dataAddress: `127.0.0.1:${dataPort}` };
        await mkdir(this.paths.nodeStateDir(m.id), { recursive: true, mode: 0o700 });
        await writeJsonAtomic(this.paths.nodeConfig(m.id), this.nodeConfig(spec));
      } else {
        await this.refreshConfig(m);
      }
      // Shutdown began while the config was written: launch nothing the stop would miss.
      if (this.stopping) return;
      const launched = await this.launchProcess(spec);
      await this.writePids();
      this.enqueue({
        type: "launched",
        memberId: m.id,
        pid: launched.pid,
        peerAddress: spec.peerAddress,
        dataAddress: spec.dataAddress,
        atMs: now,
      });
    } catch (e) {
      const reason = isHsmPoolError(e) ? e.message : String(e);
      this.log.error({ nodeId: m.id, reason }, "could not launch node");
      this.enqueue({ type: "launch-failed", memberId: m.id, reason, atMs: now });
    }
  }

  /** SIGKILL whatever runs as this member (it must never act as a member again), then confirm. */
  private async performFence(memberId: string): Promise<void> {
    const shell = this.shells.get(memberId);
    const pid = shell?.process && shell.running ? shell.process.pid : undefined;
    if (pid !== undefined) {
      signalProcess(pid, "SIGKILL");
      const gone = await waitForExit(pid, FENCE_WAIT_MS);
      this.log.warn({ nodeId: memberId, nodePid: pid, gone }, "member fenced (SIGKILL)");
    } else {
      this.log.warn({ nodeId: memberId }, "member fenced (its process was not running)");
    }
    await this.writePids();
    this.enqueue({ type: "fenced", memberId, atMs: this.nowMs() });
  }

  private async performStop(memberId: string, signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    const shell = this.shells.get(memberId);
    if (!shell?.process || !shell.running) return;
    const proc = shell.process;
    signalProcess(proc.pid, signal);
    signalProcess(proc.pid, "SIGCONT");
    this.log.info({ nodeId: memberId, nodePid: proc.pid, signal }, "stopping node the pool no longer needs");
    if (signal === "SIGTERM") {
      setTimeout(() => {
        if (shell.process === proc && shell.running) signalProcess(proc.pid, "SIGKILL");
      }, STOP_GRACE_MS).unref();
    }
  }

  // ---------------------------------------------------------------- health

  private onTimer(): void {
    const now = this.nowMs();
    this.pollAll(now);
    if (now < this.nextTickMs) return;
    this.nextTickMs = now + this.opts.health.healthIntervalMs;
    void this.enqueue({ type: "tick", atMs: now });
  }

  /** Whether the member is on its way back: launched but not up, joining, or in an open healing. */
  private recovering(m: MemberSpec, shell: MemberShell): boolean {
    if (!shell.running) return false;
    if (shell.health.health !== "up" || m.lifecycle === "joining") return true;
    return this.healing.healings.some(
      (h) => h.phase !== "ready" && h.phase !== "failed" && (h.memberId === m.id || h.replacementId === m.id),
    );
  }

  private pollAll(now: number): void {
    const intervalMs = this.opts.health.healthIntervalMs;
    const deadlineMs = Math.max(200, intervalMs);
    for (const m of this.healing.members) {
      if (!isLive(m) || m.dataAddress === "") continue;
      const shell = this.shell(m.id);
      if (shell.probeInFlight || now < shell.nextProbeMs) continue;
      shell.nextProbeMs =
        now + (this.recovering(m, shell) ? Math.min(RECOVERY_PROBE_MS, intervalMs) : intervalMs);
      if (shell.statusAddress !== m.dataAddress) {
        shell.statusClient?.close();
        shell.statusClient = new NodeStatusClient(m.dataAddress, this.credentials);
        shell.statusAddress = m.dataAddress;
      }
      const client = shell.statusClient as NodeStatusClient;
      shell.probeInFlight = true;
      client
        .status(deadlineMs)
        .then(
          (status) => this.onProbe(shell, status, null),
          (e: unknown) => this.onProbe(shell, null, fromServiceError(e, "Status").error.message),
        )
        .finally(() => {
          shell.probeInFlight = false;
        });
    }
  }

  private onProbe(shell: MemberShell, status: NodeStatus | null, error: string | null): void {
    const m = this.spec(shell.id);
    if (!m || this.stopping) return;
    const now = this.nowMs();
    // An answer that raced with the process's exit is not a sign of life.
    const mismatch = !shell.running
      ? "process not running"
      : status
        ? statusMismatch(m, this.pool.poolId, status)
        : null;
    const step =
      status && !mismatch
        ? probeSucceeded(m.id, shell.health, status, now)
        : probeFailed(m.id, shell.health, mismatch ?? error ?? "no answer", now, this.opts.health);
    this.applyHealth(shell, step);
    this.feedObservation(shell, now);
  }

  /** Tells the healing controller when what a member says about itself changes (not on every poll). */
  private feedObservation(shell: MemberShell, atMs: number): void {
    const last = shell.health.lastStatus;
    const observation: NodeObservation | null =
      shell.health.health === "up" && last ? observationOf(last) : null;
    const key = JSON.stringify(observation);
    if (key === shell.fedObservation) return;
    shell.fedObservation = key;
    void this.enqueue({ type: "node-status", memberId: shell.id, status: observation, atMs });
  }

  private applyHealth(shell: MemberShell, step: HealthStep): void {
    shell.health = step.state;
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
    const h = this.healing;
    return aggregatePoolStatus({
      poolId: this.pool.poolId,
      memberCount: POOL_SIZE,
      members: h.members.filter(isLive).map((spec) => {
        const shell = this.shell(spec.id);
        return { spec, health: shell.health, pid: shell.process?.pid ?? 0 };
      }),
      fabricDir: this.fabricDir,
      runDir: this.paths.runDir,
      observedMs: this.nowMs(),
      healing: {
        healing: h.healings,
        healingPaused: h.paused,
        lostServers: h.lostServers.map((s) => s.serverId),
        upgrade: h.upgrade
          ? {
              bundleDir: h.upgrade.bundleDir,
              svn: h.upgrade.svn,
              state: h.upgrade.state,
              reason: h.upgrade.reason,
              launched: h.upgrade.launched,
            }
          : { bundleDir: "", svn: 0, state: "", reason: "", launched: [] },
      },
    });
  }

  // ---------------------------------------------------------------- control API

  private member(nodeId: string): MemberSpec {
    const m = this.spec(nodeId);
    if (m && isLive(m)) return m;
    const live = this.healing.members.filter(isLive).map((x) => x.id);
    return fail(
      "NotFound",
      m
        ? `node ${nodeId} is no longer a member of pool ${this.pool.poolId} (it is ${m.lifecycle}); members: ${live.join(", ")}`
        : `no member ${JSON.stringify(nodeId)} in pool ${this.pool.poolId} (members: ${live.join(", ")})`,
      { nodeId },
    );
  }

  private resolveTarget(target: string): MemberSpec {
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
        { field: "signal" },
      );
    }
    const m = this.resolveTarget(target);
    const shell = this.shell(m.id);
    if (!shell.process || !shell.running) fail("Conflict", `node ${m.id} is not running`, { nodeId: m.id });
    const pid = shell.process.pid;
    signalProcess(pid, signal);
    this.log.warn({ nodeId: m.id, nodePid: pid, signal, target }, "signal sent to node on request");
    return { nodeId: m.id, pid };
  }

  private async restart(nodeId: string): Promise<void> {
    const m = this.member(nodeId);
    const shell = this.shell(m.id);
    if (m.lifecycle !== "active")
      fail("Conflict", `node ${nodeId} is still joining; the HFC relaunches it itself`);
    if (shell.process && shell.running) {
      fail("Conflict", `node ${nodeId} is still running (pid ${shell.process.pid}); kill it first`, {
        nodeId,
      });
    }
    await this.enqueue({ type: "restart-requested", memberId: m.id, atMs: this.nowMs() });
  }

  private async loseServer(serverId: string): Promise<{ serverId: string; fenced: string[] }> {
    const known = this.healingConfig.inventory.some((r) => r.servers.some((s) => s.id === serverId));
    if (!known) fail("NotFound", `the fabric has no server ${JSON.stringify(serverId)}`, { serverId });
    if (this.healing.lostServers.some((s) => s.serverId === serverId)) {
      fail("Conflict", `server ${serverId} is already marked lost`, { serverId });
    }
    const fenced = this.healing.members.filter((m) => isLive(m) && m.serverId === serverId).map((m) => m.id);
    this.log.warn({ serverId, fenced }, "server marked lost");
    await this.enqueue({ type: "server-lost", serverId, atMs: this.nowMs() });
    return { serverId, fenced };
  }

  private async upgrade(bundleDir: string, unchecked: boolean): Promise<{ svn: number; members: string[] }> {
    if (bundleDir === "") fail("BadParameter", "bundle_dir is required", { field: "bundle_dir" });
    const facts = await readBundleFacts(bundleDir);
    const refused = checkUpgrade(this.healing, facts, unchecked);
    if (refused) throw refused;
    const members = this.healing.members
      .filter((m) => m.lifecycle === "active" && m.bundleDir !== facts.bundleDir)
      .map((m) => m.id);
    if (members.length === 0) fail("Conflict", `every member already runs ${facts.bundleDir}`);
    this.log.info({ bundleDir: facts.bundleDir, svn: facts.svn, unchecked, members }, "upgrade requested");
    await this.enqueue({
      type: "upgrade-requested",
      bundleDir: facts.bundleDir,
      svn: facts.svn ?? 0,
      mrsigner: facts.mrsigner ?? "",
      atMs: this.nowMs(),
    });
    return { svn: facts.svn ?? 0, members };
  }

  private async setHealing(paused: boolean): Promise<void> {
    this.log.info({ paused }, paused ? "healing paused" : "healing resumed");
    await this.enqueue({ type: "set-paused", paused, atMs: this.nowMs() });
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
      loseServer: (serverId: string) => this.loseServer(serverId),
      upgrade: (bundleDir: string, unchecked: boolean) => this.upgrade(bundleDir, unchecked),
      setHealing: (paused: boolean) => this.setHealing(paused),
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
    const running = [...this.shells.values()].filter((s) => s.process && s.running);
    for (const s of running) {
      const pid = (s.process as NodeProcess).pid;
      signalProcess(pid, "SIGTERM");
      signalProcess(pid, "SIGCONT"); // a stopped process would never see the SIGTERM
    }
    const exitedInTime = (s: MemberShell, ms: number) =>
      Promise.race([
        s.process?.exited.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), ms)),
      ]);
    await Promise.all(
      running.map(async (s) => {
        if (await exitedInTime(s, STOP_GRACE_MS)) return;
        this.log.warn({ nodeId: s.id }, "node did not stop after SIGTERM; sending SIGKILL");
        signalProcess((s.process as NodeProcess).pid, "SIGKILL");
        await exitedInTime(s, 2000);
      }),
    );
    for (const s of this.shells.values()) s.statusClient?.close();
    await this.writePids();
    await this.controlServer?.close();
    const claim = await readHfcInfo(this.paths.runDir).catch(() => undefined);
    if (claim?.pid === process.pid) await rm(this.paths.hfcJson, { force: true });
    this.log.info({ poolId: this.pool.poolId }, "HFC stopped");
    this.resolveDone();
  }
}

function claimPort(claim: HfcInfo | undefined): number {
  return claim ? Number(claim.controlAddress.split(":")[1]) : 0;
}

function observationOf(s: NodeStatus): NodeObservation {
  return {
    role: s.role,
    membership: s.membership,
    ownership: s.ownership === "synced" ? "synced" : "pending",
    members: s.members.map((m) => ({ id: m.id, role: m.role })),
    svn: s.svn,
    mrsigner: s.mrsigner,
  };
}
