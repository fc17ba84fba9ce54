/** fast-check arbitraries for pool commands and messages (valid by construction). */

import fc from "fast-check";
import type { KeyOp } from "../algorithms.js";
import { OPS_BY_TYPE } from "../algorithms.js";
import {
  type GenesisCommand,
  type KeyShape,
  keyFingerprint,
  type OwnershipCheckpoint,
  type PoolCertificate,
  type PoolCommand,
  type ProvisionalOwnershipCheckpoint,
  type SyncedOwnershipCheckpoint,
} from "../index.js";
import { base64UrlEncode } from "../jwk.js";
import type { OwnershipMessage } from "../messages.js";
import type { RotationPolicy } from "../rotation-policy.js";

export const identifier = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,30}$/);
export const fingerprint = fc.stringMatching(/^[0-9a-f]{64}$/);
export const keyName = fc.stringMatching(/^[0-9a-zA-Z-]{1,40}$/);
export const timeMs = fc.integer({ min: 0, max: 2 ** 45 });
const b64 = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map(base64UrlEncode);

export const p384Jwk = fc.record({
  kty: fc.constant("EC" as const),
  crv: fc.constant("P-384" as const),
  x: b64(48),
  y: b64(48),
});

export const certificate: fc.Arbitrary<PoolCertificate> = fc.record({
  role: fc.constantFrom("ownerRoot" as const, "partition" as const),
  poolId: identifier,
  subject: identifier,
  partitionId: identifier,
  publicKey: p384Jwk,
  issuerFingerprint: fingerprint,
  signature: fc.uint8Array({ minLength: 96, maxLength: 96 }),
});

export const shape: fc.Arbitrary<KeyShape> = fc.oneof(
  fc.record({
    kty: fc.constant("RSA" as const),
    size: fc.constantFrom(2048 as const, 3072 as const, 4096 as const),
  }),
  fc.record({
    kty: fc.constant("EC" as const),
    crv: fc.constantFrom("P-256" as const, "P-256K" as const, "P-384" as const, "P-521" as const),
  }),
  fc.record({
    kty: fc.constant("oct" as const),
    size: fc.constantFrom(128 as const, 192 as const, 256 as const),
  }),
);

/** A valid ops list: a non-empty subset without `import`, or (RSA) `import` alone as a BYOK KEK. */
export function opsFor(kty: KeyShape["kty"]): fc.Arbitrary<KeyOp[]> {
  const all = OPS_BY_TYPE[kty].filter((op) => op !== "import");
  const subsets = fc.subarray([...all], { minLength: 1 });
  return kty === "RSA" ? fc.oneof(subsets, fc.constant<KeyOp[]>(["import"])) : subsets;
}

const duration = fc.integer({ min: 8, max: 400 }).map((d) => `P${d}D`);

const NO_POLICY = {
  rotateAfter: null,
  rotateBeforeExpiry: null,
  notifyBeforeExpiry: null,
  expiresAfter: null,
};

export const rotationPolicy: fc.Arbitrary<RotationPolicy> = fc
  .oneof(
    fc.record({ rotateAfter: duration }),
    fc.integer({ min: 2, max: 60 }).map((before) => ({
      rotateBeforeExpiry: `P${before}D`,
      notifyBeforeExpiry: `P${before - 1}D`,
      expiresAfter: `P${before + 30}D`,
    })),
    fc
      .integer({ min: 8, max: 60 })
      .map((after) => ({ rotateAfter: `P${after}D`, expiresAfter: `P${after + 10}D` })),
  )
  .map((p) => ({ ...NO_POLICY, ...p }));

const versionRecord = shape.chain((s) =>
  fc.record({
    shape: fc.constant(s),
    ops: opsFor(s.kty),
    attributes,
    createdMs: timeMs,
    updatedMs: timeMs,
    publicJwk: publicJwkFor(s),
    wrappedMaterial: fc.uint8Array({ minLength: 1, maxLength: 100 }),
  }),
);

export const tags = fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 16 }), {
  maxKeys: 4,
});

export const attributes = fc
  .record({
    enabled: fc.boolean(),
    notBeforeMs: fc.option(timeMs, { nil: null }),
    lifetimeMs: fc.option(fc.integer({ min: 1, max: 2 ** 40 }), { nil: null }),
    tags,
  })
  .map(({ lifetimeMs, ...a }) => ({
    ...a,
    expiresMs: lifetimeMs === null ? null : (a.notBeforeMs ?? 0) + lifetimeMs,
  }));

function publicJwkFor(s: KeyShape): fc.Arbitrary<Record<string, string> | null> {
  if (s.kty === "oct") return fc.constant(null);
  if (s.kty === "RSA") return fc.record({ kty: fc.constant("RSA"), n: b64(64), e: fc.constant("AQAB") });
  return fc.record({ kty: fc.constant("EC"), crv: fc.constant(s.crv), x: b64(32), y: b64(32) });
}

export const createKey: fc.Arbitrary<PoolCommand> = shape.chain((s) =>
  fc.record({
    kind: fc.constant("createKey" as const),
    requestId: identifier,
    name: keyName,
    shape: fc.constant(s),
    ops: opsFor(s.kty),
    attributes,
    wrappedMaterial: fc.uint8Array({ minLength: 1, maxLength: 200 }),
    publicJwk: publicJwkFor(s),
    at: timeMs,
  }),
);

const timeChange = fc.option(fc.option(timeMs, { nil: null }), { nil: undefined });

export const updateKey: fc.Arbitrary<PoolCommand> = fc
  .record({
    requestId: identifier,
    name: keyName,
    version: fc.option(fc.integer({ min: 1, max: 1000 }), { nil: null }),
    ops: fc.option(
      fc.subarray(["sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey"] as KeyOp[], {
        minLength: 1,
      }),
      {
        nil: undefined,
      },
    ),
    enabled: fc.option(fc.boolean(), { nil: undefined }),
    notBeforeMs: timeChange,
    expiresMs: timeChange,
    tags: fc.option(tags, { nil: undefined }),
    at: timeMs,
  })
  .filter((u) => [u.ops, u.enabled, u.notBeforeMs, u.expiresMs, u.tags].some((v) => v !== undefined))
  .map(({ requestId, name, version, at, ...fields }) => ({
    kind: "updateKeyAttributes" as const,
    requestId,
    name,
    version,
    changes: Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)),
    at,
  }));

export const hostPort = fc
  .tuple(
    fc.oneof(fc.constant("127.0.0.1"), fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,20}$/)),
    fc.integer({ min: 1, max: 65535 }),
  )
  .map(([host, port]) => `${host}:${port}`);

export const registerMember = fc
  .record({
    kind: fc.constant("registerMember" as const),
    memberId: identifier,
    peerAddress: hostPort,
    dataAddress: hostPort,
    svn: fc.integer({ min: 0, max: 65535 }),
    replaces: fc.uniqueArray(identifier, { maxLength: 3 }),
    at: timeMs,
  })
  .map((c) => ({ ...c, replaces: c.replaces.filter((id) => id !== c.memberId) }));

export const command: fc.Arbitrary<PoolCommand> = fc.oneof(
  fc.record({
    kind: fc.constant("genesis" as const),
    poolId: identifier,
    ownerRootCert: certificate,
    dekFingerprint: fingerprint,
    poolKeyFingerprint: fingerprint,
    proposer: identifier,
    at: timeMs,
  }),
  createKey,
  updateKey,
  fc.record({ kind: fc.constant("deleteKey" as const), requestId: identifier, name: keyName, at: timeMs }),
  fc.record({
    kind: fc.constant("memberOwnershipSynced" as const),
    memberId: identifier,
    partitionCertFingerprint: fingerprint,
    dekFingerprint: fingerprint,
    at: timeMs,
  }),
  registerMember,
  fc.record({
    kind: fc.constant("rotateKey" as const),
    requestId: identifier,
    name: keyName,
    basedOnVersion: fc.integer({ min: 1, max: 1000 }),
    wrappedMaterial: fc.uint8Array({ minLength: 1, maxLength: 100 }),
    publicJwk: shape.chain(publicJwkFor),
    at: timeMs,
  }),
  fc.record({
    kind: fc.constantFrom("recoverKey" as const, "purgeKey" as const),
    requestId: identifier,
    name: keyName,
    at: timeMs,
  }),
  fc.record({
    kind: fc.constant("setSetting" as const),
    requestId: identifier,
    setting: fc.constantFrom("soft-delete-retention-days" as const, "purge-protection" as const),
    value: fc.constantFrom("7", "90", "on", "off", "30"),
    at: timeMs,
  }),
  fc.record({
    kind: fc.constant("setRotationPolicy" as const),
    requestId: identifier,
    name: keyName,
    policy: rotationPolicy,
    at: timeMs,
  }),
  fc
    .record({
      kind: fc.constant("restoreKey" as const),
      requestId: identifier,
      name: keyName,
      versions: fc.array(versionRecord, { minLength: 1, maxLength: 3 }),
      at: timeMs,
    })
    .map((c) => ({ ...c, versions: c.versions.map((v, i) => ({ ...v, name: c.name, version: i + 1 })) })),
);

const blob = fc.uint8Array({ minLength: 1, maxLength: 64 });

export const message: fc.Arbitrary<OwnershipMessage> = fc.oneof(
  fc.record({
    kind: fc.constant("ownershipRequest" as const),
    poolId: identifier,
    nonce: identifier,
    partitionId: identifier,
    transferPublicKey: p384Jwk,
  }),
  fc.record({
    kind: fc.constant("ownershipResponse" as const),
    nonce: identifier,
    ownerRootBlob: blob,
    sourcePartitionCert: certificate,
  }),
  fc.record({
    kind: fc.constant("dekRequest" as const),
    poolId: identifier,
    nonce: identifier,
    partitionCert: certificate,
  }),
  fc.record({
    kind: fc.constant("dekResponse" as const),
    nonce: identifier,
    dekBlob: blob,
    poolKeyBlob: blob,
    sourcePartitionCert: certificate,
  }),
  fc.record({
    kind: fc.constant("refused" as const),
    nonce: identifier,
    code: fc.constantFrom("Forbidden" as const, "OwnershipPending" as const, "ServiceUnavailable" as const),
    reason: fc.string({ maxLength: 100 }),
  }),
);

export const hsmKeyId = fc.stringMatching(/^[A-Za-z0-9._:-]{1,40}$/);

/** Field-consistent synced checkpoints (same pool everywhere, fingerprints of the key ids); signatures are random. */
export const syncedCheckpoint: fc.Arbitrary<SyncedOwnershipCheckpoint> = fc
  .record({
    poolId: identifier,
    nodeId: identifier,
    proposer: identifier,
    at: timeMs,
    ownerRootKeyId: hsmKeyId,
    dekKeyId: hsmKeyId,
    poolKeyKeyId: hsmKeyId,
    rootCert: certificate,
    partitionCert: certificate,
  })
  .map(({ poolId, nodeId, proposer, at, rootCert, partitionCert, ...keyIds }) => {
    const genesis: GenesisCommand = {
      kind: "genesis",
      poolId,
      ownerRootCert: { ...rootCert, role: "ownerRoot", poolId },
      dekFingerprint: keyFingerprint(keyIds.dekKeyId),
      poolKeyFingerprint: keyFingerprint(keyIds.poolKeyKeyId),
      proposer,
      at,
    };
    return {
      phase: "synced" as const,
      poolId,
      nodeId,
      genesis,
      ...keyIds,
      dekFingerprint: genesis.dekFingerprint,
      poolKeyFingerprint: genesis.poolKeyFingerprint,
      partitionCert: { ...partitionCert, role: "partition" as const, poolId, subject: nodeId },
    };
  });

/** Field-consistent provisional checkpoints (the member's own owner root, in its own partition). */
export const provisionalCheckpoint: fc.Arbitrary<ProvisionalOwnershipCheckpoint> = fc
  .record({
    poolId: identifier,
    nodeId: identifier,
    ownerRootKeyId: hsmKeyId,
    dekKeyId: hsmKeyId,
    poolKeyKeyId: hsmKeyId,
    rootCert: certificate,
    partitionCert: certificate,
  })
  .map(({ poolId, nodeId, rootCert, partitionCert, ...keyIds }) => ({
    phase: "ownershipProposed" as const,
    poolId,
    nodeId,
    ownerRootCert: {
      ...rootCert,
      role: "ownerRoot" as const,
      poolId,
      subject: nodeId,
      partitionId: partitionCert.partitionId,
    },
    ...keyIds,
    dekFingerprint: keyFingerprint(keyIds.dekKeyId),
    poolKeyFingerprint: keyFingerprint(keyIds.poolKeyKeyId),
    partitionCert: { ...partitionCert, role: "partition" as const, poolId, subject: nodeId },
  }));

/** Either kind of checkpoint. */
export const checkpoint: fc.Arbitrary<OwnershipCheckpoint> = fc.oneof(
  syncedCheckpoint,
  provisionalCheckpoint,
);
