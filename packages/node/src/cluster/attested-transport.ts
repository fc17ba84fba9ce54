/**
 * The real peer transport (seams/platform.ts PeerTransport): links to peers over
 * attested gRPC (peer-links.ts), the attested peer server carrying the Raft,
 * Ownership and Membership services (cluster-service.ts), and Membership.Join calls
 * (membership/join-client.ts), all bound to this enclave's attested identity.
 */
import {
  type AttestedIdentity,
  type AttestedServer,
  attestedChannelCredentials,
  peerService,
  startAttestedServer,
} from "@hsmpool/attested-tls";
import type { Message, NodeId } from "@hsmpool/raft";
import type { PeerConfig } from "../config.js";
import { splitHostPort } from "../config.js";
import { grpcJoin } from "../membership/join-client.js";
import type { peerPolicyFor } from "../peer/policy.js";
import type { JoinAttempt, PeerHandlers, PeerTransport, TransportOptions } from "../seams/platform.js";
import type { JoinRequestWire } from "./cluster-proto.js";
import { membershipService, ownershipService, raftService } from "./cluster-service.js";
import { MAX_CLUSTER_MESSAGE_BYTES, PeerLinks } from "./peer-links.js";

export class AttestedTransport implements PeerTransport {
  private readonly links: PeerLinks;
  private server: AttestedServer | null = null;
  /** Resolves in an immediate queued behind this turn's sends (flushed()). */
  private flushing: Promise<void> | null = null;
  private readonly joinCall: (t: PeerConfig, r: JoinRequestWire, ms: number) => Promise<JoinAttempt>;

  constructor(
    private readonly opts: TransportOptions,
    private readonly identity: AttestedIdentity,
    private readonly policy: ReturnType<typeof peerPolicyFor>,
    private readonly vendorRoot: string,
  ) {
    const channel = () => attestedChannelCredentials({ identity, policy, vendorRoot });
    this.links = new PeerLinks({
      selfId: opts.config.nodeId,
      dataAddress: () => opts.config.dataListen,
      channelFor: () => {
        const c = channel();
        return { credentials: c.credentials, channelOptions: c.channelOptions };
      },
      onUnreachable: (to) => opts.onUnreachable(to),
      onSnapshotStatus: (to, ok) => opts.onSnapshotStatus(to, ok),
      logger: opts.logger,
      clock: opts.clock,
      random: opts.random,
      ...(opts.dialAddress ? { dialAddress: opts.dialAddress } : {}),
    });
    this.joinCall = grpcJoin(channel);
  }

  setPeer(peerId: NodeId, address: string): void {
    this.links.setPeer(peerId, address);
  }
  removePeer(peerId: NodeId): void {
    this.links.removePeer(peerId);
  }
  isConnected(peerId: NodeId): boolean {
    return this.links.isConnected(peerId);
  }
  addressOf(peerId: NodeId): string | undefined {
    return this.links.addressOf(peerId);
  }
  peers(): NodeId[] {
    return this.links.peers();
  }
  send(messages: readonly Message[]): void {
    this.links.send(messages);
    if (messages.length > 0 && this.flushing === null) {
      this.flushing = new Promise<void>((resolve) =>
        setImmediate(() => {
          this.flushing = null;
          resolve();
        }),
      );
    }
  }

  /** An immediate queued behind the sends of this turn: HTTP/2 has written their frames when it runs. */
  flushed(): Promise<void> {
    return this.flushing ?? Promise.resolve();
  }
  heardFrom(peerId: NodeId): void {
    this.links.heardFrom(peerId);
  }
  exchange(peerId: NodeId, message: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return this.links.exchange(peerId, message, timeoutMs);
  }
  join(target: PeerConfig, request: JoinRequestWire, timeoutMs: number): Promise<JoinAttempt> {
    return this.joinCall(target, request, timeoutMs);
  }

  async listen(handlers: PeerHandlers): Promise<string> {
    const { config, logger } = this.opts;
    const clusterOptions = {
      selfId: config.nodeId,
      onRaftMessage: (m: Message) => handlers.onRaftMessage(m),
      onPeerDataAddress: handlers.onPeerDataAddress,
      onPeerIdentity: handlers.onPeerIdentity,
      onOwnershipRequest: handlers.onOwnershipRequest,
      logger,
    };
    const { host, port } = splitHostPort(config.peerListen);
    this.server = await startAttestedServer({
      identity: this.identity,
      policy: this.policy,
      vendorRoot: this.vendorRoot,
      host,
      port,
      // The same message limit as the peers' channels: a snapshot travels as one Raft
      // message, and grpc-js's 4 MiB default refused the one of a 10,000-key pool.
      grpcOptions: {
        "grpc.max_receive_message_length": MAX_CLUSTER_MESSAGE_BYTES,
        "grpc.max_send_message_length": MAX_CLUSTER_MESSAGE_BYTES,
      },
      services: [
        peerService({ self: this.identity, nodeId: config.nodeId }),
        raftService(clusterOptions),
        ownershipService(clusterOptions),
        membershipService({ onJoin: handlers.onJoin }),
      ],
      onPeerRejected: ({ error, remoteAddress }) =>
        logger.warn({ remoteAddress, check: error.details?.check, error: error.message }, "peer rejected"),
    });
    logger.info(
      { peerAddress: this.server.address, certFingerprint: this.identity.certFingerprint },
      "peer server listening",
    );
    return this.server.address;
  }

  async close(graceMs: number): Promise<void> {
    await this.server?.close(Math.min(500, graceMs));
    this.links.close();
  }
}
