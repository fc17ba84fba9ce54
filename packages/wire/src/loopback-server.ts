import * as grpc from "@grpc/grpc-js";

/**
 * Binds a gRPC server on loopback and resolves with its port: `port` 0 (the default) lets the
 * kernel choose, which suits a server in this process; a port handed to a child process comes
 * from allocateLoopbackPort instead (ports.ts says why).
 */
export function bindLoopback(
  server: grpc.Server,
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
  port = 0,
): Promise<number> {
  return new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
  );
}
