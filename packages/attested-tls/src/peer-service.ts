/**
 * The `Peer` service (proto/peer.proto): the server half (Hello handler) and a
 * client that connects over attested TLS and tells the server what it verified.
 */
import * as grpc from "@grpc/grpc-js";
import { fail, HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import type { EnclaveIdentity } from "@hsmpool/platform";
import type { AttestedIdentity } from "./attested-identity.js";
import { type AttestedChannel, type AttestedChannelOptions, attestedChannelCredentials } from "./client.js";
import {
  type EnclaveIdentityMessage,
  type HelloRequest,
  type HelloResponse,
  type PeerGrpcClient,
  peerProto,
} from "./peer-proto.js";
import { peerIdentityOf } from "./peer-registry.js";
import type { ServiceRegistration } from "./server.js";
import type { VerifiedPeer } from "./verify-peer.js";

export const MAX_NODE_ID_LENGTH = 128;
export const MAX_HELLO_PAYLOAD_BYTES = 4096;
const DEFAULT_TIMEOUT_MS = 5_000;

export function identityMessage(id: EnclaveIdentity, certFingerprint: string): EnclaveIdentityMessage {
  return {
    mrenclave: id.mrenclave,
    mrsigner: id.mrsigner,
    productId: id.productId,
    svn: id.svn,
    debug: id.debug,
    serverId: id.serverId,
    rackId: id.rackId,
    certFingerprint,
  };
}

function checkNodeId(nodeId: unknown): string {
  if (typeof nodeId !== "string" || nodeId.length === 0 || nodeId.length > MAX_NODE_ID_LENGTH) {
    fail("BadParameter", `node id must be 1 to ${MAX_NODE_ID_LENGTH} characters`, { field: "nodeId" });
  }
  return nodeId;
}

function checkPayload(payload: Uint8Array): void {
  if (payload.byteLength > MAX_HELLO_PAYLOAD_BYTES) {
    fail("BadParameter", `hello payload must be at most ${MAX_HELLO_PAYLOAD_BYTES} bytes`, {
      field: "payload",
    });
  }
}

function toServiceError(e: unknown): Partial<grpc.StatusObject> {
  const err = isHsmPoolError(e) ? e : new HsmPoolError("Internal", "internal error in Hello");
  return { code: err.grpcStatus, details: `${err.message} [${err.code}]` };
}

/** What the server's Hello handler saw (for diagnostics and tests). */
export interface HelloEvent {
  request: HelloRequest;
  client: VerifiedPeer;
}

export interface PeerServiceOptions {
  self: AttestedIdentity;
  nodeId: string;
  onHello?: (event: HelloEvent) => void;
}

export function peerService(opts: PeerServiceOptions): ServiceRegistration {
  const nodeId = checkNodeId(opts.nodeId);
  const self = identityMessage(opts.self.enclave, opts.self.certFingerprint);
  const hello: grpc.handleUnaryCall<HelloRequest, HelloResponse> = (call, callback) => {
    try {
      const client =
        peerIdentityOf(call) ??
        fail("Unauthenticated", "Hello is only served to peers that passed attestation on this server");
      checkNodeId(call.request.nodeId);
      checkPayload(call.request.payload);
      opts.onHello?.({ request: call.request, client });
      callback(null, {
        nodeId,
        clientAsSeenByServer: identityMessage(client, client.certFingerprint),
        serverSelf: self,
        payload: call.request.payload,
      });
    } catch (e) {
      callback(toServiceError(e));
    }
  };
  return { definition: peerProto().service, implementation: { Hello: hello } };
}

export interface PeerClientOptions extends AttestedChannelOptions {
  /** This node's id, sent as a claim in Hello. */
  nodeId: string;
  channelOptions?: grpc.ChannelOptions;
}

export interface HelloResult {
  /** What this client verified about the server during the handshake. */
  server: VerifiedPeer;
  response: HelloResponse;
}

/** A Peer client over one attested channel. */
export class PeerClient {
  readonly #channel: AttestedChannel;
  readonly #client: PeerGrpcClient;
  readonly #nodeId: string;

  constructor(address: string, opts: PeerClientOptions) {
    this.#nodeId = checkNodeId(opts.nodeId);
    this.#channel = attestedChannelCredentials(opts);
    this.#client = new (peerProto().ctor)(address, this.#channel.credentials, {
      ...this.#channel.channelOptions,
      ...opts.channelOptions,
    });
  }

  /** The server verified by this channel's latest handshake. */
  get serverIdentity(): VerifiedPeer | undefined {
    return this.#channel.serverIdentity();
  }

  #connectFailure(what: string): HsmPoolError {
    return (
      this.#channel.lastRejection() ??
      new HsmPoolError("ServiceUnavailable", `cannot reach an attested peer: ${what}`, { retryable: true })
    );
  }

  /** Connects (TLS + RA-TLS check) and returns the verified server; fails fast on a refused handshake. */
  async connect(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<VerifiedPeer> {
    const channel = this.#client.getChannel();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const state = channel.getConnectivityState(true);
      if (state === grpc.connectivityState.READY) break;
      if (state === grpc.connectivityState.TRANSIENT_FAILURE) throw this.#connectFailure("handshake failed");
      if (state === grpc.connectivityState.SHUTDOWN) fail("ServiceUnavailable", "the peer client is closed");
      await new Promise<void>((resolve, reject) =>
        channel.watchConnectivityState(state, deadline, (err) =>
          err ? reject(this.#connectFailure(`no connection within ${timeoutMs} ms`)) : resolve(),
        ),
      );
    }
    return this.serverIdentity ?? fail("Internal", "connected without a verified server identity");
  }

  /** Hello: tells the server what this side verified, returns what the server verified about us. */
  async hello(opts: { payload?: Uint8Array; timeoutMs?: number } = {}): Promise<HelloResult> {
    const payload = Buffer.from(opts.payload ?? new Uint8Array(0));
    checkPayload(payload);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const server = await this.connect(timeoutMs);
    const response = await new Promise<HelloResponse>((resolve, reject) => {
      this.#client.Hello(
        {
          nodeId: this.#nodeId,
          serverAsSeenByClient: identityMessage(server, server.certFingerprint),
          payload,
        },
        { deadline: Date.now() + timeoutMs },
        (err, res) => {
          if (err || !res) {
            const code = err?.code ?? grpc.status.UNKNOWN;
            reject(
              this.#channel.lastRejection() ??
                new HsmPoolError(
                  code === grpc.status.UNAVAILABLE ? "ServiceUnavailable" : "Internal",
                  `Hello failed: ${err?.details ?? "empty response"}`,
                  { grpcCode: code },
                ),
            );
          } else resolve(res);
        },
      );
    });
    return { server, response };
  }

  close(): void {
    this.#client.close();
  }
}
