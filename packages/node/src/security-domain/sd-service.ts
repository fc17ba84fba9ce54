/**
 * The security domain inside the TEE: activation (download), the recovery exchange
 * (init-recovery, upload) and the pool's SD-derived keys. Transport-free: each
 * operation is a function with typed input and output (gRPC handlers and a REST
 * facade call the same ones). The domain secret exists in plaintext only in this
 * process; in the log it is sealed under the pool key.
 */
import { createHash, createPublicKey, type KeyObject, randomBytes, randomUUID } from "node:crypto";
import { fail, HsmPoolError } from "@hsmpool/errors";
import type { KeySpec } from "@hsmpool/hsm";
import { type Enclave, generateIsolatedKeyPair } from "@hsmpool/platform";
import {
  type AccessOp,
  type AccessState,
  type ApplyOutcome,
  BuiltInRoleIds,
  encodeCommand,
  type KeyStore,
  type OwnershipInput,
  ROOT_SCOPE,
  type SecurityDomainRecord,
  validateAccessOp,
  validateP384Jwk,
} from "@hsmpool/pool";
import {
  createSecurityDomain,
  type DomainKeys,
  type DomainPayload,
  decodePayload,
  deriveDomainKeys,
  encodePayload,
  openUpload,
  parseUploadBlob,
  sealBackup,
} from "@hsmpool/security-domain";
import type { Logger } from "pino";
import type { PartitionAccess } from "../hsm/partition-access.js";
import { keyIdOfWrappedBlob } from "../keyvault/key-index.js";
import type { OwnershipSyncedInfo } from "../ownership/ownership-driver.js";
import type { HsmSession } from "../seams/index.js";
import { poolKeySealer } from "../storage/sealer.js";

/** The ownership keys a security domain escrows, by role. */
const ESCROWED_ROLES = ["ownerRoot", "dek", "poolKey"] as const;
const ESCROW_SPEC: KeySpec = { kty: "oct", size: 256, ops: ["wrapKey", "unwrapKey"] };
const SECRET_AAD = new TextEncoder().encode("hsmpool-sd-secret-v1");
const EXCHANGE_KEY_BITS = 3072;

export interface SecurityDomainContext {
  nodeId: string;
  poolId: string;
  recovering: boolean;
  store(): KeyStore;
  access: PartitionAccess;
  enclave: Enclave;
  /** This member's ownership keys once synced, else null. */
  synced(): OwnershipSyncedInfo | null;
  /** Throws NotLeader/NoQuorum unless this node is a primary that can write. */
  requireLeader(): void;
  /** Proposes a command and waits for its apply outcome. */
  commit(requestId: string, data: Uint8Array): Promise<ApplyOutcome>;
  /**
   * The recovering pool's launch-config binding: committed after an upload only when the
   * SD carries no tenant (an SD made before SDs carried one).
   */
  fallbackBinding(): BindTenantOp | null;
  logger: Logger;
  now(): number;
  sleep(ms: number): Promise<void>;
}

type BindTenantOp = Extract<AccessOp, { op: "bindTenant" }>;

/** Most initial administrators a tenant binding names (validateAccessOp's limit). */
const MAX_SD_ADMINISTRATORS = 16;

/** What an SD carries of the pool's identity: its tenant and the Administrators at `/`. */
export function sdBindings(poolId: string, access: AccessState): unknown {
  const administrators = access
    .assignments()
    .filter((a) => a.roleDefinitionId === BuiltInRoleIds.Administrator && a.scope === ROOT_SCOPE)
    .slice(0, MAX_SD_ADMINISTRATORS);
  return { poolId, tenant: access.tenant, administrators };
}

/** The tenant binding an uploaded SD gives the pool (BadParameter if malformed), or null if it carries none. */
export function bindingFromSd(bindings: unknown): BindTenantOp | null {
  const b = typeof bindings === "object" && bindings !== null ? (bindings as Record<string, unknown>) : {};
  if (b.tenant === undefined || b.tenant === null) return null;
  const op = validateAccessOp({ op: "bindTenant", tenant: b.tenant, assignments: b.administrators });
  return op.op === "bindTenant" ? op : null;
}

export interface DownloadInput {
  certificates: readonly string[];
  quorum: number;
}
export interface DownloadOutput {
  securityDomainJson: string;
  sdId: string;
}
export interface InitRecoveryOutput {
  exchangeKeyPem: string;
  quote: Uint8Array;
  nodeId: string;
}
export type SecurityDomainState = "provisioned" | "recovery" | "active";
export interface SecurityDomainStatus {
  state: SecurityDomainState;
  record: SecurityDomainRecord | null;
}

export class SecurityDomainService {
  private exchangeKey: { privateKey: KeyObject; publicPem: string } | null = null;
  /** An uploaded SD waiting for this primary's ownership keys to be taken from it. */
  private pendingUpload: DomainPayload | null = null;
  private cachedKeys: DomainKeys | null = null;

  constructor(private readonly ctx: SecurityDomainContext) {}

  status(): SecurityDomainStatus {
    const record = this.ctx.store().securityDomain;
    return { state: record ? "active" : this.ctx.recovering ? "recovery" : "provisioned", record };
  }

  /** NotActivated (saying what to do) until the SD exists; the gate for key and role operations. */
  requireActivated(): SecurityDomainRecord {
    return this.ctx.store().requireActivated(this.ctx.recovering);
  }

  /** `sd download`: made on the primary, committed through Raft; a second one is refused. */
  async download(input: DownloadInput): Promise<DownloadOutput> {
    if (this.ctx.recovering)
      fail(
        "Conflict",
        "this pool is in recovery mode: upload the old security domain instead of downloading one",
      );
    this.refuseIfActive("download");
    this.ctx.requireLeader();
    const synced =
      this.ctx.synced() ??
      fail("OwnershipPending", `${this.ctx.nodeId} has not finished ownership sync; retry shortly`);
    const session = this.ctx.access.session;
    const secret = randomBytes(32);
    try {
      const keys = deriveDomainKeys(secret);
      const escrowedKeys = await escrow(session, keys, synced);
      const payload = encodePayload({
        secret,
        escrowedKeys,
        bindings: sdBindings(this.ctx.poolId, this.ctx.store().access),
        initialBackup: sealBackup(keys, this.ctx.store().snapshot()),
      });
      const file = await createSecurityDomain({
        sdId: keys.sdId,
        poolId: this.ctx.poolId,
        createdAt: new Date(this.ctx.now()).toISOString(),
        certificates: input.certificates,
        quorum: input.quorum,
        payload,
      });
      payload.fill(0);
      await this.activate(
        keys.sdId,
        secret,
        file.quorum,
        file.shares.length,
        "download",
        synced.poolKeyKeyId,
      );
      this.ctx.logger.info(
        { sdId: keys.sdId, quorum: file.quorum, shares: file.shares.length },
        "security domain downloaded: pool active",
      );
      return { securityDomainJson: JSON.stringify(file, null, 2), sdId: keys.sdId };
    } finally {
      secret.fill(0);
    }
  }

  /** `sd init-recovery`: an exchange key made here, with a quote binding it to this enclave. */
  async initRecovery(): Promise<InitRecoveryOutput> {
    this.requireRecovering("init-recovery");
    this.ctx.requireLeader();
    if (!this.exchangeKey) {
      // Off the event loop: an RSA key generation that blocks it would cost this node its leadership.
      const { privateKey, publicKey } = await generateIsolatedKeyPair({
        type: "rsa",
        modulusLength: EXCHANGE_KEY_BITS,
      });
      this.exchangeKey = {
        privateKey,
        publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
      };
    }
    const spki = createHash("sha256")
      .update(createPublicKey(this.exchangeKey.publicPem).export({ type: "spki", format: "der" }))
      .digest();
    const reportData = Buffer.concat([spki, Buffer.alloc(32)]);
    return {
      exchangeKeyPem: this.exchangeKey.publicPem,
      quote: this.ctx.enclave.getQuote(reportData),
      nodeId: this.ctx.nodeId,
    };
  }

  /**
   * `sd upload`: opens the blob with the exchange key, hands the old ownership keys to
   * this primary's ownership machine (Genesis with the old owner root, DEK and pool key),
   * then commits activation. Refused, changing nothing, in an active pool.
   */
  async upload(blobJson: string): Promise<{ sdId: string }> {
    this.requireRecovering("upload");
    this.ctx.requireLeader();
    const exchange =
      this.exchangeKey ??
      fail(
        "BadParameter",
        `no exchange key on ${this.ctx.nodeId}: run hsmpool sd init-recovery first (on the current primary)`,
      );
    const { sdId, payload } = openUpload(blobJson, exchange.privateKey);
    const file = parseUploadBlob(blobJson).securityDomain;
    const domain = decodePayload(payload);
    payload.fill(0);
    for (const role of ESCROWED_ROLES)
      if (!domain.escrowedKeys[role]) fail("BadParameter", `the security domain holds no ${role} key`);
    const keys = deriveDomainKeys(domain.secret);
    if (keys.sdId !== sdId)
      fail("BadParameter", "the upload blob's sdId does not match the secret it carries");
    const binding =
      bindingFromSd(domain.bindings) ??
      this.ctx.fallbackBinding() ??
      fail("BadParameter", "the security domain names no tenant and this pool was launched without one");
    this.pendingUpload = domain;
    this.ctx.logger.info({ sdId }, "security domain uploaded: taking the old pool's identity");
    const synced = await this.waitForOwnership(120_000);
    const expectedOwnerRoot = keyIdOfWrappedBlob(domain.escrowedKeys.ownerRoot as Uint8Array);
    if (synced.ownerRootKeyId !== expectedOwnerRoot)
      fail(
        "Conflict",
        "this pool already has an owner root of its own: start a blank pool with hsmpool up --recover",
      );
    await this.bindTenant(binding);
    await this.activate(
      sdId,
      Buffer.from(domain.secret),
      file.quorum,
      file.shares.length,
      "upload",
      synced.poolKeyKeyId,
    );
    this.pendingUpload = null;
    return { sdId };
  }

  /**
   * The ownership machine's hsm.createOwnershipKeys in recovery mode: the old pool's keys
   * from the uploaded SD (imported under the escrow key, same key ids), or a retryable
   * failure while no SD has been uploaded to this node.
   */
  async recoveredOwnershipKeys(correlationId: string): Promise<OwnershipInput> {
    const domain = this.pendingUpload;
    if (!domain) {
      return {
        kind: "hsmFailed",
        correlationId,
        error: { code: "NotActivated", message: "recovery mode: waiting for the security domain upload" },
      };
    }
    const session = this.ctx.access.session;
    const keys = deriveDomainKeys(domain.secret);
    await session.importSecretKey(keys.escrowKeyId, ESCROW_SPEC, keys.escrowKey);
    try {
      const ids: Record<string, string> = {};
      for (const role of ESCROWED_ROLES)
        ids[role] = (
          await session.importWrapped(domain.escrowedKeys[role] as Uint8Array, keys.escrowKeyId)
        ).id;
      const ownerRoot = ids.ownerRoot as string;
      return {
        kind: "ownershipKeysCreated",
        correlationId,
        ownerRoot: {
          keyId: ownerRoot,
          publicKey: validateP384Jwk(await session.getPublicJwk(ownerRoot), "ownerRoot"),
        },
        dekKeyId: ids.dek as string,
        poolKeyKeyId: ids.poolKey as string,
      };
    } finally {
      await session.deleteKey(keys.escrowKeyId).catch(() => undefined);
    }
  }

  /** The active pool's SD-derived keys (backup protection, full and per key). NotActivated before. */
  async domainKeys(): Promise<DomainKeys> {
    const record = this.requireActivated();
    if (this.cachedKeys?.sdId === record.sdId) return this.cachedKeys;
    const synced =
      this.ctx.synced() ??
      fail("OwnershipPending", `${this.ctx.nodeId} has not finished ownership sync; retry shortly`);
    const secret = await poolKeySealer(this.ctx.access.session, synced.poolKeyKeyId).open(
      record.sealedSecret,
      SECRET_AAD,
    );
    try {
      this.cachedKeys = deriveDomainKeys(secret);
    } finally {
      secret.fill(0);
    }
    return this.cachedKeys;
  }

  private async activate(
    sdId: string,
    secret: Uint8Array,
    quorum: number,
    shareCount: number,
    origin: "download" | "upload",
    poolKeyKeyId: string,
  ): Promise<void> {
    const sealedSecret = await poolKeySealer(this.ctx.access.session, poolKeyKeyId).seal(secret, SECRET_AAD);
    const requestId = randomUUID();
    const outcome = await this.ctx.commit(
      requestId,
      encodeCommand({
        kind: "activateSecurityDomain",
        requestId,
        sdId,
        quorum,
        shareCount,
        sealedSecret,
        origin,
        at: this.ctx.now(),
      }),
    );
    if (outcome.kind === "rejected") throw new HsmPoolError(outcome.error.code, outcome.error.message);
  }

  /**
   * The old pool's tenant and administrators, committed before activation: the recovered
   * pool answers to the customer's tenant, never to the one in its launch config.
   */
  private async bindTenant(op: BindTenantOp): Promise<void> {
    if (this.ctx.store().access.tenant !== null) return; // an earlier attempt of this upload bound it
    const requestId = randomUUID();
    const outcome = await this.ctx.commit(
      requestId,
      encodeCommand({ kind: "access", requestId, op, at: this.ctx.now() }),
    );
    if (outcome.kind === "rejected") throw new HsmPoolError(outcome.error.code, outcome.error.message);
  }

  private refuseIfActive(what: string): void {
    const record = this.ctx.store().securityDomain;
    if (!record) return;
    fail(
      "Conflict",
      what === "download"
        ? `the security domain ${record.sdId} was already downloaded; a second download is refused: it would hand out another set of shares of the same secrets, outside the quorum the customer chose`
        : `the pool is already active (security domain ${record.sdId}): an SD ${what} into an active pool is refused`,
    );
  }

  private requireRecovering(what: string): void {
    this.refuseIfActive(what);
    if (!this.ctx.recovering)
      fail(
        "Conflict",
        `sd ${what} needs a blank pool in recovery mode (hsmpool up --recover); this pool is not one`,
      );
  }

  private async waitForOwnership(timeoutMs: number): Promise<OwnershipSyncedInfo> {
    const deadline = this.ctx.now() + timeoutMs;
    for (;;) {
      const synced = this.ctx.synced();
      if (synced) return synced;
      if (this.ctx.now() > deadline)
        fail("ServiceUnavailable", "the pool did not take the uploaded identity in time; retry sd upload");
      await this.ctx.sleep(100);
    }
  }
}

async function escrow(
  session: HsmSession,
  keys: DomainKeys,
  synced: OwnershipSyncedInfo,
): Promise<Record<string, Uint8Array>> {
  await session.importSecretKey(keys.escrowKeyId, ESCROW_SPEC, keys.escrowKey);
  try {
    return {
      ownerRoot: await session.exportWrapped(synced.ownerRootKeyId, keys.escrowKeyId),
      dek: await session.exportWrapped(synced.dekKeyId, keys.escrowKeyId),
      poolKey: await session.exportWrapped(synced.poolKeyKeyId, keys.escrowKeyId),
    };
  } finally {
    await session.deleteKey(keys.escrowKeyId).catch(() => undefined);
  }
}
