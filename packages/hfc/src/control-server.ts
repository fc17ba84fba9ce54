/**
 * The HFC control API (proto/hfc.proto) on 127.0.0.1, gRPC without TLS. Loopback
 * only is the access control: the CLI on this machine is its one client, and the
 * API carries no secret (certificates it issues are public; the CSR keys stay with
 * their owners). Handlers are the controller's; this module only adapts errors.
 */
import * as grpc from "@grpc/grpc-js";
import { fail, isHsmPoolError } from "@hsmpool/errors";
import type { PoolStatus } from "@hsmpool/wire";
import { bindLoopback, hfcProto, toServiceError } from "@hsmpool/wire";

export interface ControlHandlers {
  issueNodeCert(nodeId: string, csrDer: Uint8Array): Promise<{ certDer: Uint8Array; caCertDer: Uint8Array }>;
  issueClientCert(csrDer: Uint8Array): Promise<{ certDer: Uint8Array; caCertDer: Uint8Array }>;
  status(): PoolStatus;
  kill(target: string, signal: string): Promise<{ nodeId: string; pid: number }>;
  restart(nodeId: string): Promise<void>;
  loseServer(serverId: string): Promise<{ serverId: string; fenced: string[] }>;
  partition(target: string): Promise<{ nodeId: string; isolated: string[] }>;
  healPartitions(): Promise<{ healed: string[] }>;
  upgrade(bundleDir: string, unchecked: boolean): Promise<{ svn: number; members: string[] }>;
  setHealing(paused: boolean): Promise<void>;
  /** Starts the shutdown; the reply goes out before the process exits. */
  shutdown(): void;
}

type Handler<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

type OnInternalError = (method: string, e: unknown) => void;

function bytes(value: unknown, field: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length === 0)
    fail("BadParameter", `${field} is required`, { field });
  return value;
}

export interface ControlServer {
  address: string;
  close(): Promise<void>;
}

export async function startControlServer(
  handlers: ControlHandlers,
  opts: { port?: number; onInternalError?: OnInternalError } = {},
): Promise<ControlServer> {
  const unary =
    <Req, Res>(fn: (req: Req) => Promise<Res> | Res): Handler<Req, Res> =>
    (call, callback) => {
      Promise.resolve()
        .then(() => fn(call.request))
        .then(
          (res) => callback(null, res),
          (e: unknown) => {
            if (!isHsmPoolError(e)) opts.onInternalError?.(call.getPath(), e);
            callback(toServiceError(e) as grpc.ServiceError);
          },
        );
    };
  const server = new grpc.Server();
  server.addService(hfcProto().FabricController.service, {
    IssueNodeCert: unary((req: { nodeId: string; csrDer: Buffer }) =>
      handlers.issueNodeCert(req.nodeId, bytes(req.csrDer, "csr_der")).then((r) => ({
        certDer: Buffer.from(r.certDer),
        caCertDer: Buffer.from(r.caCertDer),
      })),
    ),
    IssueClientCert: unary((req: { csrDer: Buffer }) =>
      handlers.issueClientCert(bytes(req.csrDer, "csr_der")).then((r) => ({
        certDer: Buffer.from(r.certDer),
        caCertDer: Buffer.from(r.caCertDer),
      })),
    ),
    Status: unary(() => handlers.status()),
    Kill: unary((req: { target: string; signal: string }) => handlers.kill(req.target, req.signal)),
    Restart: unary(async (req: { nodeId: string }) => {
      await handlers.restart(req.nodeId);
      return {};
    }),
    LoseServer: unary((req: { serverId: string }) => handlers.loseServer(req.serverId)),
    Partition: unary((req: { target: string }) => handlers.partition(req.target)),
    HealPartitions: unary(() => handlers.healPartitions()),
    Upgrade: unary((req: { bundleDir: string; unchecked: boolean }) =>
      handlers.upgrade(req.bundleDir, req.unchecked === true),
    ),
    SetHealing: unary(async (req: { paused: boolean }) => {
      await handlers.setHealing(req.paused === true);
      return {};
    }),
    Shutdown: unary(() => {
      // Reply first; the controller stops on the next turn of the event loop.
      setImmediate(() => handlers.shutdown());
      return {};
    }),
  });
  const boundPort = await bindLoopback(server, grpc.ServerCredentials.createInsecure(), opts.port);
  return {
    address: `127.0.0.1:${boundPort}`,
    close: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
