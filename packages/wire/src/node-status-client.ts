/**
 * The HFC's health probe: `hsmpool.pool.v1.NodeControl/Status` on a node's data
 * plane over mTLS with a fabric-PKI client certificate.
 */
import * as grpc from "@grpc/grpc-js";
import { poolProto, unaryCall } from "./proto.js";
import type { NodeStatus } from "./types.js";

/** The DNS name in every node's data-plane certificate (clients override the TLS server name to it). */
export const NODE_TLS_NAME = "hsmpool-node";

export interface TlsClientMaterial {
  caCertPem: string;
  certPem: string;
  /** In memory only. */
  privateKeyPem: Buffer;
}

/**
 * Channel options for data-plane clients: the node's certificate names
 * `hsmpool-node` (an IP as TLS server name draws a Node warning and says nothing
 * here), and reconnect backoff stays short so a restarted node is seen quickly.
 */
export const DATA_PLANE_CHANNEL_OPTIONS: grpc.ChannelOptions = Object.freeze({
  "grpc.ssl_target_name_override": NODE_TLS_NAME,
  "grpc.default_authority": NODE_TLS_NAME,
  "grpc.initial_reconnect_backoff_ms": 100,
  "grpc.max_reconnect_backoff_ms": 1000,
  // Channelz keeps per-call counters and traces nobody reads here: cost on every call.
  "grpc.enable_channelz": 0,
});

export function dataPlaneCredentials(tls: TlsClientMaterial): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(tls.caCertPem), tls.privateKeyPem, Buffer.from(tls.certPem));
}

export class NodeStatusClient {
  private readonly client: grpc.Client;

  constructor(address: string, credentials: grpc.ChannelCredentials) {
    this.client = new (poolProto().NodeControl.ctor)(address, credentials, DATA_PLANE_CHANNEL_OPTIONS);
  }

  status(deadlineMs: number): Promise<NodeStatus> {
    return unaryCall<NodeStatus>(this.client, "Status", {}, { deadlineMs });
  }

  close(): void {
    this.client.close();
  }
}
