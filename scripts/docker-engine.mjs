#!/usr/bin/env node
// The Docker engine for the container tier, the compose demo and `hsmpool up --launcher docker`.
//
//   node scripts/docker-engine.mjs start   engine up (install Debian's docker.io + docker-compose + tini when root and
//                                          apt-get exists, start dockerd in the background); exit 0 when it answers,
//                                          exit 3 with the reason on the last line when it cannot be had
//                                          (`start --no-install`: never install, only start what is there)
//   node scripts/docker-engine.mjs stop    stop the dockerd this script started (no one else's)
//   node scripts/docker-engine.mjs status  print whether an engine answers
//
// This machine has no systemd, so dockerd is started by hand with a pid file and a log. It is started without a
// bridge, iptables rules or IP forwarding: every container of this project uses host networking on loopback, so the
// engine never has to touch the host's firewall or forwarding settings. The marker file records the pid of a dockerd
// this script started, so `stop` (and the test tier's teardown) stop only that one.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

export const ENGINE_LOG = "/var/log/hsmpool-dockerd.log";
export const ENGINE_PID_FILE = "/var/run/hsmpool-dockerd.pid";
/** Present only while a dockerd started by this script runs; holds its pid. */
export const STARTED_MARKER = "/var/run/hsmpool-dockerd.started";
const ENGINE_START_TIMEOUT_MS = 30_000;
const ENGINE_STOP_TIMEOUT_MS = 20_000;

/** Debian's client (20.10, same version as the engine) when present; the newer /usr/local/bin one lacks buildx. */
export function dockerCli() {
  return existsSync("/usr/bin/docker") ? "/usr/bin/docker" : "docker";
}

function which(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).stdout.trim() || undefined;
}

/** Whether an engine answers `docker info` (within a few seconds). */
export function engineAnswers() {
  const r = spawnSync(dockerCli(), ["info", "--format", "{{.ServerVersion}}"], {
    encoding: "utf8",
    timeout: 10_000,
  });
  return r.status === 0 && r.stdout.trim() !== "";
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === "EPERM";
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function isRoot() {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** Installs Debian packages (root + apt-get only); returns a reason string on failure. */
export function aptInstall(packages, say = (line) => process.stderr.write(`${line}\n`)) {
  if (!isRoot()) return `${packages.join(", ")} not installed and this is not root (cannot apt-get install)`;
  if (!which("apt-get")) return `${packages.join(", ")} not installed and there is no apt-get`;
  say(`installing ${packages.join(", ")} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () =>
    spawnSync("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...packages], {
      stdio: ["ignore", "ignore", "pipe"],
      encoding: "utf8",
      env,
    });
  let r = install();
  if (r.status !== 0) {
    // A fresh machine has no package lists yet.
    spawnSync("apt-get", ["update", "-q"], { stdio: "ignore", env });
    r = install();
  }
  if (r.status !== 0)
    return `apt-get install ${packages.join(" ")} failed: ${r.stderr.trim().split("\n").at(-1) ?? ""}`;
  return undefined;
}

/**
 * Makes sure an engine answers. Returns `{ ok: true, started }` (started: this call launched dockerd) or
 * `{ ok: false, reason }`.
 */
export async function ensureEngine({
  install = true,
  say = (line) => process.stderr.write(`${line}\n`),
} = {}) {
  if (engineAnswers()) return { ok: true, started: false };
  const needed = ["dockerd", "docker-compose", "tini-static"].filter((c) => !which(c));
  if (needed.length > 0 || !existsSync("/usr/bin/docker")) {
    if (!install) {
      const missing = needed.join(", ") || "/usr/bin/docker";
      return {
        ok: false,
        reason: `not installed: ${missing} (\`npm run docker:build\` installs them as root)`,
      };
    }
    const why = aptInstall(["docker.io", "docker-compose", "tini"], say);
    if (why) return { ok: false, reason: why };
  }
  if (!isRoot())
    return { ok: false, reason: "no Docker engine answers and only root can start dockerd here" };
  const stale = readPid(STARTED_MARKER);
  if (stale !== undefined && isAlive(stale)) {
    // Ours, but not answering yet (still starting): wait below instead of starting a second one.
  } else {
    say("starting dockerd (no bridge, no iptables changes)");
    mkdirSync(dirname(ENGINE_LOG), { recursive: true });
    const log = openSync(ENGINE_LOG, "a");
    const child = spawn(
      "dockerd",
      [
        "--pidfile",
        ENGINE_PID_FILE,
        "--bridge=none",
        "--iptables=false",
        "--ip-forward=false",
        "--ip-masq=false",
      ],
      { detached: true, stdio: ["ignore", log, log] },
    );
    closeSync(log);
    child.unref();
    writeFileSync(STARTED_MARKER, `${child.pid}\n`);
  }
  const deadline = Date.now() + ENGINE_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (engineAnswers()) return { ok: true, started: true };
    const pid = readPid(STARTED_MARKER);
    if (pid === undefined || !isAlive(pid)) break;
    await sleep(250);
  }
  const tail = existsSync(ENGINE_LOG) ? readFileSync(ENGINE_LOG, "utf8").trimEnd().split("\n").at(-1) : "";
  await stopEngine({ say: () => {} });
  return { ok: false, reason: `dockerd did not come up within ${ENGINE_START_TIMEOUT_MS} ms: ${tail}` };
}

function readPid(path) {
  try {
    const pid = Number(readFileSync(path, "utf8").trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Stops the dockerd this script started (SIGTERM, then SIGKILL after a bounded wait); others are left alone. */
export async function stopEngine({ say = (line) => process.stderr.write(`${line}\n`) } = {}) {
  const pid = readPid(STARTED_MARKER);
  if (pid === undefined) {
    say("no dockerd started by hsmpool is running; nothing to stop");
    return false;
  }
  if (isAlive(pid)) {
    say(`stopping dockerd (pid ${pid})`);
    process.kill(pid, "SIGTERM");
    const deadline = Date.now() + ENGINE_STOP_TIMEOUT_MS;
    while (isAlive(pid) && Date.now() < deadline) await sleep(200);
    if (isAlive(pid)) process.kill(pid, "SIGKILL");
  }
  rmSync(STARTED_MARKER, { force: true });
  return true;
}

async function main() {
  const cmd = process.argv[2];
  if (cmd === "start") {
    const r = await ensureEngine({ install: !process.argv.includes("--no-install") });
    if (!r.ok) {
      console.log(`docker engine unavailable: ${r.reason}`);
      process.exit(3);
    }
    console.log(r.started ? "docker engine started (by hsmpool)" : "docker engine already running");
  } else if (cmd === "stop") {
    await stopEngine();
  } else if (cmd === "status") {
    const up = engineAnswers();
    console.log(up ? "docker engine answers" : "no docker engine answers");
    process.exit(up ? 0 : 1);
  } else {
    console.error("usage: node scripts/docker-engine.mjs start|stop|status");
    process.exit(2);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
