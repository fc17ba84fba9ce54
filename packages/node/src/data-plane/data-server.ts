/**
 * The data-plane server: one TLS port with the fabric-PKI certificate that speaks
 * two protocols, told apart by ALPN inside the handshake.
 * - `h2` with a client certificate from the fabric CA (mTLS): gRPC (KeyVault,
 *   NodeControl of proto/pool.proto).
 * - anything else — HTTP/1.1 (what the Azure SDK speaks) or HTTP/2 without a client
 *   certificate: the Key Vault REST API, whose authority is the bearer token, not a
 *   client certificate (as in the real service).
 * TLS is terminated here, inside the node process; the HFC's balancer only relays bytes.
 */
import { createServer as createHttpServer } from "node:http";
import { createServer as createHttp2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { HsmPoolError } from "@hsmpool/errors";
import { poolProto } from "@hsmpool/wire";
import { splitHostPort } from "../config.js";
import type { RestListener } from "../rest/rest-endpoint.js";
import type { CallsInFlight } from "./calls-in-flight.js";
import type { DataPlaneCredentials } from "./node-cert.js";

export interface DataServer {
  readonly address: string;
  /** Stops accepting, lets running calls finish for up to `graceMs`, then cuts the rest. */
  close(graceMs: number): Promise<void>;
}

/** Idle HTTP/1.1 keep-alive connections are closed after this long (the SDK reconnects). */
const HTTP_KEEP_ALIVE_MS = 30_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;

export async function startDataServer(opts: {
  address: string;
  credentials: DataPlaneCredentials;
  keyVault: grpc.UntypedServiceImplementation;
  securityDomain: grpc.UntypedServiceImplementation;
  accessControl: grpc.UntypedServiceImplementation;
  status: grpc.handleUnaryCall<unknown, unknown>;
  rest: RestListener;
  /** Counts the gRPC calls being served. */
  calls: CallsInFlight;
  /** The open crypto sessions: drained on close, as running calls are let finish. */
  sessions: { drain(): void };
}): Promise<DataServer> {
  const { KeyVault, NodeControl, SecurityDomain, AccessControl } = poolProto();
  const grpcServer = new grpc.Server({
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
    // Channelz keeps per-call counters and traces nobody reads here: cost on every call.
    "grpc.enable_channelz": 0,
    interceptors: [opts.calls.interceptor],
  });
  grpcServer.addService(KeyVault.service, opts.keyVault);
  grpcServer.addService(SecurityDomain.service, opts.securityDomain);
  grpcServer.addService(AccessControl.service, opts.accessControl);
  grpcServer.addService(NodeControl.service, { Status: opts.status });
  // Sockets arrive TLS-terminated and checked: grpc-js speaks plain HTTP/2 over them.
  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const httpServer = createHttpServer({ keepAliveTimeout: HTTP_KEEP_ALIVE_MS }, opts.rest);
  // gRPC without a fabric-CA client certificate is cut off as before, not answered by REST.
  const http2Server = createHttp2Server({}, (req, res) => {
    if (String(req.headers["content-type"] ?? "").startsWith("application/grpc"))
      req.stream.session?.destroy();
    else opts.rest(req, res);
  });

  const tlsServer = createTlsServer({
    key: opts.credentials.keyPem,
    cert: opts.credentials.certPem,
    ca: [opts.credentials.caPem],
    // Asked of everyone, required only for gRPC: REST clients authenticate with a bearer token.
    requestCert: true,
    rejectUnauthorized: false,
    ALPNProtocols: ["h2", "http/1.1"],
    minVersion: "TLSv1.2",
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    // Nagle stays on (no noDelay): turning it off measured slower on an idle machine, ES256
    // throughput -20 to -30% and create p50 +1 to 2 ms (the note of stop 16; 9a38151 reverted).
  });
  const openSockets = new Set<TLSSocket>();
  tlsServer.on("secureConnection", (socket: TLSSocket) => {
    socket.on("error", () => {
      // Clients vanish (resets, kills): the protocol layer above reports it to its calls.
    });
    openSockets.add(socket);
    socket.once("close", () => openSockets.delete(socket));
    if (socket.alpnProtocol === "h2" && socket.authorized) injector.injectConnection(socket);
    else if (socket.alpnProtocol === "h2") http2Server.emit("connection", socket);
    else httpServer.emit("connection", socket);
  });

  const { host, port } = splitHostPort(opts.address);
  await new Promise<AddressInfo>((resolve, reject) => {
    const onError = (e: Error) =>
      reject(new HsmPoolError("ServiceUnavailable", `cannot listen on ${opts.address}: ${e.message}`));
    tlsServer.once("error", onError);
    tlsServer.listen(port, host, () => {
      tlsServer.off("error", onError);
      resolve(tlsServer.address() as AddressInfo);
    });
  });

  return {
    address: opts.address,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        tlsServer.close();
        httpServer.closeIdleConnections();
        http2Server.close();
        injector.drain(graceMs);
        opts.sessions.drain();
        let pending = 2;
        const oneDone = () => {
          pending -= 1;
          if (pending === 0) resolve();
        };
        grpcServer.tryShutdown(() => {
          injector.destroy();
          oneDone();
        });
        httpServer.close(() => oneDone());
        setTimeout(() => {
          for (const s of openSockets) s.destroy();
          httpServer.closeAllConnections();
          grpcServer.forceShutdown();
          resolve();
        }, graceMs).unref();
      }),
  };
}
