/**
 * proto/hfc.proto and proto/pool.proto loaded with @grpc/proto-loader (camelCase
 * fields, 64-bit integers as JS numbers, bytes as Buffer, defaults filled in), and a
 * promise wrapper for unary calls.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";

/** This module sits directly in src/ and dist/ alike, so the repo's proto/ is three levels up. */
export const HFC_PROTO_PATH = fileURLToPath(new URL("../../../proto/hfc.proto", import.meta.url));
export const POOL_PROTO_PATH = fileURLToPath(new URL("../../../proto/pool.proto", import.meta.url));

const LOADER_OPTIONS = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
} as const;

export interface LoadedService {
  ctor: grpc.ServiceClientConstructor;
  service: grpc.ServiceDefinition;
}

let hfcLoaded: { FabricController: LoadedService } | undefined;
let poolLoaded:
  | {
      KeyVault: LoadedService;
      NodeControl: LoadedService;
      SecurityDomain: LoadedService;
      AccessControl: LoadedService;
    }
  | undefined;

function loaded(ctor: grpc.ServiceClientConstructor): LoadedService {
  return { ctor, service: ctor.service };
}

/** `hsmpool.hfc.v1.FabricController`. */
export function hfcProto(): { FabricController: LoadedService } {
  if (!hfcLoaded) {
    const pkg = grpc.loadPackageDefinition(loadSync(HFC_PROTO_PATH, LOADER_OPTIONS)) as unknown as {
      hsmpool: { hfc: { v1: { FabricController: grpc.ServiceClientConstructor } } };
    };
    hfcLoaded = { FabricController: loaded(pkg.hsmpool.hfc.v1.FabricController) };
  }
  return hfcLoaded;
}

/** `hsmpool.pool.v1.KeyVault`, `NodeControl` and `SecurityDomain`, `AccessControl`. */
export function poolProto(): {
  KeyVault: LoadedService;
  NodeControl: LoadedService;
  SecurityDomain: LoadedService;
  AccessControl: LoadedService;
} {
  if (!poolLoaded) {
    const pkg = grpc.loadPackageDefinition(loadSync(POOL_PROTO_PATH, LOADER_OPTIONS)) as unknown as {
      hsmpool: {
        pool: {
          v1: {
            KeyVault: grpc.ServiceClientConstructor;
            NodeControl: grpc.ServiceClientConstructor;
            SecurityDomain: grpc.ServiceClientConstructor;
            AccessControl: grpc.ServiceClientConstructor;
          };
        };
      };
    };
    poolLoaded = {
      KeyVault: loaded(pkg.hsmpool.pool.v1.KeyVault),
      NodeControl: loaded(pkg.hsmpool.pool.v1.NodeControl),
      SecurityDomain: loaded(pkg.hsmpool.pool.v1.SecurityDomain),
      AccessControl: loaded(pkg.hsmpool.pool.v1.AccessControl),
    };
  }
  return poolLoaded;
}

type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response?: unknown) => void,
) => grpc.ClientUnaryCall;

/** Calls a unary method of a proto-loader client; rejects with the grpc-js ServiceError (trailers included). */
export function unaryCall<Res>(
  client: grpc.Client,
  method: string,
  request: object,
  options: { deadlineMs?: number; metadata?: grpc.Metadata } = {},
): Promise<Res> {
  const fn = (client as unknown as Record<string, UnaryMethod>)[method];
  if (typeof fn !== "function") throw new Error(`no gRPC method ${method} on this client`);
  const callOptions: grpc.CallOptions =
    options.deadlineMs === undefined ? {} : { deadline: new Date(Date.now() + options.deadlineMs) };
  return new Promise<Res>((resolve, reject) => {
    fn.call(client, request, options.metadata ?? new grpc.Metadata(), callOptions, (err, response) => {
      if (err) reject(err);
      else resolve(response as Res);
    });
  });
}
