/**
 * A simulated server behind the node's platform seam: its CPU (a launched enclave
 * that seals deterministically; no quotes — the simulated network needs none), its
 * HSM device (SimPartition, one call at a time, with latency and injected faults) and
 * its network endpoint (the peer transport and the data plane over the world's
 * simulated network). The server and its partition outlive the node process; each
 * process gets its own view bound to it (SimProcess), so a crash drops its answers.
 */

import { createHash } from "node:crypto";
import type { VerifiedPeer } from "@hsmpool/attested-tls";
import { fail, HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import type { KeyHandle, KeyRef } from "@hsmpool/hsm";
import type {
  DataPlane,
  DataPlaneOptions,
  HsmDevicePort,
  HsmPartition,
  HsmSession,
  JoinAttempt,
  JoinRequestWire,
  KeyService,
  LaunchedServer,
  NodePlatform,
  PeerConfig,
  PeerHandlers,
  PeerTransport,
  TransportOptions,
} from "@hsmpool/node";
import type { Enclave, EnclaveIdentity, SealOptions, UnsealOptions } from "@hsmpool/platform";
import { decodeMessage } from "@hsmpool/pool";
import type { Message } from "@hsmpool/raft";
import { cloneMessage } from "../../raft/format.js";
import type { SimPartition } from "../sim-hsm.js";
import type { ShellWorld, SimProcess } from "./process.js";

/** Every simulated enclave runs the same bundle. */
export const SIM_SVN = 1;
export const SIM_MRSIGNER = "sim-signer";
const SIM_MRENCLAVE = "sim-enclave";
const SEAL_MAGIC = [0x53, 0x53, 0x4c, 0x31]; // "SSL1"

// ---- CPU ------------------------------------------------------------------------------

function aadTag(aad: Uint8Array | undefined): Uint8Array {
  return new Uint8Array(
    createHash("sha256")
      .update(aad ?? new Uint8Array())
      .digest()
      .subarray(0, 8),
  );
}

/** Deterministic sealing: magic | AAD tag | plaintext (the simulation needs binding, not secrecy). */
export function simSeal(plaintext: Uint8Array, aad: Uint8Array | undefined): Uint8Array {
  const out = new Uint8Array(12 + plaintext.length);
  out.set(SEAL_MAGIC, 0);
  out.set(aadTag(aad), 4);
  out.set(plaintext, 12);
  return out;
}

export function simUnseal(blob: Uint8Array, aad: Uint8Array | undefined): Uint8Array {
  const tag = aadTag(aad);
  if (
    blob.length < 12 ||
    !SEAL_MAGIC.every((b, i) => blob[i] === b) ||
    !tag.every((b, i) => blob[4 + i] === b)
  )
    fail("IntegrityError", "sealed blob does not open here (wrong AAD, foreign or altered)");
  return new Uint8Array(blob.subarray(12));
}

class SimEnclave implements Enclave {
  constructor(readonly identity: EnclaveIdentity) {}
  getQuote(): Uint8Array {
    return fail("Internal", "the simulated enclave makes no quotes (its network is not attested)");
  }
  quotingIssuer(): never {
    return fail("Internal", "the simulated enclave makes no quotes (its network is not attested)");
  }
  seal(plaintext: Uint8Array, opts: SealOptions): Uint8Array {
    return simSeal(plaintext, opts.aad);
  }
  unseal(blob: Uint8Array, opts?: UnsealOptions): Uint8Array {
    return simUnseal(blob, opts?.aad);
  }
}

// ---- HSM device -----------------------------------------------------------------------

/** How the world models the device: per-call latency and transient faults. */
export interface HsmModel {
  latencyUs(call: string): number;
  /** An injected transient fault for this call, or null. */
  fault(call: string): string | null;
  /** A call completed on the device (for stats and the trace). */
  completed(member: string, call: string): void;
}

/** Calls that never see injected faults: a failing login or WAL seal would kill the process, not test it. */
const UNFAULTED = new Set(["login", "encrypt", "decrypt"]);

class SimHsmDevice implements HsmDevicePort {
  constructor(
    private readonly world: ShellWorld,
    private readonly proc: SimProcess,
    readonly p: SimPartition,
    private readonly model: HsmModel,
  ) {}

  /** Queue `fn` on the device; it runs at completion time (crash or not), the answer goes to the process. */
  call<T>(name: string, fn: () => T): Promise<T> {
    const p = this.p;
    const start = Math.max(this.world.nowUs(), p.busyUntilUs);
    p.busyUntilUs = start + this.model.latencyUs(name);
    return new Promise<T>((resolve, reject) => {
      this.world.at(p.busyUntilUs, "hsm", this.proc.memberId, () => {
        this.model.completed(this.proc.memberId, name);
        const fault = UNFAULTED.has(name) ? null : this.model.fault(name);
        let answer: () => void;
        const limit = Error.stackTraceLimit;
        // The device's refusals (KeyNotFound for most deleteKey calls on followers, injected faults) are
        // answers, as a real device's status codes are: they carry no simulator stack, whose capture
        // was ~3% of a run.
        Error.stackTraceLimit = 0;
        try {
          if (fault !== null) answer = () => reject(new HsmPoolError("DeviceFault", fault));
          else {
            try {
              const value = fn();
              answer = () => resolve(value);
            } catch (e) {
              answer = () => reject(e);
            }
          }
        } finally {
          Error.stackTraceLimit = limit;
        }
        this.proc.deliver(answer);
      });
    });
  }

  partition(index: number): HsmPartition {
    if (index !== 0) fail("BadParameter", `the simulated device has one partition; got ${index}`);
    const p = this.p;
    return {
      id: p.partitionId,
      zeroize: () => this.call("zeroize", () => p.zeroize()),
      initialize: () => this.call("initialize", () => p.initialize()),
      login: async (credential) => {
        const copy = new Uint8Array(credential);
        const epoch = await this.call("login", () => p.login(copy));
        return new SimSession(this, epoch);
      },
    };
  }

  async close(): Promise<void> {}
}

const idOf = (ref: KeyRef): string => (typeof ref === "string" ? ref : ref.id);

class SimSession implements HsmSession {
  private loggedIn = true;

  constructor(
    private readonly device: SimHsmDevice,
    private readonly epoch: number,
  ) {}

  get partitionId(): string {
    return this.device.p.partitionId;
  }

  logout(): void {
    this.loggedIn = false;
  }

  private run<T>(name: string, fn: (p: SimPartition) => T): Promise<T> {
    return this.device.call(name, () => {
      if (!this.loggedIn) fail("Unauthenticated", "the session is logged out");
      this.device.p.requireSession(this.epoch);
      return fn(this.device.p);
    });
  }

  generateKey: HsmSession["generateKey"] = (spec) => this.run("generateKey", (p) => p.generateKey(spec));
  getHandle: HsmSession["getHandle"] = (ref) => this.run("getHandle", (p) => p.getHandle(idOf(ref)));
  deleteKey: HsmSession["deleteKey"] = (ref) => this.run("deleteKey", (p) => p.deleteKey(idOf(ref)));
  getPublicJwk: HsmSession["getPublicJwk"] = (ref) =>
    this.run("getPublicJwk", (p) => p.getPublicJwk(idOf(ref)));
  sign: HsmSession["sign"] = (ref, _alg, data) => this.run("sign", (p) => p.sign(idOf(ref), data));
  verify: HsmSession["verify"] = (ref, _alg, data, signature) =>
    this.run("verify", (p) => p.verify(idOf(ref), data, signature));
  signDigest: HsmSession["signDigest"] = (ref, _alg, digest) =>
    this.run("sign", (p) => p.sign(idOf(ref), digest));
  verifyDigest: HsmSession["verifyDigest"] = (ref, _alg, digest, signature) =>
    this.run("verify", (p) => p.verify(idOf(ref), digest, signature));
  encrypt: HsmSession["encrypt"] = (ref, _alg, plaintext, options) =>
    this.run("encrypt", (p) => p.encrypt(idOf(ref), plaintext, options?.aad ?? new Uint8Array()));
  decrypt: HsmSession["decrypt"] = (ref, _alg, ciphertext, options) =>
    this.run("decrypt", (p) =>
      p.decrypt(
        idOf(ref),
        ciphertext,
        options?.iv ?? new Uint8Array(),
        options?.tag ?? new Uint8Array(),
        options?.aad ?? new Uint8Array(),
      ),
    );
  wrapKey: HsmSession["wrapKey"] = () =>
    this.run("wrapKey", () => fail("Internal", "wrapKey is not simulated"));
  unwrapKey: HsmSession["unwrapKey"] = () =>
    this.run("unwrapKey", () => fail("Internal", "unwrapKey is not simulated"));
  exportWrapped: HsmSession["exportWrapped"] = (ref, wrapping) =>
    this.run("exportWrapped", (p) => p.exportWrapped(idOf(ref), idOf(wrapping)));
  // The simulated workload never imports keys nor asks for random bytes: the simulated device refuses.
  importJwk: HsmSession["importJwk"] = () =>
    this.run("importJwk", () => fail("NotImplemented", "the simulated HSM does not import keys"));
  importByok: HsmSession["importByok"] = () =>
    this.run("importByok", () => fail("NotImplemented", "the simulated HSM does not import keys"));
  randomBytes: HsmSession["randomBytes"] = () =>
    this.run("randomBytes", () => fail("NotImplemented", "the simulated HSM has no random-number service"));
  importWrapped: HsmSession["importWrapped"] = (blob, wrapping) =>
    this.run("importWrapped", (p): KeyHandle => p.importWrapped(blob, idOf(wrapping)));
  /** The security domain's escrow import is not simulated (the simulator models no SD ceremony). */
  importSecretKey: HsmSession["importSecretKey"] = () =>
    this.run(
      "importSecretKey",
      (): KeyHandle => fail("NotImplemented", "the simulated HSM has no key import"),
    );
  getTransferPublicKey: HsmSession["getTransferPublicKey"] = () =>
    this.run("getTransferPublicKey", (p) => ({ jwk: p.transferPublicKey(), spki: new Uint8Array() }));
  exportForTransfer: HsmSession["exportForTransfer"] = (ref, target, targetId) =>
    this.run("exportForTransfer", (p) => p.exportForTransfer(idOf(ref), target as JsonWebKeyLike, targetId));
  importFromTransfer: HsmSession["importFromTransfer"] = (blob, source, sourceId) =>
    this.run("importFromTransfer", (p) => p.importFromTransfer(blob, source as JsonWebKeyLike, sourceId));
}

type JsonWebKeyLike = { x?: unknown; y?: unknown };

// ---- network --------------------------------------------------------------------------

/** A process serving peers: where the world delivers what arrives for a member. */
export interface Endpoint {
  readonly proc: SimProcess;
  readonly handlers: PeerHandlers;
  readonly identity: VerifiedPeer;
  /** Peers whose identity and data address this process has been told. */
  readonly known: Set<string>;
}

/** What the transport needs from the world's network. */
export interface NetWorld extends ShellWorld {
  /** Send over the simulated network; `arrive` runs at each arrival unless the link is cut by then. False: nothing left. */
  send(from: string, to: string, code: number, arrive: () => void): boolean;
  /** The link is up and the member at the far end runs. */
  connected(from: string, to: string): boolean;
  endpoint(id: string): Endpoint | null;
  setEndpoint(id: string, endpoint: Endpoint | null): void;
  /** The data plane of `id` started (keys) or stopped (null). */
  setKeyService(id: string, proc: SimProcess, keys: KeyService | null): void;
  raftCode(m: Message): number;
  /** A transcript line (built only when the transcript is on). */
  log(make: () => string): void;
}

export const RPC_CODES = { ownership: 101, ownershipReply: 102, join: 103, joinReply: 104 } as const;
const FINAL_JOIN_CODES = new Set(["Conflict", "Forbidden", "BadParameter", "NotFound", "AttestationFailed"]);

class SimTransport implements PeerTransport {
  private readonly links = new Map<string, string>();

  constructor(
    private readonly world: NetWorld,
    private readonly proc: SimProcess,
    private readonly self: string,
    private readonly identity: VerifiedPeer,
    private readonly opts: TransportOptions,
  ) {}

  setPeer(peerId: string, address: string): void {
    if (peerId !== this.self) this.links.set(peerId, address);
  }
  removePeer(peerId: string): void {
    this.links.delete(peerId);
  }
  isConnected(peerId: string): boolean {
    return this.links.has(peerId) && this.world.connected(this.self, peerId);
  }
  addressOf(peerId: string): string | undefined {
    return this.links.get(peerId);
  }
  peers(): string[] {
    return [...this.links.keys()];
  }
  heardFrom(): void {}

  send(messages: readonly Message[]): void {
    for (const m of messages) {
      const snap = m.type === "MsgSnap";
      const report = (ok: boolean) => {
        if (snap) this.proc.deliver(() => this.opts.onSnapshotStatus(m.to, ok));
      };
      if (!this.links.has(m.to)) {
        this.opts.onUnreachable(m.to);
        report(false);
        continue;
      }
      const copy = cloneMessage(m);
      const left = this.world.send(this.self, m.to, this.world.raftCode(m), () => {
        const ep = this.world.endpoint(m.to);
        if (!ep) {
          report(false);
          return;
        }
        ep.proc.deliver(() => {
          this.introduce(ep);
          ep.handlers.onRaftMessage(copy);
        });
        report(true);
      });
      if (!left) {
        this.opts.onUnreachable(m.to);
        report(false);
      }
    }
  }

  /** The receiver learns who is on the stream (attested identity, data address) once. */
  private introduce(ep: Endpoint): void {
    if (ep.known.has(this.self)) return;
    ep.known.add(this.self);
    ep.handlers.onPeerIdentity(this.self, this.identity);
    ep.handlers.onPeerDataAddress(this.self, `${this.self}.sim:7002`);
  }

  /** One request/answer call to `to`'s handler, bounded by `timeoutMs` on this process's clock. */
  private call<T>(
    to: string,
    codes: [number, number],
    serve: (ep: Endpoint) => Promise<T>,
    timeoutMs: number,
  ): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
    const { clock } = this.opts;
    return new Promise((resolve) => {
      let done = false;
      const finish = (r: { ok: true; value: T } | { ok: false; error: unknown }) => {
        if (done) return;
        done = true;
        clock.clear(timer);
        resolve(r);
      };
      const timer = clock.setTimeout(
        () => finish({ ok: false, error: new Error(`no answer from ${to} within ${timeoutMs} ms`) }),
        timeoutMs,
      );
      const answer = (r: { ok: true; value: T } | { ok: false; error: unknown }) =>
        this.world.send(to, this.self, codes[1], () => this.proc.deliver(() => finish(r)));
      this.world.send(this.self, to, codes[0], () => {
        const ep = this.world.endpoint(to);
        if (!ep) return;
        ep.proc.deliver(() =>
          serve(ep).then(
            (value) => answer({ ok: true, value }),
            (error: unknown) => answer({ ok: false, error }),
          ),
        );
      });
    });
  }

  async exchange(peerId: string, message: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (!this.links.has(peerId)) fail("NotFound", `no link to peer ${peerId} (its address is unknown)`);
    const bytes = new Uint8Array(message);
    this.world.log(() => `${this.self} -> ${peerId} ${ownershipKind(bytes)} (${bytes.length} bytes)`);
    const r = await this.call(
      peerId,
      [RPC_CODES.ownership, RPC_CODES.ownershipReply],
      (ep) => ep.handlers.onOwnershipRequest(this.self, bytes),
      timeoutMs,
    );
    if (r.ok) {
      const answer = r.value;
      this.world.log(() => `${peerId} -> ${this.self} ${ownershipKind(answer)} (${answer.length} bytes)`);
      return answer;
    }
    throw new HsmPoolError(
      "ServiceUnavailable",
      `ownership exchange with ${peerId} failed: ${describe(r.error)}`,
      {
        peer: peerId,
      },
    );
  }

  async join(target: PeerConfig, request: JoinRequestWire, timeoutMs: number): Promise<JoinAttempt> {
    const r = await this.call(
      target.id,
      [RPC_CODES.join, RPC_CODES.joinReply],
      (ep) => ep.handlers.onJoin(this.identity, { ...request, replaces: request.replaces || null }),
      timeoutMs,
    );
    if (r.ok)
      return r.value.accepted
        ? { kind: "accepted", response: r.value }
        : { kind: "redirect", response: r.value };
    const e = r.error;
    if (isHsmPoolError(e) && FINAL_JOIN_CODES.has(e.code))
      return { kind: "refused", code: e.code, error: `${e.message} [${e.code}]` };
    return { kind: "unavailable", error: describe(e) };
  }

  async listen(handlers: PeerHandlers): Promise<string> {
    this.world.setEndpoint(this.self, {
      proc: this.proc,
      handlers,
      identity: this.identity,
      known: new Set(),
    });
    return `${this.self}.sim:7001`;
  }

  async close(): Promise<void> {
    if (this.world.endpoint(this.self)?.proc === this.proc) this.world.setEndpoint(this.self, null);
    this.links.clear();
  }
}

/** The kind of an ownership message, for the transcript. */
function ownershipKind(bytes: Uint8Array): string {
  try {
    return decodeMessage(bytes).kind;
  } catch {
    return "undecodable ownership message";
  }
}

function describe(e: unknown): string {
  return isHsmPoolError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e);
}

// ---- the server -----------------------------------------------------------------------

export class SimServer {
  constructor(
    readonly memberId: string,
    readonly serverId: string,
    readonly rackId: string,
    readonly partition: SimPartition,
    private readonly world: NetWorld,
    private readonly hsm: HsmModel,
  ) {}

  identity(): EnclaveIdentity {
    return {
      mrenclave: SIM_MRENCLAVE,
      mrsigner: SIM_MRSIGNER,
      productId: 1,
      svn: SIM_SVN,
      debug: false,
      serverId: this.serverId,
      rackId: this.rackId,
    };
  }

  /** The platform seam of one process on this server. */
  platformFor(proc: SimProcess): NodePlatform {
    const world = this.world;
    const identity = this.identity();
    const enclave = new SimEnclave(identity);
    const self = this.memberId;
    const device = new SimHsmDevice(world, proc, this.partition, this.hsm);
    const launched: LaunchedServer = {
      enclave,
      openHsm: async () => device,
      openTransport: async (options: TransportOptions) =>
        new SimTransport(world, proc, self, { ...identity, certFingerprint: `sim-${self}` }, options),
      serveDataPlane: async (o: DataPlaneOptions): Promise<DataPlane | null> => {
        if (o.stopped()) return null;
        world.setKeyService(self, proc, o.keys);
        return { certFingerprint: `sim-${self}`, close: async () => world.setKeyService(self, proc, null) };
      },
      serveMetrics: async () => null,
    };
    return { processMetrics: false, launch: async () => launched };
  }
}
