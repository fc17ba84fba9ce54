/**
 * proto/pool.proto (KeyVault + NodeControl, served here) and proto/hfc.proto (the
 * HFC's IssueNodeCert, called here), loaded with @grpc/proto-loader: camelCase
 * fields, int64/uint64 as JS numbers, bytes as Buffer, defaults filled in.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";

const protoPath = (name: string): string =>
  fileURLToPath(new URL(`../../../../proto/${name}`, import.meta.url));

const LOADER_OPTIONS = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

export interface PoolProto {
  keyVault: grpc.ServiceDefinition;
  nodeControl: grpc.ServiceDefinition;
  KeyVaultClient: grpc.ServiceClientConstructor;
  NodeControlClient: grpc.ServiceClientConstructor;
}

let pool: PoolProto | undefined;

export function poolProto(): PoolProto {
  if (pool) return pool;
  const pkg = grpc.loadPackageDefinition(loadSync(protoPath("pool.proto"), LOADER_OPTIONS)) as unknown as {
    hsmpool: {
      pool: { v1: { KeyVault: grpc.ServiceClientConstructor; NodeControl: grpc.ServiceClientConstructor } };
    };
  };
  const { KeyVault, NodeControl } = pkg.hsmpool.pool.v1;
  pool = {
    keyVault: KeyVault.service,
    nodeControl: NodeControl.service,
    KeyVaultClient: KeyVault,
    NodeControlClient: NodeControl,
  };
  return pool;
}

let hfc: grpc.ServiceClientConstructor | undefined;

/** The HFC's FabricController client constructor (this node only calls IssueNodeCert). */
export function fabricControllerClient(): grpc.ServiceClientConstructor {
  if (hfc) return hfc;
  const pkg = grpc.loadPackageDefinition(loadSync(protoPath("hfc.proto"), LOADER_OPTIONS)) as unknown as {
    hsmpool: { hfc: { v1: { FabricController: grpc.ServiceClientConstructor } } };
  };
  hfc = pkg.hsmpool.hfc.v1.FabricController;
  return hfc;
}

// Message shapes (proto-loader output / input) used by this package.

export interface KeyAttributesMessage {
  enabled: boolean;
  notBeforeMs: number;
  expiresMs: number;
  createdMs: number;
  updatedMs: number;
}

export interface KeyBundleMessage {
  name: string;
  version: number;
  kty: string;
  size: number;
  crv: string;
  ops: string[];
  attributes: KeyAttributesMessage;
  tags: Record<string, string>;
  publicJwkJson: string;
}

export interface CreateKeyRequestMessage {
  name: string;
  kty: string;
  size: number;
  crv: string;
  ops: string[];
  disabled: boolean;
  notBeforeMs: number;
  expiresMs: number;
  tags: Record<string, string>;
  requestId: string;
}
