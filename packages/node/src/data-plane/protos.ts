/**
 * Message shapes of proto/pool.proto (proto-loader output / input: camelCase
 * fields, int64/uint64 as JS numbers, bytes as Buffer) used by this package. The
 * loaders themselves are @hsmpool/wire's `poolProto` and `hfcProto`.
 */

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
