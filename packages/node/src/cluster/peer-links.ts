/**
 * Outgoing side of the cluster transport: one attested gRPC channel per peer,
 * carrying one long-lived client stream `Raft.Send` (this node -> that peer) and the
 * unary `Ownership.Exchange` calls.
 *
 * Delivery is best effort, as Raft expects: while a link is down (not yet connected,
 * broken, or the peer is not reading fast enough) messages are dropped and the
 * Raft core is told the peer is unreachable; the link reconnects with exponential
 * backoff and jitter. A stalled peer (SIGSTOP) is noticed by HTTP/2 keepalive.
 */
import * as grpc from "@grpc/grpc-js";
import { fail, HsmPoolError } from "@hsmpool/errors";
import type { Message, NodeId, Snapshot } from "@hsmpool/raft";
import type { Logger } from "pino";
import type { Clock, TimerId } from "../seams/clock.js";
import type { Randomness } from "../seams/random.js";
import { clusterProto, messageToWire, type OwnershipEnvelope } from "./cluster-proto.js";
import { snapshotChunks } from "./snapshot-chunks.js";

export const NODE_ID_METADATA = "hsmpool-node-id";
export const DATA_ADDRESS_METADATA = "hsmpool-data-addr";
export const MAX_CLUSTER_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Channel options shared by both ends of the cluster transport. */
export const CLUSTER_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": MAX_CLUSTER_MESSAGE_BYTES,
  "grpc.max_send_message_length": MAX_CLUSTER_MESSAGE_BYTES,
  "grpc.keepalive_time_ms": 2_000,
  "grpc.keepalive_timeout_ms": 2_000,
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1_000,
};

/** Snapshot chunks written to a stream and not yet flushed: bounds a sender's buffered snapshot bytes. */
const SNAPSHOT_CHUNKS_IN_FLIGHT = 4;
const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2_000;

export type ChannelFactory = (peerId: NodeId) => {
  credentials: grpc.ChannelCredentials;
  channelOptions: grpc.ChannelOptions;
};

export interface PeerLinksOptions {
  selfId: NodeId;
  dataAddress: () => string;
  channelFor: ChannelFactory;
  /** Raft feedback: the message to `to` was not delivered. */
  onUnreachable: (to: NodeId) => void;
  /** Raft feedback: a MsgSnap to `to` was handed to the transport (ok) or dropped. */
  onSnapshotStatus: (to: NodeId, ok: boolean) => void;
  logger: Logger;
  clock: Clock;
  random: Randomness;
  /** TEST-ONLY (chaos harness): the address to dial for a peer, e.g. a link proxy in front of `address`. */
  dialAddress?: (peerId: NodeId, address: string) => string;
}

interface RaftStreamClient extends grpc.Client {
  Send(
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null) => void,
  ): grpc.ClientWritableStream<unknown>;
}

interface OwnershipClient extends grpc.Client {
  Exchange(
    request: OwnershipEnvelope,
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, response?: OwnershipEnvelope) => void,
  ): grpc.ClientUnaryCall;
}

/** One directed link to a peer. */
class PeerLink {
  private readonly raft: RaftStreamClient;
  private readonly ownership: OwnershipClient;
  private stream: grpc.ClientWritableStream<unknown> | null = null;
  private congested = false;
  private backoffMs = MIN_BACKOFF_MS;
  private retryTimer: TimerId | null = null;
  private reportedDown = false;
  private closed = false;
  /** The snapshot being streamed to this peer, if any (one at a time, as Raft sends them). */
  private snapshotTransfer: {
    stream: grpc.ClientWritableStream<unknown>;
    finish: (ok: boolean) => void;
  } | null = null;

  constructor(
    readonly peerId: NodeId,
    readonly address: string,
    private readonly opts: PeerLinksOptions,
  ) {
    const { credentials, channelOptions } = opts.channelFor(peerId);
    const { RaftClient, OwnershipClient } = clusterProto();
    const options = { ...CLUSTER_CHANNEL_OPTIONS, ...channelOptions };
    const dial = opts.dialAddress?.(peerId, address) ?? address;
    this.raft = new RaftClient(dial, credentials, options) as unknown as RaftStreamClient;
    this.ownership = new OwnershipClient(dial, credentials, {
      ...options,
      channelOverride: this.raft.getChannel(),
    }) as unknown as OwnershipClient;
    this.open();
  }

  private open(): void {
    if (this.closed) return;
    const metadata = new grpc.Metadata();
    metadata.set(NODE_ID_METADATA, this.opts.selfId);
    metadata.set(DATA_ADDRESS_METADATA, this.opts.dataAddress());
    const stream = this.raft.Send(metadata, {}, (err) => this.broken(stream, err));
    stream.on("error", () => {
      // Reported through the call's callback as well; nothing more to do here.
    });
    stream.on("drain", () => {
      if (this.stream === stream) this.congested = false;
    });
    this.stream = stream;
    this.congested = false;
  }

  private broken(stream: grpc.ClientWritableStream<unknown>, err: grpc.ServiceError | null): void {
    if (this.stream !== stream) return;
    this.stream = null;
    // A chunk's write callback may never come once the call is over: the transfer failed.
    if (this.snapshotTransfer?.stream === stream) this.snapshotTransfer.finish(false);
    if (this.closed) return;
    if (!this.reportedDown) {
      this.opts.logger.info({ peer: this.peerId, reason: err?.details ?? "stream ended" }, "peer link down");
      this.reportedDown = true;
    }
    const delay = this.backoffMs * (0.5 + this.opts.random.float());
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    this.retryTimer = this.opts.clock.setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
  }

  send(m: Message): void {
    const stream = this.stream;
    if (stream === null || this.congested) {
      this.dropped(m);
      return;
    }
    if (m.type === "MsgSnap" && m.snapshot) {
      this.streamSnapshot(stream, { ...m, snapshot: m.snapshot });
      return;
    }
    if (!stream.write(messageToWire(m))) this.congested = true;
  }

  /**
   * Writes the snapshot as chunks (snapshot-chunks.ts), at most SNAPSHOT_CHUNKS_IN_FLIGHT
   * not yet flushed, so the sender holds a few chunks' encodings rather than the whole
   * snapshot's; other messages to this peer go between them. Raft is told the snapshot
   * was sent once the last chunk is flushed, and failed if the stream breaks first.
   */
  private streamSnapshot(
    stream: grpc.ClientWritableStream<unknown>,
    m: Message & { snapshot: Snapshot },
  ): void {
    if (this.snapshotTransfer !== null) {
      // Raft sends the next snapshot only after hearing about this one; a second is stale.
      this.opts.onSnapshotStatus(this.peerId, false);
      return;
    }
    const { snapshot, ...rest } = m;
    const header = messageToWire(rest);
    const chunks = snapshotChunks(snapshot);
    let inFlight = 0;
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      if (this.snapshotTransfer === transfer) this.snapshotTransfer = null;
      this.opts.onSnapshotStatus(this.peerId, ok);
    };
    const transfer = { stream, finish };
    this.snapshotTransfer = transfer;
    const pump = () => {
      while (!done && inFlight < SNAPSHOT_CHUNKS_IN_FLIGHT) {
        if (this.stream !== stream || this.closed) return finish(false);
        const next = chunks.next();
        if (next.done) {
          if (inFlight === 0) finish(true);
          return;
        }
        inFlight++;
        stream.write({ ...header, snapshotChunk: next.value }, (err: unknown) => {
          inFlight--;
          if (err) finish(false);
          else pump();
        });
      }
    };
    pump();
  }

  /**
   * The peer just sent us something, so it is up: reset the backoff and, if this
   * link is waiting to reconnect, reconnect now rather than keep dropping messages.
   */
  markHealthy(): void {
    this.backoffMs = MIN_BACKOFF_MS;
    if (this.stream === null && this.retryTimer !== null) {
      this.opts.clock.clear(this.retryTimer);
      this.retryTimer = null;
      this.open();
    }
    if (this.reportedDown && this.stream !== null) {
      this.opts.logger.info({ peer: this.peerId }, "peer link up");
      this.reportedDown = false;
    }
  }

  private dropped(m: Message): void {
    this.opts.onUnreachable(this.peerId);
    if (m.type === "MsgSnap") this.opts.onSnapshotStatus(this.peerId, false);
  }

  get connected(): boolean {
    return this.raft.getChannel().getConnectivityState(false) === grpc.connectivityState.READY;
  }

  exchange(message: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.ownership.Exchange(
        { from: this.opts.selfId, message },
        { deadline: Date.now() + timeoutMs },
        (err, response) => {
          if (err || !response) {
            reject(
              new HsmPoolError(
                "ServiceUnavailable",
                `ownership exchange with ${this.peerId} failed: ${err?.details ?? "empty answer"}`,
                {
                  peer: this.peerId,
                },
              ),
            );
          } else resolve(new Uint8Array(response.message));
        },
      );
    });
  }

  close(): void {
    this.closed = true;
    this.snapshotTransfer?.finish(false);
    this.opts.clock.clear(this.retryTimer);
    this.stream?.end();
    this.stream = null;
    this.ownership.close();
    this.raft.close();
  }
}

export class PeerLinks {
  private readonly links = new Map<NodeId, PeerLink>();

  constructor(private readonly opts: PeerLinksOptions) {}

  /** Adds (or re-points) the link to `peerId`. */
  setPeer(peerId: NodeId, address: string): void {
    if (peerId === this.opts.selfId) return;
    const existing = this.links.get(peerId);
    if (existing?.address === address) return;
    existing?.close();
    this.links.set(peerId, new PeerLink(peerId, address, this.opts));
  }

  removePeer(peerId: NodeId): void {
    this.links.get(peerId)?.close();
    this.links.delete(peerId);
  }

  /** The attested link to `peerId` is connected right now. */
  isConnected(peerId: NodeId): boolean {
    return this.links.get(peerId)?.connected ?? false;
  }

  addressOf(peerId: NodeId): string | undefined {
    return this.links.get(peerId)?.address;
  }

  peers(): NodeId[] {
    return [...this.links.keys()];
  }

  send(messages: readonly Message[]): void {
    for (const m of messages) {
      const link = this.links.get(m.to);
      if (link) link.send(m);
      else this.opts.onUnreachable(m.to);
    }
  }

  /** Called when any message from `peerId` arrives: the network between us works. */
  heardFrom(peerId: NodeId): void {
    this.links.get(peerId)?.markHealthy();
  }

  async exchange(peerId: NodeId, message: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const link =
      this.links.get(peerId) ?? fail("NotFound", `no link to peer ${peerId} (its address is unknown)`);
    return link.exchange(message, timeoutMs);
  }

  close(): void {
    for (const link of this.links.values()) link.close();
    this.links.clear();
  }
}
