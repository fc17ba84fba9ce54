/**
 * The data-plane gRPC server: KeyVault and NodeControl (proto/pool.proto) on TLS
 * with the fabric-PKI certificate; clients must present a certificate from the same
 * fabric CA (mTLS, checked by the TLS stack before any call is read).
 */
import * as grpc from "@grpc/grpc-js";
import { HsmPoolError } from "@hsmpool/errors";
import { poolProto } from "@hsmpool/wire";
import type { DataPlaneCredentials } from "./node-cert.js";

export interface DataServer {
  readonly address: string;
  /** Stops accepting, lets running calls finish for up to `graceMs`, then cuts the rest. */
  close(graceMs: number): Promise<void>;
}

export async function startDataServer(opts: {
  address: string;
  credentials: DataPlaneCredentials;
  keyVault: grpc.UntypedServiceImplementation;
  status: grpc.handleUnaryCall<unknown, unknown>;
}): Promise<DataServer> {
  const { KeyVault, NodeControl } = poolProto();
  const server = new grpc.Server({ "grpc.max_receive_message_length": 16 * 1024 * 1024 });
  server.addService(KeyVault.service, opts.keyVault);
  server.addService(NodeControl.service, { Status: opts.status });
  const creds = grpc.ServerCredentials.createSsl(
    Buffer.from(opts.credentials.caPem),
    [
      {
        private_key: Buffer.from(opts.credentials.keyPem),
        cert_chain: Buffer.from(opts.credentials.certPem),
      },
    ],
    true,
  );
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(opts.address, creds, (err) =>
      err
        ? reject(new HsmPoolError("ServiceUnavailable", `cannot listen on ${opts.address}: ${err.message}`))
        : resolve(),
    ),
  );
  return {
    address: opts.address,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
