/**
 * TEST-ONLY fault hooks for the chaos harness (packages/chaos). They are enabled
 * only by a `chaos.json` next to the node's config.json, which only the harness
 * writes (a pool started by `hsmpool up` never has one), and only in a DEBUG-signed
 * enclave: a production bundle ignores the file and says so (main.ts), and a node
 * handed hooks whose launched enclave is not debug refuses to start (node.ts). The
 * node says so loudly in its log. The file is the test-control channel: the node re-reads it when it
 * changes (polled), so the harness can turn faults on and off while the node runs.
 *
 *   {
 *     "unsafeAckBeforeCommit": false,        // read at start: the deliberately broken mode
 *     "peerDial": { "n2": "127.0.0.1:4711" }, // read at start: dial peer n2 through this address (a link proxy)
 *     "faults": {
 *       "hsm":   { "errorRate": 0.2, "latencyMs": 50, "wedge": false },  // through the HSM device's fault hooks
 *       "disk":  { "mode": "none" | "slow-fsync" | "full" | "fail-writes", "delayMs": 200 },  // the Raft WAL
 *       "clock": { "offsetMs": 0 },           // added to every time the node reads
 *       "network": { "isolated": false }       // drop every Raft message to and from the peers (a partition)
 *     }
 *   }
 */
import { readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fail, HsmPoolError } from "@hsmpool/errors";
import type { FaultHooks } from "@hsmpool/hsm";
import type { Logger } from "pino";

export const CHAOS_FILE = "chaos.json";

/** Is there a chaos.json next to this config? */
export function hasChaosFile(configPath: string): boolean {
  try {
    statSync(join(dirname(configPath), CHAOS_FILE));
    return true;
  } catch {
    return false;
  }
}
const POLL_MS = 100;

export type DiskFaultMode = "none" | "slow-fsync" | "full" | "fail-writes";

export interface ChaosFaults {
  hsm: { errorRate: number; latencyMs: number; wedge: boolean };
  disk: { mode: DiskFaultMode; delayMs: number };
  clock: { offsetMs: number };
  network: { isolated: boolean };
}

export interface ChaosControl {
  unsafeAckBeforeCommit: boolean;
  peerDial: Record<string, string>;
  faults: ChaosFaults;
}

export const NO_CHAOS_FAULTS: ChaosFaults = {
  hsm: { errorRate: 0, latencyMs: 0, wedge: false },
  disk: { mode: "none", delayMs: 0 },
  clock: { offsetMs: 0 },
  network: { isolated: false },
};

const bad = (field: string, message: string): never =>
  fail("BadParameter", `${CHAOS_FILE} ${field}: ${message}`, { field });

const obj = (v: unknown, field: string): Record<string, unknown> => {
  if (v === undefined) return {};
  if (typeof v !== "object" || v === null || Array.isArray(v)) bad(field, "must be an object");
  return v as Record<string, unknown>;
};

function num(o: Record<string, unknown>, field: string, path: string, min: number, max: number): number {
  const v = o[field] ?? 0;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
    bad(`${path}.${field}`, `must be a number from ${min} to ${max}`);
  }
  return v as number;
}

/** Validates the file's JSON (BadParameter naming the field). */
export function parseChaosControl(input: unknown): ChaosControl {
  const o = obj(input, "(root)");
  const faults = obj(o.faults, "faults");
  const hsm = obj(faults.hsm, "faults.hsm");
  const disk = obj(faults.disk, "faults.disk");
  const clock = obj(faults.clock, "faults.clock");
  const network = obj(faults.network, "faults.network");
  const mode = disk.mode ?? "none";
  if (mode !== "none" && mode !== "slow-fsync" && mode !== "full" && mode !== "fail-writes") {
    bad("faults.disk.mode", 'must be "none", "slow-fsync", "full" or "fail-writes"');
  }
  const peerDial: Record<string, string> = {};
  for (const [id, address] of Object.entries(obj(o.peerDial, "peerDial"))) {
    if (typeof address !== "string" || !/^[A-Za-z0-9.-]+:\d{1,5}$/.test(address))
      bad(`peerDial.${id}`, "must be host:port");
    peerDial[id] = address as string;
  }
  const unsafe = o.unsafeAckBeforeCommit ?? false;
  if (typeof unsafe !== "boolean") bad("unsafeAckBeforeCommit", "must be true or false");
  const wedge = hsm.wedge ?? false;
  if (typeof wedge !== "boolean") bad("faults.hsm.wedge", "must be true or false");
  const isolated = network.isolated ?? false;
  if (typeof isolated !== "boolean") bad("faults.network.isolated", "must be true or false");
  return {
    unsafeAckBeforeCommit: unsafe as boolean,
    peerDial,
    faults: {
      hsm: {
        errorRate: num(hsm, "errorRate", "faults.hsm", 0, 1),
        latencyMs: num(hsm, "latencyMs", "faults.hsm", 0, 600_000),
        wedge: wedge as boolean,
      },
      disk: { mode: mode as DiskFaultMode, delayMs: num(disk, "delayMs", "faults.disk", 0, 600_000) },
      clock: { offsetMs: num(clock, "offsetMs", "faults.clock", -86_400_000 * 365, 86_400_000 * 365) },
      network: { isolated: isolated as boolean },
    },
  };
}

/** The live hooks of one node process. */
export class ChaosHooks {
  private faults: ChaosFaults = NO_CHAOS_FAULTS;
  private hsm: FaultHooks | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastStamp = "";

  private constructor(
    readonly path: string,
    readonly control: ChaosControl,
    private readonly logger: Logger,
    private readonly random: () => number,
  ) {
    this.faults = control.faults;
  }

  /** The hooks for the node whose config is at `configPath`, or null when there is no chaos file (always in production). */
  /** Only a debug-signed bundle may load these (main.ts checks; PoolNode re-checks after launch). */
  static load(configPath: string, logger: Logger, random: () => number): ChaosHooks | null {
    const path = join(dirname(configPath), CHAOS_FILE);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch {
      return null;
    }
    const control = parseChaosControl(JSON.parse(text));
    const hooks = new ChaosHooks(path, control, logger, random);
    hooks.lastStamp = stampOf(path);
    logger.warn(
      {
        path,
        unsafeAckBeforeCommit: control.unsafeAckBeforeCommit,
        peerDial: control.peerDial,
        faults: control.faults,
      },
      "TEST-ONLY chaos hooks enabled (a chaos harness run; never in a real pool)",
    );
    return hooks;
  }

  get unsafeAckBeforeCommit(): boolean {
    return this.control.unsafeAckBeforeCommit;
  }

  /** Where to dial `peerId` (a link proxy), else its own address. */
  dialAddress(peerId: string, address: string): string {
    return this.control.peerDial[peerId] ?? address;
  }

  /** Cut off from every peer (a partition on loopback without proxies): Raft messages in and out are dropped. */
  get isolated(): boolean {
    return this.faults.network.isolated;
  }

  /** Time as this node reads it (wall clock + injected skew). */
  now(): number {
    return Date.now() + this.faults.clock.offsetMs;
  }

  /** Starts applying HSM faults to `device` and watching the file for changes. */
  start(hsm: FaultHooks): void {
    this.hsm = hsm;
    this.applyHsm();
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.hsm?.clear();
  }

  private poll(): void {
    const stamp = stampOf(this.path);
    if (stamp === this.lastStamp) return;
    this.lastStamp = stamp;
    try {
      this.faults = parseChaosControl(JSON.parse(readFileSync(this.path, "utf8"))).faults;
    } catch (e) {
      // A half-written file is read again on the next change; keep the faults we have.
      this.logger.warn({ error: String(e) }, "chaos file unreadable; keeping the current faults");
      return;
    }
    this.applyHsm();
    this.logger.warn({ faults: this.faults }, "chaos faults changed");
  }

  private applyHsm(): void {
    const h = this.hsm;
    if (!h) return;
    h.setLatency(this.faults.hsm.latencyMs);
    if (this.faults.hsm.wedge) h.wedge();
    else h.release();
  }

  /** Before each HSM operation: with probability errorRate the device's next operation fails (DeviceFault). */
  beforeHsmOperation(): void {
    if (this.faults.hsm.errorRate > 0 && this.random() < this.faults.hsm.errorRate) this.hsm?.failNext(1);
  }

  /** Before each WAL write: a slow fsync waits, a full or failing disk throws (the node stops, as on real hardware). */
  async beforeDiskWrite(): Promise<void> {
    const d = this.faults.disk;
    switch (d.mode) {
      case "none":
        return;
      case "slow-fsync":
        await new Promise((r) => setTimeout(r, d.delayMs));
        return;
      case "full":
        throw new HsmPoolError(
          "DeviceFault",
          "ENOSPC: no space left on device (injected by the chaos harness)",
        );
      case "fail-writes":
        throw new HsmPoolError("DeviceFault", "EIO: write failed (injected by the chaos harness)");
    }
  }
}

function stampOf(path: string): string {
  try {
    const s = statSync(path);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  } catch {
    return "";
  }
}
