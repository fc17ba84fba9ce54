/**
 * The HFC's seams in the simulator (@hsmpool/hfc seams.ts), so the shipped supervision
 * and healing loop (Supervision: supervisor, health poller, healing loop, healing store)
 * runs in virtual time: its clock and every completion go through the HFC's own
 * SimProcess (an HFC crash drops them), the run dir is an in-memory file set that
 * outlives HFC processes, node processes are simulated PoolNodes on simulated servers
 * behind a pid table, and Status probes reach the node's own NodeControl.Status answer.
 */
import { HsmPoolError } from "@hsmpool/errors";
import type { HfcSeams, LaunchRequest, NodeExit, NodeProcess, RunDirFiles } from "@hsmpool/hfc";
import type { NodeStatus } from "@hsmpool/wire";
import { type ShellWorld, SimClock, type SimProcess } from "./process.js";

/** An atomic replace (write, fsync, rename) takes this long; the file changes when it completes. */
const FILE_WRITE_US = 300;
/** One way between the HFC and a node (Status probes, exit notices). */
const HOP_US = 200;

/** The HFC's run dir: files that outlive every HFC process. */
export class SimRunDir {
  private readonly files = new Map<string, string>();

  read(path: string): string | undefined {
    return this.files.get(path);
  }

  /** The run dir as one HFC process sees it: its writes complete as events delivered to it. */
  forProcess(world: ShellWorld, hfc: SimProcess): RunDirFiles {
    return {
      writeJson: (path, value) =>
        new Promise<void>((resolve) => {
          const text = JSON.stringify(value);
          world.at(world.nowUs() + FILE_WRITE_US, "io", hfc.memberId, () => {
            this.files.set(path, text);
            hfc.deliver(resolve);
          });
        }),
      readJson: async (path) => {
        const text = this.files.get(path);
        return text === undefined ? undefined : JSON.parse(text);
      },
      readText: async (path) => this.files.get(path),
      // The simulated nodes' logs go to the transcript, not into the run dir.
      logTail: async () => "",
      mkdir: async () => {},
    };
  }
}

/** A node process the HFC knows by pid. */
interface PidEntry {
  nodeId: string;
  proc: SimProcess;
  configPath: string;
}

/** What the HFC's process seams need from the simulated fabric. */
export interface SimNodeHost {
  /** Starts the node from the config the HFC wrote; its process, or throws LaunchRefused. */
  start(nodeId: string, configText: string | undefined): SimProcess;
  /** Delivers a signal to the node's process (SIGKILL and SIGTERM end it). */
  signal(nodeId: string, proc: SimProcess, signal: NodeJS.Signals): void;
  /** False once the node's server is lost: nothing about its process reaches the HFC any more. */
  reachable(nodeId: string): boolean;
  /** The node's data plane: null when nothing listens (connection refused). */
  dataPlane(nodeId: string): { proc: SimProcess; status(): NodeStatus | null } | null;
}

/** Node processes by pid: pids are unique over the run, as on a host. */
export class SimPidTable {
  private next = 1000;
  private readonly byPid = new Map<number, PidEntry>();

  add(nodeId: string, proc: SimProcess, configPath: string): number {
    const pid = this.next++;
    this.byPid.set(pid, { nodeId, proc, configPath });
    return pid;
  }

  get(pid: number): PidEntry | undefined {
    return this.byPid.get(pid);
  }

  entries(): IterableIterator<[number, PidEntry]> {
    return this.byPid.entries();
  }
}

/**
 * Member `n<k>`'s addresses in the run dir (pool.json holds loopback addresses only);
 * the simulated network routes by member id, so they only name the member.
 */
export function simNodeAddresses(memberId: string): { peerAddress: string; dataAddress: string } {
  const port = 20_000 + 2 * Number(memberId.slice(1));
  return { peerAddress: `127.0.0.1:${port}`, dataAddress: `127.0.0.1:${port + 1}` };
}

const nodeIdOf = (dataAddress: string) => `n${(Number(dataAddress.split(":")[1]) - 20_001) / 2}`;

/** The seams of one HFC process (`hfc`), bound to it: when it dies, nothing it waits for arrives. */
export function simHfcSeams(
  world: ShellWorld,
  hfc: SimProcess,
  runDir: SimRunDir,
  pids: SimPidTable,
  host: SimNodeHost,
): HfcSeams {
  const clock = new SimClock(world, hfc, 1);
  const later = (fn: () => void) =>
    world.at(world.nowUs() + HOP_US, "io", hfc.memberId, () => hfc.deliver(fn));
  /** A process on a lost server looks alive to the HFC forever: it can neither see nor end it. */
  const running = (e: PidEntry | undefined) => !!e && (e.proc.alive || !host.reachable(e.nodeId));
  const exitOf = (entry: PidEntry, adopted: boolean) =>
    new Promise<NodeExit>((resolve) =>
      entry.proc.onExit(() => {
        if (!host.reachable(entry.nodeId)) return;
        later(() => resolve(adopted ? { code: null, signal: null } : { code: null, signal: "SIGKILL" }));
      }),
    );
  const watch = (req: LaunchRequest, pid: number, adopted: boolean): NodeProcess => {
    const entry = pids.get(pid);
    const exited: Promise<NodeExit> = entry
      ? exitOf(entry, adopted)
      : Promise.resolve({ code: null, signal: null });
    return { nodeId: req.nodeId, pid, exited, adopted };
  };
  return {
    clock,
    files: runDir.forProcess(world, hfc),
    launcher: {
      kind: "sim",
      launch: async (req) => {
        const proc = host.start(req.nodeId, runDir.read(req.configPath));
        return watch(req, pids.add(req.nodeId, proc, req.configPath), false);
      },
      adopt: (req, pid) => watch(req, pid, true),
    },
    processes: {
      isRunning: (pid) => running(pids.get(pid)),
      isOurProcess: (pid, configPath) => {
        const e = pids.get(pid);
        return running(e) && e?.configPath === configPath;
      },
      findByConfig: (configPaths) => {
        const found = new Map<string, number>();
        for (const [pid, e] of pids.entries())
          if (configPaths.includes(e.configPath) && running(e)) found.set(e.configPath, pid);
        return found;
      },
      signal: (pid, signal) => {
        const e = pids.get(pid);
        if (e && host.reachable(e.nodeId)) host.signal(e.nodeId, e.proc, signal);
      },
      waitForExit: (pid, timeoutMs) => {
        const e = pids.get(pid);
        if (!running(e)) return Promise.resolve(true);
        return new Promise<boolean>((resolve) => {
          let done = false;
          const finish = (gone: boolean) => {
            if (done) return;
            done = true;
            resolve(gone);
          };
          if (e && host.reachable(e.nodeId)) e.proc.onExit(() => later(() => finish(true)));
          clock.setTimeout(() => finish(false), timeoutMs);
        });
      },
    },
    statusProbe: (address) => ({
      status: (deadlineMs) =>
        new Promise<NodeStatus>((resolve, reject) => {
          let done = false;
          const finish = (fn: () => void) => {
            if (done) return;
            done = true;
            fn();
          };
          const nodeId = nodeIdOf(address);
          clock.setTimeout(
            () => finish(() => reject(new HsmPoolError("ServiceUnavailable", "Status: deadline exceeded"))),
            deadlineMs,
          );
          const refused = () =>
            later(() =>
              finish(() => reject(new HsmPoolError("ServiceUnavailable", `${address}: connection refused`))),
            );
          world.at(world.nowUs() + HOP_US, "net", hfc.memberId, () => {
            if (!host.reachable(nodeId)) return; // a lost server answers nothing
            const plane = host.dataPlane(nodeId);
            if (!plane) return refused();
            plane.proc.deliver(() => {
              const status = plane.status();
              if (!status) return refused();
              later(() => finish(() => resolve(status)));
            });
          });
        }),
      close: () => {},
    }),
    nodeAddresses: async (memberId) => simNodeAddresses(memberId),
    isDebugBundle: async () => false,
  };
}
