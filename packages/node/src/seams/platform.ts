/**
 * The server a node runs on, as the shell sees it: its CPU (launch the measured
 * enclave: identity, quote, seal), its HSM device and its network (the attested peer
 * transport and the data-plane endpoint). systemPlatform (real-platform.ts) is the
 * fabric directory, the HSM device files and gRPC over attested TLS; the simulator's
 * servers answer the same calls in virtual time over its simulated network.
 */

import type * as grpc from "@grpc/grpc-js";
import type { VerifiedPeer } from "@hsmpool/attested-tls";
import type { MetricsServer, Registry } from "@hsmpool/metrics";
import type { Enclave } from "@hsmpool/platform";
import type { JoinRequest } from "@hsmpool/pool";
import type { Message, NodeId } from "@hsmpool/raft";
import type { NodeStatus } from "@hsmpool/wire";
import type { Logger } from "pino";
import type { JoinRequestWire, JoinResponseWire } from "../cluster/cluster-proto.js";
import type { NodeConfig, PeerConfig } from "../config.js";
import type { DataPlaneAccess } from "../data-plane/access.js";
import type { AuditOperation } from "../data-plane/audited.js";
import type { KeyService } from "../keyvault/key-service.js";
import type { NodeMetrics } from "../metrics/node-metrics.js";
import type { RestListener } from "../rest/rest-endpoint.js";
import type { BackupJobs } from "../security-domain/backup-jobs.js";
import type { SecurityDomainService } from "../security-domain/sd-service.js";
import type { Clock } from "./clock.js";
import type { HsmDevicePort } from "./hsm.js";
import type { Randomness } from "./random.js";

export interface NodePlatform {
  /**
   * Whether the node has its OS process to itself, so the process's CPU, memory and
   * event-loop lag are the node's metrics (false in the simulator, whose nodes share one).
   */
  readonly processMetrics: boolean;
  /** Launches this node's enclave on its server (LaunchRefused when the bundle is not acceptable). */
  launch(config: NodeConfig): Promise<LaunchedServer>;
}

export interface LaunchedServer {
  readonly enclave: Enclave;
  /** Opens the server's HSM device. */
  openHsm(): Promise<HsmDevicePort>;
  /** The attested peer transport of this enclave. */
  openTransport(options: TransportOptions): Promise<PeerTransport>;
  /**
   * Serves KeyVault + NodeControl once the data plane has credentials (the real one
   * asks the HFC for a certificate, retrying); null when the node stopped first.
   */
  serveDataPlane(options: DataPlaneOptions): Promise<DataPlane | null>;
  /** Serves the node's metrics (the real server: loopback HTTP on a free port); null when there is no such endpoint. */
  serveMetrics(registry: Registry): Promise<MetricsServer | null>;
}

export interface TransportOptions {
  config: NodeConfig;
  logger: Logger;
  clock: Clock;
  random: Randomness;
  /** Raft feedback: the message to `to` was not delivered. */
  onUnreachable(to: NodeId): void;
  /** Raft feedback: a MsgSnap to `to` was handed to the transport (ok) or dropped. */
  onSnapshotStatus(to: NodeId, ok: boolean): void;
  /** TEST-ONLY (chaos harness): the address to dial for a peer. */
  dialAddress?: (peerId: NodeId, address: string) => string;
}

/** What arrives from peers (registered once with listen()). */
export interface PeerHandlers {
  onRaftMessage(m: Message): void;
  onPeerDataAddress(peer: NodeId, address: string): void;
  onPeerIdentity(peer: NodeId, identity: VerifiedPeer): void;
  onOwnershipRequest(from: NodeId, message: Uint8Array): Promise<Uint8Array>;
  onJoin(caller: VerifiedPeer, request: JoinRequest): Promise<JoinResponseWire>;
}

/** One Membership.Join attempt, classified (membership/joiner.ts acts on it). */
export type JoinAttempt =
  | { kind: "accepted"; response: JoinResponseWire }
  | { kind: "redirect"; response: JoinResponseWire }
  | { kind: "refused"; code: string; error: string }
  | { kind: "attestation"; check: string; error: string }
  | { kind: "unavailable"; error: string };

/** Best-effort links to peers plus the listening side. */
export interface PeerTransport {
  setPeer(peerId: NodeId, address: string): void;
  removePeer(peerId: NodeId): void;
  isConnected(peerId: NodeId): boolean;
  addressOf(peerId: NodeId): string | undefined;
  peers(): NodeId[];
  send(messages: readonly Message[]): void;
  /**
   * Resolves once what send() handed over so far has been written out (the real
   * transport: HTTP/2 writes its frames from an immediate); absent: sends leave at once.
   */
  flushed?(): Promise<void>;
  /** Any message from `peerId` arrived: the network between us works. */
  heardFrom(peerId: NodeId): void;
  exchange(peerId: NodeId, message: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Starts serving peers; resolves with the address it listens on. */
  listen(handlers: PeerHandlers): Promise<string>;
  join(target: PeerConfig, request: JoinRequestWire, timeoutMs: number): Promise<JoinAttempt>;
  /** Stops listening (in-flight calls get `graceMs`) and closes every link. */
  close(graceMs: number): Promise<void>;
}

export interface RestMount {
  listener: RestListener;
  close(): void;
}

export interface DataPlaneOptions {
  config: NodeConfig;
  logger: Logger;
  keys: KeyService;
  /** The security domain and backup/restore jobs (proto/pool.proto SecurityDomain). */
  securityDomain: SecurityDomainService;
  backups: BackupJobs;
  /** Who may call what (bearer tokens + RBAC) on the data plane. */
  access: DataPlaneAccess;
  /** proto/pool.proto's AccessControl (roles, JWKS rollover, audit). */
  accessControl: grpc.UntypedServiceImplementation;
  /** Wraps a gRPC service so each call leaves an audit record (data-plane/audited.ts). */
  audited(impl: grpc.UntypedServiceImplementation): grpc.UntypedServiceImplementation;
  auditOperation: AuditOperation;
  metrics: NodeMetrics;
  status(): NodeStatus;
  stopped(): boolean;
  onInternalError(error: unknown): void;
  /** The Key Vault REST endpoint on the same port, made once the fabric CA is known (writes are relayed to the primary over TLS checked against it). */
  rest(caPem: string): RestMount;
}

export interface DataPlane {
  /** Fingerprint of the data-plane certificate, for the "ready" log line. */
  readonly certFingerprint: string;
  /** True while a call is being answered (background work such as the key reserve's refill waits). */
  busy?(): boolean;
  close(graceMs: number): Promise<void>;
}
