/**
 * A three-member etcd cluster on loopback, the baseline of the healing benchmark:
 * started from Debian's `etcd-server` package (installed on the spot when missing
 * and we are root), spoken to over etcd's JSON gateway (`/v3/kv/put`,
 * `/v3/maintenance/status`) with plain fetch, so no client library is needed.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { allocateLoopbackPorts } from "@hsmpool/wire";

export interface EtcdTiming {
  heartbeatMs: number;
  electionTimeoutMs: number;
}

interface Member {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  process: ChildProcess | undefined;
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

function which(binary: string): string | undefined {
  try {
    return execFileSync("which", [binary], { encoding: "utf8" }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The etcd binary, installing `etcd-server` with apt-get when it is missing and this
 * process runs as root; otherwise a reason to skip the baseline.
 */
export function findOrInstallEtcd(log: (line: string) => void): { binary: string } | { skip: string } {
  const found = which("etcd");
  if (found) return { binary: found };
  if (process.getuid?.() !== 0)
    return { skip: "etcd is not installed and this is not root (apt-get install etcd-server)" };
  log("etcd not found: installing Debian's etcd-server package");
  try {
    execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "etcd-server", "etcd-client"], {
      stdio: "ignore",
      timeout: 120_000,
    });
  } catch (e) {
    return { skip: `apt-get install etcd-server failed: ${(e as Error).message.split("\n")[0]}` };
  }
  const installed = which("etcd");
  return installed ? { binary: installed } : { skip: "etcd-server installed but no etcd binary on PATH" };
}

export function etcdVersion(binary: string): string {
  try {
    return /etcd Version: (\S+)/.exec(execFileSync(binary, ["--version"], { encoding: "utf8" }))?.[1] ?? "?";
  } catch {
    return "?";
  }
}

async function post(
  url: string,
  body: object,
  timeoutMs: number,
): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await fetch(url, {
      method: "POST",
      body: JSON.stringify(body),
      headers: { "content-type": "application/json" },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) return undefined;
    const json = (await res.json()) as Record<string, unknown>;
    return "error" in json ? undefined : json;
  } catch {
    return undefined;
  }
}

export class EtcdCluster {
  private constructor(
    private readonly binary: string,
    private readonly members: Member[],
    private readonly timing: EtcdTiming,
  ) {}

  static async start(binary: string, dir: string, timing: EtcdTiming): Promise<EtcdCluster> {
    const ports = await allocateLoopbackPorts(6);
    const members: Member[] = [0, 1, 2].map((i) => ({
      name: `e${i + 1}`,
      clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
      peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
      dataDir: join(dir, `e${i + 1}`),
      process: undefined,
    }));
    const cluster = new EtcdCluster(binary, members, timing);
    for (const m of members) cluster.launch(m);
    await cluster.waitFor(async () => (await cluster.leader()) !== undefined, 30_000, "an etcd leader");
    return cluster;
  }

  private launch(m: Member): void {
    mkdirSync(m.dataDir, { recursive: true });
    const initialCluster = this.members.map((x) => `${x.name}=${x.peerUrl}`).join(",");
    m.process = spawn(
      this.binary,
      [
        `--name=${m.name}`,
        `--data-dir=${m.dataDir}`,
        `--listen-client-urls=${m.clientUrl}`,
        `--advertise-client-urls=${m.clientUrl}`,
        `--listen-peer-urls=${m.peerUrl}`,
        `--initial-advertise-peer-urls=${m.peerUrl}`,
        `--initial-cluster=${initialCluster}`,
        "--initial-cluster-state=new",
        "--initial-cluster-token=hsmpool-bench",
        `--heartbeat-interval=${this.timing.heartbeatMs}`,
        `--election-timeout=${this.timing.electionTimeoutMs}`,
        // hsmpool's Raft runs pre-vote; so does this baseline.
        "--pre-vote=true",
        "--logger=zap",
        "--log-level=error",
      ],
      { stdio: "ignore" },
    );
  }

  private async waitFor(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await probe())) {
      if (Date.now() > deadline) throw new Error(`etcd: no ${what} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The index of the member that is leader, by its own word. */
  async leader(): Promise<number | undefined> {
    for (const [i, m] of this.members.entries()) {
      if (!m.process) continue;
      const s = await post(`${m.clientUrl}/v3/maintenance/status`, {}, 300);
      const header = s?.header as { member_id?: string } | undefined;
      if (s && header?.member_id !== undefined && s.leader === header.member_id) return i;
    }
    return undefined;
  }

  /** One put through `member`; true when acknowledged. */
  async put(member: number, key: string, timeoutMs: number): Promise<boolean> {
    const m = this.members[member];
    if (!m?.process) return false;
    return (
      (await post(`${m.clientUrl}/v3/kv/put`, { key: b64(key), value: b64("v") }, timeoutMs)) !== undefined
    );
  }

  live(): number[] {
    return this.members.flatMap((m, i) => (m.process ? [i] : []));
  }

  /** SIGKILL, and wait until the process is gone. */
  async kill(member: number): Promise<void> {
    const m = this.members[member];
    const proc = m?.process;
    if (!m || !proc) return;
    m.process = undefined;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGKILL");
    await exited;
  }

  /** Starts a killed member again from its data dir and waits until a put through it succeeds. */
  async restart(member: number): Promise<void> {
    const m = this.members[member];
    if (!m || m.process) return;
    this.launch(m);
    await this.waitFor(() => this.put(member, "rejoined", 500), 30_000, `${m.name} back in the cluster`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((_, i) => this.kill(i)));
  }
}
