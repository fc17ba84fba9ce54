#!/usr/bin/env node
// A node launched into its own container, for an HFC that launches nodes as child processes:
// `node docker-node.mjs --config <run>/nodes/<id>/config.json` (the HFC's `--node-main`). It lives exactly as long
// as the member's container runs: it (re)starts the container, copies the container's output to its own
// stdout/stderr (the HFC appends those to node.log), exits with the container's exit code, and stops the container
// on SIGTERM/SIGINT. A killed container therefore looks to the HFC like a crashed node process, and the HFC's
// restart in place starts the same container again.
//
// Which container: one labelled org.hsmpool.config=<config path> (the compose node services carry that label), else
// a new one from $HSMPOOL_NODE_IMAGE (default hsmpool-node:latest), host network, removed when it exits. A new
// container mounts the run and fabric directories: when this HFC itself runs in a container (found as the
// org.hsmpool.role=hfc container whose init process is one of our ancestors), from the host directories mounted into
// the HFC's container; on the host, at the same paths. A path the HFC sees outside every mount is part of the image.
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import Docker from "dockerode";

const CONFIG_LABEL = "org.hsmpool.config";
const MEMBER_LABEL = "org.hsmpool.member";
const PROJECT_LABEL = "com.docker.compose.project";
const STOP_TIMEOUT_S = 5;

function usage(message) {
  process.stderr.write(
    `docker-node: ${message}\nusage: docker-node.mjs --config <run>/nodes/<id>/config.json\n`,
  );
  process.exit(2);
}

const at = process.argv.indexOf("--config");
const configPath = at > 0 ? process.argv[at + 1] : undefined;
if (!configPath) usage("--config is required");
let config;
try {
  config = JSON.parse(readFileSync(configPath, "utf8"));
} catch (e) {
  usage(`cannot read ${configPath}: ${e instanceof Error ? e.message : String(e)}`);
}
const docker = new Docker();

/** Our ancestors' pids (parent, grandparent, ...), read from /proc. */
function ancestors() {
  const out = [];
  for (let pid = process.ppid; pid > 1 && out.length < 16; ) {
    out.push(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      pid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    } catch {
      break;
    }
  }
  return out;
}

/** The HFC's own container (inspected), or undefined when the HFC runs on the host. */
async function hfcContainer() {
  const mine = new Set([process.pid, ...ancestors()]);
  for (const info of await docker.listContainers({ filters: { label: ["org.hsmpool.role=hfc"] } })) {
    const c = await docker.getContainer(info.Id).inspect();
    if (mine.has(c.State.Pid)) return c;
  }
  return undefined;
}

/** `Binds` for a new node container: the run, fabric and bundle directories as the HFC sees them. */
function bindsFor(hfc) {
  const runDir = dirname(dirname(dirname(configPath)));
  const needed = [
    { path: runDir, mode: "rw" },
    { path: config.fabricDir, mode: "rw" },
    { path: config.bundleDir, mode: "ro" },
  ];
  if (hfc === undefined) return needed.map((n) => `${n.path}:${n.path}:${n.mode}`);
  const binds = new Set();
  for (const n of needed) {
    const m = hfc.Mounts.find(
      (m) => m.Type === "bind" && (n.path === m.Destination || n.path.startsWith(`${m.Destination}/`)),
    );
    if (m) binds.add(`${m.Source}:${m.Destination}:${m.RW ? "rw" : "ro"}`);
  }
  return [...binds];
}

async function findOrCreate() {
  const hfc = await hfcContainer();
  // Two compose projects have the same in-container config paths: only a container of the HFC's own project counts.
  const project = hfc?.Config.Labels[PROJECT_LABEL];
  const labels = [`${CONFIG_LABEL}=${configPath}`, ...(project ? [`${PROJECT_LABEL}=${project}`] : [])];
  const found = await docker.listContainers({ all: true, filters: { label: labels } });
  if (found[0]) return { container: docker.getContainer(found[0].Id), running: found[0].State === "running" };
  const image = process.env.HSMPOOL_NODE_IMAGE ?? "hsmpool-node:latest";
  const container = await docker.createContainer({
    name: `hsmpool-${config.poolId}-${config.nodeId}`,
    Image: image,
    Cmd: ["--config", configPath],
    Labels: { [CONFIG_LABEL]: configPath, [MEMBER_LABEL]: config.nodeId, "org.hsmpool.pool": config.poolId },
    HostConfig: { NetworkMode: "host", Binds: bindsFor(hfc), AutoRemove: true },
  });
  return { container, running: false };
}

const { container, running } = await findOrCreate();
// A container that already runs was started before this launch (e.g. by compose, with an older config): restart it
// so the node reads the config the HFC has just written.
if (running) await container.stop({ t: STOP_TIMEOUT_S }).catch(() => undefined);
const output = await container.attach({ stream: true, stdout: true, stderr: true });
docker.modem.demuxStream(output, process.stdout, process.stderr);
const exited = container.wait({ condition: "next-exit" });
let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    container.stop({ t: STOP_TIMEOUT_S }).catch(() => undefined);
  });
}
await container.start();
const { StatusCode } = await exited;
output.destroy();
process.exit(typeof StatusCode === "number" ? StatusCode : 1);
