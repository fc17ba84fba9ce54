import { type ErrorCode, isHsmPoolError } from "@hsmpool/errors";
import type { Prng } from "@hsmpool/faults";
import {
  CHECKPOINT_FILE,
  type KeyService,
  type NodeConfig,
  type NodeInternals,
  type NodeObserver,
  PoolNode,
  type Randomness,
  type ShellVariants,
} from "@hsmpool/node";
import {
  decodeOwnershipCheckpoint,
  type KeyStore,
  type OwnershipCheckpoint,
  type OwnershipState,
  type SingleKeyResult,
} from "@hsmpool/pool";
import type { NodeStatus } from "@hsmpool/wire";
import type { Logger } from "pino";
import { SimClock, SimProcess } from "./shell/process.js";
import { type NetWorld, type SimServer, simUnseal } from "./shell/server.js";
import type { SimDiskFiles } from "./shell/storage.js";
import type { SimPartition } from "./sim-hsm.js";
import type { ClientOp } from "./workload.js";

/**
 * One simulated pool member: a server (its disk and HSM partition outlive the
 * process) running the SHIPPED node — @hsmpool/node's PoolNode with its Raft driver,
 * WAL, ownership driver, key service, joiner and membership driver — through the
 * node's seams: virtual clock and timers, the server's simulated disk, the simulated
 * HSM device, the simulated network as its peer transport and data plane. A crash
 * drops the process (everything in memory, every pending answer); a restart boots a
 * new PoolNode from what the disk kept.
 */

/** What a member needs from the harness. */
export interface MemberHost {
  readonly world: NetWorld;
  readonly variants: ShellVariants;
  /** The node's log (into the transcript when there is one). */
  loggerFor(member: PoolMember): Logger;
  observerFor(member: PoolMember): NodeObserver;
  /** The node reported it cannot continue (or did not start): the process exits. */
  fatal(member: PoolMember, error: unknown): void;
  complete(op: ClientOp, result: SingleKeyResult): void;
  refuse(op: ClientOp, code: ErrorCode, message: string): void;
  unknown(op: ClientOp, why: string): void;
  log(make: () => string): void;
}

const EPOCH_MS = 1_700_000_000_000;
const SIGN_DATA = new TextEncoder().encode("hsmpool sim: data to sign");

export function simWallMs(nowUs: number): number {
  return EPOCH_MS + Math.floor(nowUs / 1000);
}

function simRandomness(prng: Prng): Randomness {
  const bytes = (n: number) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const w = prng.nextU32();
      for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (w >>> (8 * j)) & 0xff;
    }
    return out;
  };
  return {
    float: () => prng.float(),
    bytes,
    uuid: () => {
      const h = Buffer.from(bytes(16)).toString("hex");
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
    },
  };
}

export class PoolMember {
  incarnation = 0;
  private proc: SimProcess | null = null;
  private node: PoolNode | null = null;
  /** The key service of the running process's data plane (set through the world). */
  keys: KeyService | null = null;
  private readonly inflight = new Set<ClientOp>();

  constructor(
    readonly id: string,
    readonly server: SimServer,
    readonly disk: SimDiskFiles,
    private config: NodeConfig,
    private readonly host: MemberHost,
    private readonly prng: Prng,
  ) {}

  get state(): "up" | "paused" | "down" {
    return this.proc?.state ?? "down";
  }

  get running(): boolean {
    return this.proc?.alive ?? false;
  }

  /** The current process (null when down). */
  get process(): SimProcess | null {
    return this.running ? this.proc : null;
  }

  /** Inside the running node (null while down or booting). */
  view(): NodeInternals | null {
    return this.running ? (this.node?.inspect() ?? null) : null;
  }

  get ownership(): OwnershipState | null {
    return this.view()?.ownership ?? null;
  }

  get store(): KeyStore | null {
    return this.view()?.keyStore ?? null;
  }

  /** What NodeControl.Status answers now (the shipped node's own status); null while its data plane is not served. */
  statusAnswer(): NodeStatus | null {
    if (!this.keys || !this.node) return null;
    try {
      return this.node.status();
    } catch {
      return null;
    }
  }

  get partition(): SimPartition {
    return this.server.partition;
  }

  /** The ownership checkpoint on this member's disk (what a restart would resume from). */
  savedCheckpoint(): OwnershipCheckpoint | null {
    const sealed = this.disk.durable(`${this.config.stateDir}/${CHECKPOINT_FILE}`);
    if (!sealed) return null;
    const aad = new TextEncoder().encode(`hsmpool-ownership-checkpoint-v1|${this.id}`);
    return decodeOwnershipCheckpoint(simUnseal(sealed, aad));
  }

  /** Boots a new node process from what the disk holds. */
  start(config: NodeConfig = this.config): void {
    this.config = config;
    this.incarnation++;
    const proc = new SimProcess(this.id, this.incarnation);
    this.proc = proc;
    this.keys = null;
    const prng = this.prng.split(`process-${this.incarnation}`);
    const node = PoolNode.create(config, {
      logger: this.host.loggerFor(this),
      unactivatedKeyOps: true,
      onFatal: (e) => {
        if (this.proc === proc && proc.alive) this.host.fatal(this, e);
      },
      onJoinFailed: (f) => {
        if (this.proc === proc && proc.alive)
          this.host.fatal(this, new Error(`join refused: ${f.reason} ${f.error}`));
      },
      seams: {
        clock: new SimClock(this.host.world, proc, 0.99 + 0.02 * prng.float()),
        random: simRandomness(prng),
        storage: this.disk.forProcess(proc),
        platform: this.server.platformFor(proc),
      },
      variants: this.host.variants,
      observer: this.host.observerFor(this),
    });
    this.node = node;
    this.host.log(() => `${this.id} process starts (incarnation ${this.incarnation})`);
    node.boot().catch((e: unknown) => {
      if (this.proc === proc && proc.alive) this.host.fatal(this, e);
    });
  }

  /** The process dies: memory and pending answers are gone; the disk keeps what was synced (and maybe a torn tail). */
  crash(prng: Prng, corruptProbability: number): boolean {
    const proc = this.proc;
    if (!proc?.alive) return false;
    proc.kill();
    this.disk.crash(prng, corruptProbability);
    this.node = null;
    this.keys = null;
    if (this.host.world.endpoint(this.id)?.proc === proc) this.host.world.setEndpoint(this.id, null);
    for (const op of this.inflight) this.host.unknown(op, `${this.id} crashed`);
    this.inflight.clear();
    return true;
  }

  pause(): boolean {
    return this.proc?.pause() ?? false;
  }

  resume(): void {
    this.proc?.resume();
  }

  // ---- clients --------------------------------------------------------------------

  request(op: ClientOp): void {
    const proc = this.proc;
    if (!proc?.alive) {
      this.host.refuse(op, "ServiceUnavailable", `${this.id} is down (connection refused)`);
      return;
    }
    this.inflight.add(op);
    proc.deliver(() => {
      const keys = this.keys;
      if (!keys) {
        this.inflight.delete(op);
        this.host.refuse(op, "ServiceUnavailable", `${this.id} does not serve the data plane yet`);
        return;
      }
      const settle = (fn: () => void) => {
        if (this.proc !== proc || !proc.alive || !this.inflight.delete(op)) return;
        fn();
      };
      serve(keys, op).then(
        (result) => settle(() => this.host.complete(op, result)),
        (e: unknown) =>
          settle(() => {
            if (!isHsmPoolError(e)) return this.host.fatal(this, e);
            const write = op.kind === "create" || op.kind === "delete";
            // Timed out waiting for the apply, or stopped: the write may still commit.
            if (write && (e.code === "NoQuorum" || e.code === "ServiceUnavailable"))
              this.host.unknown(op, `${e.code}: ${e.message}`);
            else this.host.refuse(op, e.code, e.message);
          }),
      );
    });
  }
}

/** One client operation through the shipped KeyService. */
async function serve(keys: KeyService, op: ClientOp): Promise<SingleKeyResult> {
  const notFound = (e: unknown): SingleKeyResult => {
    if (isHsmPoolError(e, "KeyNotFound")) return "notFound";
    throw e;
  };
  switch (op.kind) {
    case "create": {
      const view = await keys.createKey({
        name: op.name,
        kty: "EC",
        crv: "P-256",
        ops: ["sign", "verify"],
        enabled: true,
        notBeforeMs: null,
        expiresMs: null,
        tags: {},
        ...(op.requestId ? { requestId: op.requestId } : {}),
      });
      return view.version;
    }
    case "delete":
      // Deletes are soft; the workload's client purges right after (no purge protection here), so its
      // names become creatable again, as its model's hard delete says. A purge lost to a fault leaves
      // the name deleted: creates on it are refused (Conflict), which changes nothing.
      return keys.deleteKey(op.name, op.requestId ?? undefined).then(async () => {
        await keys.purgeKey(op.name).catch(() => undefined);
        return "ok" as const;
      }, notFound);
    case "get":
      return keys.getKey({ name: op.name }).then((v) => v.version, notFound);
    case "sign":
      return keys.sign({ name: op.name }, "ES256", SIGN_DATA).then((r) => r.version, notFound);
  }
}
