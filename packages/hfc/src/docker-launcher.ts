/**
 * The Docker launcher (`--launcher docker`): each node runs in its own container of the node image
 * (`npm run docker:build`), on the host network so its addresses stay 127.0.0.1:<port>, with the run, fabric and
 * bundle directories mounted where its config says they are. A container that already exists for the member's
 * config (label `org.hsmpool.config`, as the compose node services in deploy/docker-compose.yml carry) is started
 * again; otherwise one is created, removed when it exits. The container's output is appended to node.log.
 *
 * The node is still a host process: its pid is the node process inside the container as the host sees it (the HFC
 * must share the host's pid namespace — on the host, or `pid: host` in compose), so signals, exit watching,
 * fencing, pids.json, adoption after an HFC crash and `hsmpool kill` (SIGSTOP = paused) work as with child
 * processes. The container's exit code is the node's (tini passes it on; 137 = killed).
 */
import { createWriteStream, readdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { fail, isHsmPoolError } from "@hsmpool/errors";
import { isRunning } from "@hsmpool/wire";
import Docker from "dockerode";
import { type BindMount, containerName, exitFromStatusCode, planBinds } from "./container-plan.js";
import {
  adoptNode,
  type LaunchRequest,
  type NodeExit,
  type NodeLauncher,
  type NodeProcess,
} from "./launcher.js";

export const DEFAULT_NODE_IMAGE = "hsmpool-node:latest";
/** The config path a node container runs: how the launcher finds a member's container. */
export const CONFIG_LABEL = "org.hsmpool.config";
export const MEMBER_LABEL = "org.hsmpool.member";
export const POOL_LABEL = "org.hsmpool.pool";
const PROJECT_LABEL = "com.docker.compose.project";
/** The image label of the HFC image: how an HFC in a container finds its own container. */
const HFC_ROLE_LABEL = "org.hsmpool.role=hfc";
/** A container still running from an earlier start is stopped first, so the node reads the config just written. */
const RESTART_STOP_TIMEOUT_S = 5;
/** How long an old container of the member may take to disappear before a new one is created. */
const REMOVE_TIMEOUT_MS = 10_000;
/** How long to wait for the container's init (tini) to have started the node process. */
const NODE_PID_TIMEOUT_MS = 5000;

interface HfcContainer {
  mounts: BindMount[];
  project: string | undefined;
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

function ancestorPids(): Set<number> {
  const out = new Set<number>([process.pid]);
  for (let pid = parentOf(process.pid); pid !== undefined && pid > 1 && out.size < 32; pid = parentOf(pid)) {
    out.add(pid);
  }
  return out;
}

/** The first child of `pid` (the node under the container's tini), or undefined while there is none. */
function childOf(pid: number): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (/^\d+$/.test(entry) && parentOf(Number(entry)) === pid) return Number(entry);
  }
  return undefined;
}

function readConfigPaths(configPath: string): { poolId: string; fabricDir: string; bundleDir: string } {
  const c = JSON.parse(readFileSync(configPath, "utf8")) as Record<string, unknown>;
  const text = (key: string): string =>
    typeof c[key] === "string" && c[key] !== ""
      ? (c[key] as string)
      : fail("BadParameter", `${configPath} has no ${key}`, { configPath });
  return { poolId: text("poolId"), fabricDir: text("fabricDir"), bundleDir: text("bundleDir") };
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export interface DockerLauncherOptions {
  /** Default `hsmpool-node:latest`. */
  image?: string;
  docker?: Docker;
}

export class DockerNodeLauncher implements NodeLauncher {
  readonly kind = "docker";
  private readonly docker: Docker;
  private readonly image: string;
  private self: Promise<HfcContainer | undefined> | undefined;

  constructor(opts: DockerLauncherOptions = {}) {
    this.docker = opts.docker ?? new Docker();
    this.image = opts.image ?? DEFAULT_NODE_IMAGE;
  }

  /** The HFC's own container when it runs in one (its init is one of our ancestors); undefined on the host. */
  private hfcContainer(): Promise<HfcContainer | undefined> {
    this.self ??= (async () => {
      const mine = ancestorPids();
      for (const info of await this.docker.listContainers({ filters: { label: [HFC_ROLE_LABEL] } })) {
        const c = await this.docker.getContainer(info.Id).inspect();
        if (!mine.has(c.State.Pid)) continue;
        return {
          mounts: c.Mounts.filter((m) => m.Type === "bind").map((m) => ({
            source: m.Source,
            destination: m.Destination,
            readWrite: m.RW,
          })),
          project: c.Config.Labels?.[PROJECT_LABEL],
        };
      }
      return undefined;
    })();
    return this.self;
  }

  /** The member's existing container; of the HFC's own compose project only (projects share config paths). */
  private async existing(configPath: string): Promise<Docker.ContainerInfo | undefined> {
    const project = (await this.hfcContainer())?.project;
    const labels = [`${CONFIG_LABEL}=${configPath}`, ...(project ? [`${PROJECT_LABEL}=${project}`] : [])];
    return (await this.docker.listContainers({ all: true, filters: { label: labels } }))[0];
  }

  private async create(req: LaunchRequest): Promise<Docker.Container> {
    const config = readConfigPaths(req.configPath);
    const runDir = dirname(dirname(dirname(req.configPath)));
    const binds = planBinds(
      [
        { path: runDir, readWrite: true },
        { path: config.fabricDir, readWrite: true },
        { path: config.bundleDir, readWrite: false },
      ],
      (await this.hfcContainer())?.mounts,
    );
    try {
      return await this.docker.createContainer({
        name: containerName(config.poolId, req.nodeId),
        Image: this.image,
        Cmd: ["--config", req.configPath],
        Labels: { [CONFIG_LABEL]: req.configPath, [MEMBER_LABEL]: req.nodeId, [POOL_LABEL]: config.poolId },
        HostConfig: { NetworkMode: "host", Binds: binds, AutoRemove: true },
      });
    } catch (e) {
      const hint = /no such image/i.test(messageOf(e)) ? " (build it with `npm run docker:build`)" : "";
      return fail(
        "LaunchRefused",
        `could not create a container for node ${req.nodeId}: ${messageOf(e)}${hint}`,
        {
          nodeId: req.nodeId,
        },
      );
    }
  }

  /** Removes a container (forcibly: it runs no member any more) and waits until Docker has forgotten it. */
  private async removeGone(id: string): Promise<void> {
    const container = this.docker.getContainer(id);
    await container.remove({ force: true }).catch(() => undefined);
    const deadline = Date.now() + REMOVE_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (
        !(await container.inspect().then(
          () => true,
          () => false,
        ))
      )
        return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The host pid of the node process: the child of the container's init (tini), once it has started it. */
  private async nodePid(initPid: number): Promise<number> {
    const deadline = Date.now() + NODE_PID_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (!isRunning(initPid)) break;
      const child = childOf(initPid);
      if (child !== undefined) return child;
      await new Promise((r) => setTimeout(r, 20));
    }
    return initPid;
  }

  async launch(req: LaunchRequest): Promise<NodeProcess> {
    let container: Docker.Container;
    let output: NodeJS.ReadWriteStream;
    let exit: Promise<{ StatusCode?: number }>;
    try {
      let found = await this.existing(req.configPath);
      if (found?.Labels[POOL_LABEL] !== undefined) {
        // One this launcher made for an earlier run of the member: it removes itself on exit (maybe not yet done).
        await this.removeGone(found.Id);
        found = undefined;
      }
      container = found ? this.docker.getContainer(found.Id) : await this.create(req);
      if (found?.State === "paused") await container.unpause();
      if (found && found.State !== "exited" && found.State !== "created") {
        await container.stop({ t: RESTART_STOP_TIMEOUT_S }).catch(() => undefined);
      }
      output = await container.attach({ stream: true, stdout: true, stderr: true });
      await container.start();
      // After start: "not-running" answers at once for a node that already exited, so no exit is ever missed.
      exit = container.wait({ condition: "not-running" });
    } catch (e) {
      if (isHsmPoolError(e)) throw e;
      return fail("LaunchRefused", `could not start the container of node ${req.nodeId}: ${messageOf(e)}`, {
        nodeId: req.nodeId,
      });
    }
    this.copyOutput(output, req.logPath);
    const initPid = (await container.inspect()).State.Pid;
    const pid = await this.nodePid(initPid);
    const exited = exit.then(
      (r): NodeExit => exitFromStatusCode(r.StatusCode),
      (): NodeExit => ({ code: null, signal: null }),
    );
    return { nodeId: req.nodeId, pid, exited, adopted: false };
  }

  /**
   * Appends a container's (multiplexed) output to node.log until the container's stream ends. Neither stream may
   * take the HFC down: an error ends the copy, nothing more.
   */
  private copyOutput(output: NodeJS.ReadWriteStream, logPath: string): void {
    const log = createWriteStream(logPath, { flags: "a", mode: 0o644 });
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      log.end();
    };
    log.on("error", () => undefined);
    output.on("error", end);
    output.once("end", end);
    output.once("close", end);
    this.docker.modem.demuxStream(output, log, log);
  }

  /** Polls the pid like any adopted node, and appends the container's further output to node.log again. */
  adopt(req: LaunchRequest, pid: number): NodeProcess {
    const proc = adoptNode(req.nodeId, pid);
    void (async () => {
      const found = await this.existing(req.configPath);
      if (!found) return;
      const output = await this.docker
        .getContainer(found.Id)
        .attach({ stream: true, stdout: true, stderr: true });
      this.copyOutput(output, req.logPath);
    })().catch(() => undefined);
    return proc;
  }
}
