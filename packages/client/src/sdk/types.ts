/** The SDK's public shapes for proto/pool.proto's KeyVault (bytes as Uint8Array, times in Unix ms). */
import type { JsonWebKey } from "node:crypto";
import type { AuditRecord } from "@hsmpool/wire";

export interface KeyAttributes {
  enabled: boolean;
  /** 0 = unset */
  notBeforeMs: number;
  /** 0 = unset */
  expiresMs: number;
  createdMs: number;
  updatedMs: number;
}

/** The public view of one key version. Never carries private or secret material. */
export interface KeyBundle {
  name: string;
  version: number;
  kty: string;
  size: number;
  crv: string;
  ops: string[];
  attributes: KeyAttributes;
  tags: Record<string, string>;
  /** JWK of the public half (RSA/EC); null for oct keys. */
  publicJwk: JsonWebKey | null;
}

export interface CreateKeyOptions {
  name: string;
  kty: string;
  size?: number;
  crv?: string;
  ops?: string[];
  disabled?: boolean;
  notBeforeMs?: number;
  expiresMs?: number;
  tags?: Record<string, string>;
}

export interface KeyRef {
  name: string;
  /** 0 or absent: the latest version. */
  version?: number;
}

export interface SignResult {
  signature: Uint8Array;
  version: number;
  /** The node that ran the operation. */
  servedBy: string;
}

export interface EncryptOptions extends KeyRef {
  alg: string;
  plaintext: Uint8Array;
  /** CBC only; GCM IVs are always made by the HSM. */
  iv?: Uint8Array;
  /** GCM only. */
  aad?: Uint8Array;
}

export interface EncryptResult {
  ciphertext: Uint8Array;
  iv: Uint8Array;
  tag: Uint8Array;
  version: number;
}

export interface DecryptOptions extends KeyRef {
  alg: string;
  ciphertext: Uint8Array;
  iv?: Uint8Array;
  tag?: Uint8Array;
  aad?: Uint8Array;
}

export interface WrapResult {
  wrapped: Uint8Array;
  version: number;
}

/** A Managed HSM role definition (built-in or custom), as the REST API shapes it. */
export interface RoleDefinition {
  id: string;
  roleName: string;
  description: string;
  roleType: string;
  assignableScopes: string[];
  permissions: { actions: string[]; notActions: string[]; dataActions: string[]; notDataActions: string[] }[];
}

export interface RoleAssignment {
  id: string;
  /** "/", "/keys" or "/keys/<name>" */
  scope: string;
  roleDefinitionId: string;
  /** The principal's object id. */
  principalId: string;
}

/** One audit record (hash-chained inside the member's enclave): the shape `@hsmpool/wire` declares. */
export type { AuditRecord };

export interface MemberAudit {
  address: string;
  member: string;
  records: AuditRecord[];
}

export interface AuditVerdict {
  address: string;
  member: string;
  ok: boolean;
  records: number;
  firstBadSeq: number;
  reason: string;
}

/** A soft-deleted key: its latest version plus the deletion and scheduled purge dates. */
export interface DeletedKeyBundle {
  key: KeyBundle;
  deletedMs: number;
  scheduledPurgeMs: number;
  versions: number[];
}

/** Attribute changes of one version; absent fields stay, null clears a time limit. */
export interface UpdateKeyOptions {
  name: string;
  /** 0 or absent: the latest version. */
  version?: number;
  ops?: string[];
  enabled?: boolean;
  notBeforeMs?: number | null;
  expiresMs?: number | null;
  tags?: Record<string, string>;
}

/** The managed-HSM API's rotation policy JSON. */
export interface RotationPolicyJson {
  id?: string;
  lifetimeActions: {
    trigger: { timeAfterCreate?: string; timeBeforeExpiry?: string };
    action: { type: "Rotate" | "Notify" | string };
  }[];
  attributes?: { expiryTime?: string; created?: number; updated?: number };
}

/** Import from a private JWK, or (BYOK) from a `.byok` blob unwrapped by the named key-exchange key. */
export interface ImportKeyOptions {
  name: string;
  jwk?: JsonWebKey;
  byok?: string;
  kek?: KeyRef;
  ops?: string[];
  disabled?: boolean;
  notBeforeMs?: number;
  expiresMs?: number;
  tags?: Record<string, string>;
}

export interface PoolSetting {
  name: string;
  value: string;
}
