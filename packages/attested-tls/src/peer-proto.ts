/**
 * proto/peer.proto loaded with @grpc/proto-loader, plus TypeScript shapes of its
 * messages (proto-loader options below: camelCase fields, bytes as Buffer,
 * defaults filled in, absent sub-messages as null).
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";

/** This module sits directly in src/ and dist/ alike, so the repo's proto/ is three levels up. */
export const PEER_PROTO_PATH = fileURLToPath(new URL("../../../proto/peer.proto", import.meta.url));

export interface EnclaveIdentityMessage {
  mrenclave: string;
  mrsigner: string;
  productId: number;
  svn: number;
  debug: boolean;
  serverId: string;
  rackId: string;
  certFingerprint: string;
}

export interface HelloRequest {
  nodeId: string;
  serverAsSeenByClient: EnclaveIdentityMessage | null;
  payload: Buffer;
}

export interface HelloResponse {
  nodeId: string;
  clientAsSeenByServer: EnclaveIdentityMessage | null;
  serverSelf: EnclaveIdentityMessage | null;
  payload: Buffer;
}

/** The generated client's surface that this package uses. */
export interface PeerGrpcClient extends grpc.Client {
  Hello(
    request: Partial<HelloRequest>,
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, response?: HelloResponse) => void,
  ): grpc.ClientUnaryCall;
}

export type PeerGrpcClientConstructor = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ChannelOptions,
) => PeerGrpcClient;

interface LoadedPeerPackage {
  ctor: PeerGrpcClientConstructor;
  service: grpc.ServiceDefinition;
}

let loaded: LoadedPeerPackage | undefined;

/** The `hsmpool.peer.v1.Peer` service definition and client constructor (loaded once). */
export function peerProto(): LoadedPeerPackage {
  if (loaded) return loaded;
  const definition = loadSync(PEER_PROTO_PATH, {
    keepCase: false,
    longs: String,
    enums: String,
    bytes: Buffer,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    hsmpool: { peer: { v1: { Peer: grpc.ServiceClientConstructor } } };
  };
  const Peer = pkg.hsmpool.peer.v1.Peer;
  loaded = { ctor: Peer as unknown as PeerGrpcClientConstructor, service: Peer.service };
  return loaded;
}
