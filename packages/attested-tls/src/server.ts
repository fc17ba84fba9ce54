/**
 * The attested gRPC server. Our own `tls.Server` terminates TLS (requestCert +
 * rejectUnauthorized against the vendor root, so chain, expiry and missing client
 * certificates fail inside the handshake); on `secureConnection` it runs the RA-TLS
 * verifier on the client's chain and either destroys the socket — before a single
 * application byte is read from it — or hands the decrypted socket to grpc-js
 * through `Server.createConnectionInjector`. grpc-js never sees a rejected peer.
 */
import type { AddressInfo } from "node:net";
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { fail, HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import type { Policy } from "@hsmpool/platform";
import { type AttestedIdentity, tlsPrivateKeyPem } from "./attested-identity.js";
import { chainFromPeerX509 } from "./peer-chain.js";
import { rememberPeer } from "./peer-registry.js";
import { trustAnchor } from "./trust-anchor.js";
import { createPeerVerifier, type VerifiedPeer } from "./verify-peer.js";

export interface ServiceRegistration {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

/** Why a connecting client was turned away, for logs and diagnostics (never contains key material). */
export interface PeerRejection {
  /** AttestationFailed; `details.check` names the failed check ("handshake" when TLS itself failed). */
  error: HsmPoolError;
  remoteAddress: string;
}

export interface AttestedServerOptions {
  identity: AttestedIdentity;
  /** Verifier policy for clients (validated with the platform's parsePolicy). */
  policy: Policy;
  /** The fabric's vendor root (DER or PEM). */
  vendorRoot: Uint8Array | string;
  services: readonly ServiceRegistration[];
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** A client that has not finished the handshake by then is dropped (default 10 s). */
  handshakeTimeoutMs?: number;
  onPeerAccepted?: (peer: VerifiedPeer, remoteAddress: string) => void;
  onPeerRejected?: (rejection: PeerRejection) => void;
  /** Clock for certificate validity in the RA-TLS check (default: system clock). */
  now?: () => Date;
  /** grpc-js server options, e.g. "grpc.max_receive_message_length" (grpc-js's default is 4 MiB). */
  grpcOptions?: grpc.ServerOptions;
}

export interface AttestedServer {
  readonly host: string;
  readonly port: number;
  /** "host:port", ready for a client. */
  readonly address: string;
  /** Stops accepting, lets running calls finish for up to `graceMs`, then cuts the rest. */
  close(graceMs?: number): Promise<void>;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** OpenSSL verification results (socket.authorizationError) mapped onto the verifier's check names. */
const OPENSSL_CHECKS: Record<string, string> = {
  CERT_HAS_EXPIRED: "validity",
  CERT_NOT_YET_VALID: "validity",
  UNABLE_TO_GET_ISSUER_CERT: "chain",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "chain",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "chain",
  SELF_SIGNED_CERT_IN_CHAIN: "chain",
  DEPTH_ZERO_SELF_SIGNED_CERT: "chain",
  CERT_SIGNATURE_FAILURE: "chain",
  CERT_CHAIN_TOO_LONG: "chain",
  INVALID_CA: "chain",
  INVALID_PURPOSE: "chain",
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: "no-certificate",
};

/**
 * Node completes a TLS handshake whose client chain failed verification and then
 * destroys the socket (never emitting secureConnection); the reason is on
 * `socket.authorizationError`, while the error itself only says "socket hang up".
 */
function handshakeRejection(err: Error & { code?: string }, socket: TLSSocket): HsmPoolError {
  const authorizationError = (socket as TLSSocket & { authorizationError?: Error | string })
    .authorizationError;
  const reason = (authorizationError ? String(authorizationError) : undefined) ?? err.code ?? "unknown";
  const check = OPENSSL_CHECKS[reason] ?? "handshake";
  const why =
    check === "no-certificate"
      ? "the client presented no certificate"
      : authorizationError
        ? `certificate refused by TLS (${reason})`
        : err.message;
  return new HsmPoolError("AttestationFailed", `peer rejected (${check}): TLS handshake failed: ${why}`, {
    check,
    reason,
  });
}

const remoteOf = (socket: TLSSocket): string => `${socket.remoteAddress}:${socket.remotePort}`;

function listen(server: TlsServer, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) =>
      reject(new HsmPoolError("ServiceUnavailable", `cannot listen on ${host}:${port}: ${e.message}`));
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Starts an attested gRPC server; resolves once it is listening. */
export async function startAttestedServer(opts: AttestedServerOptions): Promise<AttestedServer> {
  const anchor = trustAnchor(opts.vendorRoot);
  const verify = createPeerVerifier(opts.policy, anchor.der);
  const keyPem = tlsPrivateKeyPem(opts.identity);
  const host = opts.host ?? "127.0.0.1";
  const now = opts.now ?? (() => new Date());
  if (opts.services.length === 0) fail("BadParameter", "an attested server needs at least one service");

  const grpcServer = new grpc.Server(opts.grpcOptions);
  for (const s of opts.services) grpcServer.addService(s.definition, s.implementation);
  // The injected sockets are already TLS-terminated and verified: grpc-js must speak
  // plain HTTP/2 over them, hence insecure credentials for the injector only.
  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());

  const tlsServer = createTlsServer({
    key: keyPem,
    cert: opts.identity.certChainPem,
    ca: [anchor.pem],
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ["h2"],
    minVersion: "TLSv1.2",
    handshakeTimeout: opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
  });

  /** Accepted connections, so close() can cut the ones still open after the grace period. */
  const openSockets = new Set<TLSSocket>();
  const reportRejection = (error: HsmPoolError, remoteAddress: string) => {
    try {
      opts.onPeerRejected?.({ error, remoteAddress });
    } catch {
      // A failing observer must not keep a rejected socket alive.
    }
  };

  tlsServer.on("tlsClientError", (err, socket) => {
    reportRejection(handshakeRejection(err, socket), remoteOf(socket));
  });

  tlsServer.on("secureConnection", (socket: TLSSocket) => {
    const remoteAddress = remoteOf(socket);
    let peer: VerifiedPeer;
    try {
      peer = verify(chainFromPeerX509(socket.getPeerX509Certificate()), now());
    } catch (e) {
      socket.destroy();
      reportRejection(
        isHsmPoolError(e)
          ? e
          : new HsmPoolError("AttestationFailed", `peer rejected: ${String(e)}`, { check: "internal" }),
        remoteAddress,
      );
      return;
    }
    socket.on("error", () => {
      // Peers vanish (resets, chaos): the HTTP/2 session reports it to its calls.
    });
    openSockets.add(socket);
    socket.once("close", () => openSockets.delete(socket));
    rememberPeer(socket, peer);
    try {
      opts.onPeerAccepted?.(peer, remoteAddress);
    } catch {
      // Observers are diagnostics; the verified connection proceeds regardless.
    }
    injector.injectConnection(socket);
  });

  const bound = await listen(tlsServer, host, opts.port ?? 0);

  return {
    host,
    port: bound.port,
    address: `${host}:${bound.port}`,
    close: (graceMs = 1_000) =>
      new Promise<void>((resolve) => {
        tlsServer.close();
        injector.drain(graceMs);
        grpcServer.tryShutdown(() => {
          injector.destroy();
          resolve();
        });
        setTimeout(() => {
          for (const s of openSockets) s.destroy();
          grpcServer.forceShutdown();
          resolve();
        }, graceMs).unref();
      }),
  };
}
