/**
 * The HFC's control API handlers (kill, restart, lose a server, partition, upgrade, pause
 * healing, issue certificates, status, shutdown): they check the request against
 * the pool, then hand it to the healing loop as an observation. The gRPC server
 * itself is control-server.ts.
 */
import { fail } from "@hsmpool/errors";
import { checkUpgrade } from "@hsmpool/healing";
import type { MemberSpec } from "@hsmpool/wire";
import { readBundleFacts } from "./bundle-facts.js";
import { type ControlServer, startControlServer } from "./control-server.js";
import { type ControllerContext, isLive, shellOf, specOf } from "./controller-context.js";
import { poolStatus } from "./health-poller.js";
import type { FabricCa } from "./pki.js";
import { isIsolated, setIsolated } from "./test-hooks.js";

const KILL_SIGNALS = new Set<NodeJS.Signals>(["SIGKILL", "SIGTERM", "SIGSTOP", "SIGCONT"]);

export class ControlApi {
  constructor(
    private readonly ctx: ControllerContext,
    /** The fabric CA's issuing side (the simulator's fabric issues no certificates). */
    private readonly ca: Pick<FabricCa, "issueNodeCert" | "issueClientCert">,
    private readonly shutdown: () => void,
  ) {}

  /** Listens on the port the previous HFC of this run dir used, so configured `hfcAddress`es stay right; else any. */
  async listen(preferredControlPort: number): Promise<ControlServer> {
    const options = {
      onInternalError: (method: string, e: unknown) =>
        this.ctx.log.error(
          { method, err: e instanceof Error ? e.stack : String(e) },
          "control API internal error",
        ),
    };
    if (preferredControlPort > 0) {
      try {
        return await startControlServer(this.handlers(), { ...options, port: preferredControlPort });
      } catch (e) {
        if (this.ctx.opts.controlPort) throw e;
        this.ctx.log.warn({ port: preferredControlPort }, "last control port is taken; using another");
      }
    }
    return startControlServer(this.handlers(), { ...options, port: 0 });
  }

  private member(nodeId: string): MemberSpec {
    const { ctx } = this;
    const m = specOf(ctx, nodeId);
    if (m && isLive(m)) return m;
    const live = ctx.healing.members.filter(isLive).map((x) => x.id);
    return fail(
      "NotFound",
      m
        ? `node ${nodeId} is no longer a member of pool ${ctx.pool.poolId} (it is ${m.lifecycle}); members: ${live.join(", ")}`
        : `no member ${JSON.stringify(nodeId)} in pool ${ctx.pool.poolId} (members: ${live.join(", ")})`,
      { nodeId },
    );
  }

  private resolveTarget(target: string): MemberSpec {
    if (target === "primary") {
      const { primary } = poolStatus(this.ctx);
      if (primary === "")
        fail("ServiceUnavailable", "the pool has no primary right now; name a node id instead");
      return this.member(primary);
    }
    if (target === "secondary") {
      const secondary = poolStatus(this.ctx).members.find((m) => m.role === "secondary" && m.health === "up");
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
    const shell = shellOf(this.ctx, m.id);
    if (!shell.process || !shell.running) fail("Conflict", `node ${m.id} is not running`, { nodeId: m.id });
    const pid = shell.process.pid;
    this.ctx.seams.processes.signal(pid, signal);
    this.ctx.log.warn({ nodeId: m.id, nodePid: pid, signal, target }, "signal sent to node on request");
    return { nodeId: m.id, pid };
  }

  private async restart(nodeId: string): Promise<void> {
    const m = this.member(nodeId);
    const shell = shellOf(this.ctx, m.id);
    if (m.lifecycle !== "active")
      fail("Conflict", `node ${nodeId} is still joining; the HFC relaunches it itself`);
    if (shell.process && shell.running) {
      fail("Conflict", `node ${nodeId} is still running (pid ${shell.process.pid}); kill it first`, {
        nodeId,
      });
    }
    await this.ctx.enqueue({ type: "restart-requested", memberId: m.id, atMs: this.ctx.nowMs() });
  }

  private async loseServer(serverId: string): Promise<{ serverId: string; fenced: string[] }> {
    const { ctx } = this;
    const known = ctx.healingConfig.inventory.some((r) => r.servers.some((s) => s.id === serverId));
    if (!known) fail("NotFound", `the fabric has no server ${JSON.stringify(serverId)}`, { serverId });
    if (ctx.healing.lostServers.some((s) => s.serverId === serverId)) {
      fail("Conflict", `server ${serverId} is already marked lost`, { serverId });
    }
    const fenced = ctx.healing.members.filter((m) => isLive(m) && m.serverId === serverId).map((m) => m.id);
    ctx.log.warn({ serverId, fenced }, "server marked lost");
    ctx.metrics.serverLost("requested");
    await ctx.enqueue({ type: "server-lost", serverId, atMs: ctx.nowMs() });
    return { serverId, fenced };
  }

  /** Cuts a member off from its peers through its TEST-ONLY hooks file (debug-signed pools only). */
  private async partition(target: string): Promise<{ nodeId: string; isolated: string[] }> {
    const m = this.resolveTarget(target);
    if (!(await readBundleFacts(m.bundleDir)).debug) {
      fail(
        "OperationNotAllowed",
        `${m.id} runs a production enclave, which ignores test hooks: a partition needs a pool started with \`hsmpool up --test-hooks\` (debug-signed nodes)`,
        { nodeId: m.id },
      );
    }
    if (!(await setIsolated(this.ctx.paths.nodeDir(m.id), true))) {
      fail("OperationNotAllowed", `${m.id} was launched without a test hooks file; restart it first`, {
        nodeId: m.id,
      });
    }
    this.ctx.log.warn({ nodeId: m.id, target }, "member partitioned from its peers on request (test hooks)");
    return { nodeId: m.id, isolated: await this.isolatedMembers() };
  }

  /** Reconnects every partitioned member. */
  private async healPartitions(): Promise<{ healed: string[] }> {
    const healed = await this.isolatedMembers();
    for (const id of healed) await setIsolated(this.ctx.paths.nodeDir(id), false);
    this.ctx.log.warn({ healed }, "partitions healed on request");
    return { healed };
  }

  private async isolatedMembers(): Promise<string[]> {
    const ids = this.ctx.healing.members.filter(isLive).map((m) => m.id);
    const cut = await Promise.all(ids.map((id) => isIsolated(this.ctx.paths.nodeDir(id))));
    return ids.filter((_, i) => cut[i]);
  }

  private async upgrade(bundleDir: string, unchecked: boolean): Promise<{ svn: number; members: string[] }> {
    const { ctx } = this;
    if (bundleDir === "") fail("BadParameter", "bundle_dir is required", { field: "bundle_dir" });
    const facts = await readBundleFacts(bundleDir);
    const refused = checkUpgrade(ctx.healing, facts, unchecked);
    if (refused) throw refused;
    const members = ctx.healing.members
      .filter((m) => m.lifecycle === "active" && m.bundleDir !== facts.bundleDir)
      .map((m) => m.id);
    if (members.length === 0) fail("Conflict", `every member already runs ${facts.bundleDir}`);
    ctx.log.info({ bundleDir: facts.bundleDir, svn: facts.svn, unchecked, members }, "upgrade requested");
    await ctx.enqueue({
      type: "upgrade-requested",
      bundleDir: facts.bundleDir,
      svn: facts.svn ?? 0,
      mrsigner: facts.mrsigner ?? "",
      atMs: ctx.nowMs(),
    });
    return { svn: facts.svn ?? 0, members };
  }

  private async setHealing(paused: boolean): Promise<void> {
    this.ctx.log.info({ paused }, paused ? "healing paused" : "healing resumed");
    await this.ctx.enqueue({ type: "set-paused", paused, atMs: this.ctx.nowMs() });
  }

  private async issueNodeCert(nodeId: string, csrDer: Uint8Array) {
    this.member(nodeId);
    const issued = await this.ca.issueNodeCert(nodeId, this.ctx.pool.poolId, csrDer);
    this.ctx.log.info({ nodeId }, "issued a data-plane server certificate");
    return issued;
  }

  /** The operations behind the gRPC methods (the simulator's operator calls them directly). */
  handlers() {
    return {
      issueNodeCert: (nodeId: string, csrDer: Uint8Array) => this.issueNodeCert(nodeId, csrDer),
      issueClientCert: (csrDer: Uint8Array) => this.ca.issueClientCert(csrDer),
      status: () => poolStatus(this.ctx),
      kill: (target: string, signal: string) => this.kill(target, signal),
      restart: (nodeId: string) => this.restart(nodeId),
      loseServer: (serverId: string) => this.loseServer(serverId),
      partition: (target: string) => this.partition(target),
      healPartitions: () => this.healPartitions(),
      upgrade: (bundleDir: string, unchecked: boolean) => this.upgrade(bundleDir, unchecked),
      setHealing: (paused: boolean) => this.setHealing(paused),
      shutdown: () => this.shutdown(),
    };
  }
}
