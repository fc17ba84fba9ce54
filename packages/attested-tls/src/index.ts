/**
 * @hsmpool/attested-tls: RA-TLS certificates made inside a (simulated) enclave and
 * grpc-js credentials on both sides that refuse a peer failing the attestation
 * policy during the TLS handshake. See README.md for the design and formats.
 */
export {
  type AttestedIdentity,
  type CreateAttestedIdentityOptions,
  createAttestedIdentity,
  DEFAULT_CERT_VALIDITY_MS,
} from "./attested-identity.js";
export {
  ATTESTED_CHANNEL_OPTIONS,
  type AttestedChannel,
  type AttestedChannelOptions,
  attestedChannelCredentials,
} from "./client.js";
export { chainFromPeerCertificate } from "./peer-chain.js";
export {
  type EnclaveIdentityMessage,
  type HelloRequest,
  type HelloResponse,
  PEER_PROTO_PATH,
  type PeerGrpcClient,
  peerProto,
} from "./peer-proto.js";
export { type CallWithPeer, peerIdentityOf, requirePeerIdentity } from "./peer-registry.js";
export {
  type HelloEvent,
  type HelloResult,
  MAX_HELLO_PAYLOAD_BYTES,
  PeerClient,
  type PeerClientOptions,
  type PeerServiceOptions,
  peerService,
} from "./peer-service.js";
export { RA_TLS_QUOTE_OID, reportDataForSpki } from "./quote-binding.js";
export {
  type AttestedServer,
  type AttestedServerOptions,
  type PeerRejection,
  type ServiceRegistration,
  startAttestedServer,
} from "./server.js";
export { type PeerCheck, type VerifiedPeer, type VerifyPeerOptions, verifyPeer } from "./verify-peer.js";
