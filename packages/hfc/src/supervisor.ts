/**
 * The HFC's process supervisor: launches, adopts, fences and stops the members'
 * node processes, keeps their configs and pids.json current, and reports each
 * process's exit back to the healing loop. It decides nothing itself: the healing
 * controller's actions say what to launch, fence or stop.
 */
import { isHsmPoolError } from "@hsmpool/errors";
import type { HealingAction } from "@hsmpool/healing";
import { adoptedHealth, type HealthStep, processExited, STARTING } from "@hsmpool/healing";
import type { MemberSpec, NodeConfig } from "@hsmpool/wire";
import { PUBLIC_FILE_MODE, parseNodePids } from "@hsmpool/wire";
import {
  type ControllerContext,
  FENCE_WAIT_MS,
  isLive,
  type MemberShell,
  poolSpecOf,
  STOP_GRACE_MS,
  shellOf,
  specOf,
} from "./controller-context.js";
import { lastErrorOf, refusalOf } from "./exit-reason.js";
import type { LaunchRequest, NodeLauncher, NodeProcess } from "./launcher.js";
import { buildNodeConfig } from "./node-config.js";
import type { ProcessControl, RunDirFiles } from "./seams.js";
import { ensureTestHooksFile } from "./test-hooks.js";
import { misplacedJoiner } from "./variant-placement.js";

export class NodeSupervisor {
  private readonly launcher: NodeLauncher;
  private readonly processes: ProcessControl;
  private readonly files: RunDirFiles;
  private readonly debugBundles = new Map<string, Promise<boolean>>();

  constructor(
    private readonly ctx: ControllerContext,
    /** Where a process exit's health change goes (the health poller logs it and the pool status). */
    private readonly onHealth: (shell: MemberShell, step: HealthStep) => void,
  ) {
    this.launcher = ctx.seams.launcher;
    this.processes = ctx.seams.processes;
    this.files = ctx.seams.files;
  }

  /**
   * Picks up the nodes of this run dir. Processes a previous HFC left running (it
   * crashed) are adopted, not restarted: the pool kept serving and should not
   * notice. A live member whose process is gone after such a crash died
   * unsupervised: the healing controller restarts it. After a clean stop (or for a
   * new pool) the members are simply launched. A fenced member's process never
   * survives this.
   */
  async takeOverNodes(): Promise<void> {
    const { ctx } = this;
    const { processes } = this;
    const previous = parseNodePids(await this.files.readJson(ctx.paths.pidsJson).catch(() => undefined));
    // A node launched just before the previous HFC died may be missing from pids.json.
    const running = processes.findByConfig(ctx.healing.members.map((m) => ctx.paths.nodeConfig(m.id)));
    const crashed = Object.keys(previous).length > 0 || running.size > 0;
    const now = ctx.nowMs();
    for (const m of ctx.healing.members) {
      const recorded = previous[m.id];
      const pid =
        recorded !== undefined &&
        processes.isRunning(recorded) &&
        processes.isOurProcess(recorded, ctx.paths.nodeConfig(m.id))
          ? recorded
          : running.get(ctx.paths.nodeConfig(m.id));
      const alive = pid !== undefined;
      if (!isLive(m)) {
        if (alive) {
          ctx.log.warn(
            { nodeId: m.id, nodePid: pid, lifecycle: m.lifecycle },
            "stopping a node that must not run",
          );
          processes.signal(pid, "SIGKILL");
          await processes.waitForExit(pid, FENCE_WAIT_MS);
        }
        if (m.lifecycle === "fenced") ctx.enqueue({ type: "fenced", memberId: m.id, atMs: now });
        continue;
      }
      const shell = shellOf(ctx, m.id);
      if (m.peerAddress !== "") await this.refreshConfig(m);
      if (alive) {
        ctx.log.info({ nodeId: m.id, nodePid: pid }, "adopting a node the previous HFC launched");
        const addresses = m.peerAddress === "" ? await this.addressesFromConfig(m.id) : undefined;
        this.attach(shell, this.launcher.adopt(this.launchRequest(m.id), pid));
        ctx.enqueue({ type: "adopted", memberId: m.id, pid, atMs: now, ...addresses });
      } else if (crashed || m.lifecycle === "joining") {
        ctx.enqueue({
          type: "process-exited",
          memberId: m.id,
          pid: 0,
          exit: { code: null, signal: null },
          refusal: null,
          atMs: now,
        });
      } else {
        const launched = await this.launchProcess(m);
        ctx.enqueue({
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

  /**
   * A config written by an earlier HFC keeps everything but the HFC's address and the paths,
   * which are this deployment's (the run dir may have moved: host ↔ container); a missing one is built.
   */
  private async refreshConfig(m: MemberSpec): Promise<void> {
    const { ctx } = this;
    const path = ctx.paths.nodeConfig(m.id);
    const existing = await this.readConfig(m.id);
    const config: NodeConfig = existing
      ? {
          ...existing,
          hfcAddress: ctx.controlAddress || existing.hfcAddress,
          fabricDir: ctx.fabricDir,
          fabricCaCertPath: ctx.paths.caCert,
          stateDir: ctx.paths.nodeStateDir(m.id),
          bundleDir: m.bundleDir,
        }
      : this.nodeConfig(m);
    await this.files.mkdir(this.ctx.paths.nodeStateDir(m.id));
    await this.files.writeJson(path, config, PUBLIC_FILE_MODE);
    if (await this.honoursTestHooks(config.bundleDir))
      await ensureTestHooksFile(this.ctx.paths.nodeDir(m.id));
  }

  /** A debug-signed bundle (`hsmpool up --test-hooks`, chaos runs) honours the hooks file; production ones never do. */
  private honoursTestHooks(bundleDir: string): Promise<boolean> {
    let known = this.debugBundles.get(bundleDir);
    if (!known) {
      known = this.ctx.seams.isDebugBundle(bundleDir);
      this.debugBundles.set(bundleDir, known);
    }
    return known;
  }

  private async addressesFromConfig(
    id: string,
  ): Promise<{ peerAddress: string; dataAddress: string } | undefined> {
    const config = await this.readConfig(id);
    return config ? { peerAddress: config.peerListen, dataAddress: config.dataListen } : undefined;
  }

  private async readConfig(id: string): Promise<NodeConfig | undefined> {
    const text = await this.files.readText(this.ctx.paths.nodeConfig(id));
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as NodeConfig;
    } catch {
      return undefined;
    }
  }

  private nodeConfig(m: MemberSpec): NodeConfig {
    const { ctx } = this;
    return buildNodeConfig(poolSpecOf(ctx), m, {
      fabricDir: ctx.fabricDir,
      hfcAddress: ctx.controlAddress,
      fabricCaCertPath: ctx.paths.caCert,
      stateDir: ctx.paths.nodeStateDir(m.id),
      timing: ctx.opts.timing,
      joinTimeoutMs: ctx.healingConfig.joinTimeoutMs,
    });
  }

  private launchRequest(nodeId: string): LaunchRequest {
    return {
      nodeId,
      nodeMain: this.ctx.opts.nodeMain,
      configPath: this.ctx.paths.nodeConfig(nodeId),
      logPath: this.ctx.paths.nodeLog(nodeId),
    };
  }

  private async launchProcess(m: MemberSpec): Promise<NodeProcess> {
    const launched = await this.launcher.launch(this.launchRequest(m.id));
    this.ctx.log.info(
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
    this.ctx.metrics.launched(m.id);
    this.attach(shellOf(this.ctx, m.id), launched);
    return launched;
  }

  private attach(shell: MemberShell, proc: NodeProcess): void {
    shell.process = proc;
    shell.running = true;
    shell.health = proc.adopted ? adoptedHealth(this.ctx.nowMs()) : STARTING;
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
    const { ctx } = this;
    if (shell.process !== proc) return;
    shell.running = false;
    const level = ctx.stopping ? "info" : "warn";
    ctx.log[level](
      { nodeId: shell.id, nodePid: proc.pid, ...exit, adopted: proc.adopted },
      "node process exited",
    );
    const how = exit.signal
      ? `signal ${exit.signal}`
      : exit.code === null
        ? "exited"
        : `exit code ${exit.code}`;
    this.onHealth(shell, processExited(shell.id, shell.health, `process exited (${how})`, ctx.nowMs()));
    if (ctx.stopping) return;
    void this.writePids();
    const tail = (path: string) => this.files.logTail(path);
    const refusal = await refusalOf(ctx.paths.nodeLog(shell.id), { pid: proc.pid, ...exit }, tail);
    const lastError = await lastErrorOf(ctx.paths.nodeLog(shell.id), proc.pid, tail);
    if (refusal)
      ctx.log.warn({ nodeId: shell.id, refusal }, "node refused to run; it will not be relaunched");
    ctx.enqueue({
      type: "process-exited",
      memberId: shell.id,
      pid: proc.pid,
      exit,
      refusal,
      lastError,
      atMs: ctx.nowMs(),
    });
  }

  async writePids(): Promise<void> {
    const pids: Record<string, number> = {};
    for (const s of this.ctx.shells.values()) if (s.process && s.running) pids[s.id] = s.process.pid;
    await this.files.writeJson(this.ctx.paths.pidsJson, pids, PUBLIC_FILE_MODE);
  }

  /** Performs one of the healing controller's actions. */
  async perform(action: HealingAction): Promise<void> {
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
    const { ctx } = this;
    const m = specOf(ctx, memberId);
    if (!m) return;
    const now = ctx.nowMs();
    try {
      let spec = m;
      if (m.peerAddress === "") {
        if (ctx.variants.has("neverReplace")) {
          ctx.log.warn({ nodeId: m.id }, "UNSAFE variant neverReplace: the joiner is not launched");
          return;
        }
        spec = { ...m, ...(await ctx.seams.nodeAddresses(m.id)) };
        if (ctx.variants.has("replaceIntoUsedRack")) spec = misplacedJoiner(ctx, spec);
        await this.files.mkdir(ctx.paths.nodeStateDir(m.id));
        await this.files.writeJson(ctx.paths.nodeConfig(m.id), this.nodeConfig(spec), PUBLIC_FILE_MODE);
      } else {
        await this.refreshConfig(m);
      }
      // Shutdown began while the config was written: launch nothing the stop would miss.
      if (ctx.stopping) return;
      const launched = await this.launchProcess(spec);
      await this.writePids();
      ctx.enqueue({
        type: "launched",
        memberId: m.id,
        pid: launched.pid,
        peerAddress: spec.peerAddress,
        dataAddress: spec.dataAddress,
        atMs: now,
      });
    } catch (e) {
      const reason = isHsmPoolError(e) ? e.message : String(e);
      ctx.log.error({ nodeId: m.id, reason }, "could not launch node");
      ctx.enqueue({ type: "launch-failed", memberId: m.id, reason, atMs: now });
    }
  }

  /** SIGKILL whatever runs as this member (it must never act as a member again), then confirm. */
  private async performFence(memberId: string): Promise<void> {
    const shell = this.ctx.shells.get(memberId);
    const pid = shell?.process && shell.running ? shell.process.pid : undefined;
    if (pid !== undefined) {
      this.processes.signal(pid, "SIGKILL");
      const gone = await this.processes.waitForExit(pid, FENCE_WAIT_MS);
      this.ctx.log.warn({ nodeId: memberId, nodePid: pid, gone }, "member fenced (SIGKILL)");
    } else {
      this.ctx.log.warn({ nodeId: memberId }, "member fenced (its process was not running)");
    }
    await this.writePids();
    this.ctx.enqueue({ type: "fenced", memberId, atMs: this.ctx.nowMs() });
  }

  private async performStop(memberId: string, signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    const shell = this.ctx.shells.get(memberId);
    if (!shell?.process || !shell.running) return;
    const proc = shell.process;
    const { processes } = this;
    processes.signal(proc.pid, signal);
    processes.signal(proc.pid, "SIGCONT");
    this.ctx.log.info(
      { nodeId: memberId, nodePid: proc.pid, signal },
      "stopping node the pool no longer needs",
    );
    if (signal === "SIGTERM") {
      this.ctx.seams.clock.setTimeout(() => {
        if (shell.process === proc && shell.running) processes.signal(proc.pid, "SIGKILL");
      }, STOP_GRACE_MS);
    }
  }

  /** Shutdown: SIGTERM every running node, SIGKILL stragglers after a bounded wait. */
  async stopAll(): Promise<void> {
    const { ctx, processes } = this;
    const running = [...ctx.shells.values()].filter((s) => s.process && s.running);
    for (const s of running) {
      const pid = (s.process as NodeProcess).pid;
      processes.signal(pid, "SIGTERM");
      processes.signal(pid, "SIGCONT"); // a stopped process would never see the SIGTERM
    }
    const exitedInTime = (s: MemberShell, ms: number) =>
      Promise.race([
        s.process?.exited.then(() => true),
        new Promise<boolean>((r) => ctx.seams.clock.setTimeout(() => r(false), ms)),
      ]);
    await Promise.all(
      running.map(async (s) => {
        if (await exitedInTime(s, STOP_GRACE_MS)) return;
        ctx.log.warn({ nodeId: s.id }, "node did not stop after SIGTERM; sending SIGKILL");
        processes.signal((s.process as NodeProcess).pid, "SIGKILL");
        await exitedInTime(s, 2000);
      }),
    );
  }
}
