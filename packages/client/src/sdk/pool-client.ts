/**
 * PoolClient: the typed SDK for a pool's KeyVault data plane (proto/pool.proto).
 * mTLS with a fabric-PKI client certificate; requests go to the primary, found from
 * the HFC's pool status or a NotLeader answer's `hsmpool-leader-addr` trailer;
 * NotLeader / ServiceUnavailable / NoQuorum / OwnershipPending / Timeout are retried
 * within a bounded policy (retry.ts); every failure surfaces as an HsmPoolError.
 *
 * Failover: each attempt has its own deadline, shorter than the operation's (doubling
 * after each timed-out attempt at the same member, up to the call deadline), so a member that stopped
 * answering (SIGSTOP, a partition) holds a call for one attempt, not for the whole
 * call. A member whose attempt timed out is a suspect for a while: hints naming it are
 * not followed and rediscovery skips it, so the retry goes to a member that answers and
 * reaches the new primary as soon as one is elected. A suspect that is only slow (an
 * RSA-3072 create on a loaded machine) keeps its followers: once the suspicion is older
 * than the attempt deadline that raised it and every other answering member still names
 * it as leader, their hint wins over the suspicion (after a backoff), and while they name
 * it the polls back off, so the attempts last until it answers. A crypto operation (no effect, so
 * safe to ask twice) retries at every member that has not just failed at once: the
 * client need not guess which member stopped.
 */
import { type JsonWebKey, randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { fail, HsmPoolError } from "@hsmpool/errors";
import { poolResourceUri } from "@hsmpool/pool";
import {
  type CallFailure,
  CryptoSessionClient,
  DATA_PLANE_CHANNEL_OPTIONS,
  dataPlaneCredentials,
  FabricControllerClient,
  fromServiceError,
  isCryptoMethod,
  isRunning,
  type PoolStatus,
  poolProto,
  readHfcInfo,
  type TlsClientMaterial,
  unaryCall,
} from "@hsmpool/wire";
import { TenantDirectoryCredential, type TokenCredential } from "../tenant/credential.js";
import { issueClientIdentity } from "./identity.js";
import {
  DEFAULT_RETRY_POLICY,
  decideRetry,
  RETRYABLE_CODES,
  type RetryPolicy,
  validateRetryPolicy,
} from "./retry.js";
import { settleOnAnswer } from "./settle-on-answer.js";
import type {
  AuditRecord,
  AuditVerdict,
  CreateKeyOptions,
  DecryptOptions,
  DeletedKeyBundle,
  EncryptOptions,
  EncryptResult,
  ImportKeyOptions,
  KeyBundle,
  KeyRef,
  MemberAudit,
  PoolSetting,
  RoleAssignment,
  RoleDefinition,
  RotationPolicyJson,
  SignResult,
  UpdateKeyOptions,
  WrapResult,
} from "./types.js";

export const DEFAULT_CALL_DEADLINE_MS = 5000;
/**
 * First attempt's deadline (about one election timeout of the pool's Raft): long enough
 * for any key call of a live member on a loaded machine (a slower one gets a doubled
 * deadline on its next attempt, and writes repeat safely under their request id).
 */
export const DEFAULT_ATTEMPT_DEADLINE_MS = 1000;

/** A member's answer, or why it gave none (it is down, or refused). */
export type MemberAnswer<T> = T | { address: string; error: HsmPoolError };

export interface PoolClientOptions {
  tls: TlsClientMaterial;
  /**
   * Who the requests are from: every call carries `authorization: Bearer <token>` from it.
   * Default: the tenant directory principal of $HSMPOOL_TENANT / $HSMPOOL_PRINCIPAL.
   */
  credential?: TokenCredential;
  /** The pool's resource URI (the token audience; scope = resource + "/.default"). */
  resource: string;
  /** Data-plane addresses of the members (host:port). */
  endpoints: string[];
  /**
   * Members that hold ownership: crypto operations (sign, verify, encrypt, decrypt, wrap,
   * unwrap) go round-robin over them, since any synced member serves them (after its
   * ReadIndex barrier). Empty or absent: everything goes to the primary.
   */
  cryptoEndpoints?: string[];
  /** Where to send the first request (default: the first endpoint). */
  primaryAddress?: string;
  /** For primary discovery after a failure; without it the client walks `endpoints`. */
  hfc?: FabricControllerClient;
  retry?: Partial<RetryPolicy>;
  callDeadlineMs?: number;
  /**
   * Each attempt's first deadline; at most callDeadlineMs. Default: DEFAULT_ATTEMPT_DEADLINE_MS,
   * or callDeadlineMs when only that is given.
   */
  attemptDeadlineMs?: number;
  /** Injection points for tests. */
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  nowMs?: () => number;
}

export interface ConnectOptions {
  /** Run directory of a pool started with `hsmpool up` (reads hfc.json). */
  runDir?: string;
  /** Or the HFC control address directly. */
  hfcAddress?: string;
  /** Default: the tenant directory principal of $HSMPOOL_TENANT / $HSMPOOL_PRINCIPAL (`.hsmpool/tenant`, `admin`). */
  credential?: TokenCredential;
  retry?: Partial<RetryPolicy>;
  callDeadlineMs?: number;
  attemptDeadlineMs?: number;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface BundleMessage {
  name: string;
  version: number;
  kty: string;
  size: number;
  crv: string;
  ops: string[];
  attributes: KeyBundle["attributes"] | null;
  tags: Record<string, string>;
  publicJwkJson: string;
}

function toBundle(m: BundleMessage): KeyBundle {
  let publicJwk: JsonWebKey | null = null;
  if (m.publicJwkJson) {
    try {
      publicJwk = JSON.parse(m.publicJwkJson) as JsonWebKey;
    } catch {
      fail("IntegrityError", `the pool returned a malformed public JWK for key ${m.name}`);
    }
  }
  return {
    name: m.name,
    version: m.version,
    kty: m.kty,
    size: m.size,
    crv: m.crv,
    ops: [...m.ops],
    attributes: m.attributes ?? { enabled: false, notBeforeMs: 0, expiresMs: 0, createdMs: 0, updatedMs: 0 },
    tags: { ...m.tags },
    publicJwk,
  };
}

interface DeletedMessage {
  key: BundleMessage | null;
  deletedMs: number;
  scheduledPurgeMs: number;
  versions: number[];
}

function toDeleted(m: DeletedMessage): DeletedKeyBundle {
  if (!m.key) fail("IntegrityError", "the pool returned a deleted key without its bundle");
  return {
    key: toBundle(m.key),
    deletedMs: m.deletedMs,
    scheduledPurgeMs: m.scheduledPurgeMs,
    versions: [...m.versions],
  };
}

function parsePolicy(json: string, name: string): RotationPolicyJson | null {
  if (json === "") return null;
  try {
    return JSON.parse(json) as RotationPolicyJson;
  } catch {
    return fail("IntegrityError", `the pool returned a malformed rotation policy for key ${name}`);
  }
}

const bytes = (b: Buffer | Uint8Array | undefined): Uint8Array => new Uint8Array(b ?? new Uint8Array());
const buf = (b: Uint8Array | undefined): Buffer => Buffer.from(b ?? new Uint8Array());

/** Finds the pool of a run directory; a missing or dead HFC is a one-line NotFound. */
export async function hfcForRunDir(runDir: string): Promise<FabricControllerClient> {
  const info = await readHfcInfo(runDir);
  if (!info) fail("NotFound", `no pool is running in ${runDir} (start one with \`hsmpool up\`)`, { runDir });
  if (!isRunning(info.pid)) {
    fail(
      "NotFound",
      `no pool is running in ${runDir} (its HFC, pid ${info.pid}, is gone; \`hsmpool up\` starts it again)`,
      {
        runDir,
      },
    );
  }
  return new FabricControllerClient(info.controlAddress);
}

export class PoolClient {
  private readonly tlsCredentials: grpc.ChannelCredentials;
  private readonly channels = new Map<string, grpc.Client>();
  /** The open crypto session per member address. */
  private readonly sessions = new Map<string, CryptoSessionClient>();
  private readonly policy: RetryPolicy;
  private readonly deadlineMs: number;
  private readonly attemptDeadlineMs: number;
  /** Members whose attempt just timed out: until when they are suspects, and who vouched for them since. */
  private readonly suspects = new Map<string, Suspicion>();
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly nowMs: () => number;
  private readonly credential: TokenCredential;
  private readonly scope: string;
  /** The metadata carrying the last token the credential gave, and until when it serves without asking again (never logged). */
  private bearer: { token: string; metadata: grpc.Metadata; reuseUntilMs: number } | undefined;
  private endpoints: string[];
  private cryptoEndpoints: string[];
  private nextCrypto = 0;
  /** Members whose crypto attempt just failed, and until when they are skipped. */
  private readonly avoidUntil = new Map<string, number>();
  private target: string | undefined;
  private nextEndpoint = 0;

  constructor(private readonly opts: PoolClientOptions) {
    if (opts.endpoints.length === 0 && !opts.primaryAddress) {
      fail("BadParameter", "PoolClient needs at least one data-plane endpoint");
    }
    this.tlsCredentials = dataPlaneCredentials(opts.tls);
    this.policy = validateRetryPolicy({ ...DEFAULT_RETRY_POLICY, ...opts.retry });
    this.deadlineMs = opts.callDeadlineMs ?? DEFAULT_CALL_DEADLINE_MS;
    // A caller that chose a call deadline but no attempt deadline keeps whole-call attempts (long calls, e.g. 100k-key lists).
    const attempt =
      opts.attemptDeadlineMs ??
      (opts.callDeadlineMs !== undefined ? opts.callDeadlineMs : DEFAULT_ATTEMPT_DEADLINE_MS);
    this.attemptDeadlineMs = Math.min(this.deadlineMs, attempt);
    this.random = opts.random ?? Math.random;
    this.sleep = opts.sleep ?? defaultSleep;
    this.nowMs = opts.nowMs ?? Date.now;
    this.credential = opts.credential ?? TenantDirectoryCredential.fromEnvironment();
    this.scope = `${opts.resource}/.default`;
    this.endpoints = [...opts.endpoints];
    this.cryptoEndpoints = [...(opts.cryptoEndpoints ?? [])];
    this.target = opts.primaryAddress ?? opts.endpoints[0];
  }

  /** Connects to the pool of a run directory (or HFC address): client certificate, members, primary. */
  static async connect(opts: ConnectOptions): Promise<PoolClient> {
    const hfc =
      opts.hfcAddress !== undefined
        ? new FabricControllerClient(opts.hfcAddress)
        : await hfcForRunDir(opts.runDir ?? fail("BadParameter", "connect needs runDir or hfcAddress"));
    try {
      const tls = await issueClientIdentity(hfc);
      const status = await hfc.status();
      return new PoolClient({
        tls,
        ...(opts.credential ? { credential: opts.credential } : {}),
        resource: poolResourceUri(status.poolId),
        endpoints: status.members.map((m) => m.dataAddress),
        cryptoEndpoints: syncedAddressesOf(status),
        ...(primaryAddressOf(status) ? { primaryAddress: primaryAddressOf(status) } : {}),
        hfc,
        ...(opts.retry ? { retry: opts.retry } : {}),
        ...(opts.callDeadlineMs ? { callDeadlineMs: opts.callDeadlineMs } : {}),
        ...(opts.attemptDeadlineMs ? { attemptDeadlineMs: opts.attemptDeadlineMs } : {}),
      });
    } catch (e) {
      hfc.close();
      throw e;
    }
  }

  /** The data-plane address requests currently go to. */
  get currentTarget(): string | undefined {
    return this.target;
  }

  close(): void {
    for (const s of this.sessions.values()) s.cancel();
    this.sessions.clear();
    for (const c of this.channels.values()) c.close();
    this.channels.clear();
    this.opts.hfc?.close();
  }

  // ---------------------------------------------------------------- key management

  async createKey(req: CreateKeyOptions): Promise<KeyBundle> {
    const m = await this.invoke<BundleMessage>("CreateKey", {
      name: req.name,
      kty: req.kty,
      size: req.size ?? 0,
      crv: req.crv ?? "",
      ops: req.ops ?? [],
      disabled: req.disabled ?? false,
      notBeforeMs: req.notBeforeMs ?? 0,
      expiresMs: req.expiresMs ?? 0,
      tags: req.tags ?? {},
      // One id for every attempt of this logical request: a retried create is not a second create.
      requestId: randomUUID(),
    });
    return toBundle(m);
  }

  async getKey(name: string, version = 0): Promise<KeyBundle> {
    return toBundle(await this.invoke<BundleMessage>("GetKey", { name, version }));
  }

  async listKeys(): Promise<KeyBundle[]> {
    const r = await this.invoke<{ keys: BundleMessage[] }>("ListKeys", {});
    return r.keys.map(toBundle);
  }

  async deleteKey(name: string): Promise<void> {
    await this.invoke("DeleteKey", { name, requestId: randomUUID() });
  }

  // ---------------------------------------------------------------- versions and lifecycle

  async rotateKey(name: string): Promise<KeyBundle> {
    return toBundle(await this.invoke<BundleMessage>("RotateKey", { name, requestId: randomUUID() }));
  }

  async listKeyVersions(name: string): Promise<KeyBundle[]> {
    const r = await this.invoke<{ keys: BundleMessage[] }>("ListKeyVersions", { name });
    return r.keys.map(toBundle);
  }

  async updateKey(req: UpdateKeyOptions): Promise<KeyBundle> {
    const m = await this.invoke<BundleMessage>("UpdateKey", {
      name: req.name,
      version: req.version ?? 0,
      ops: req.ops ?? [],
      ...(req.enabled !== undefined ? { enabled: req.enabled } : {}),
      ...(req.notBeforeMs !== undefined ? { notBeforeMs: req.notBeforeMs ?? 0 } : {}),
      ...(req.expiresMs !== undefined ? { expiresMs: req.expiresMs ?? 0 } : {}),
      tags: req.tags ?? {},
      setTags: req.tags !== undefined,
      requestId: randomUUID(),
    });
    return toBundle(m);
  }

  async listDeletedKeys(): Promise<DeletedKeyBundle[]> {
    const r = await this.invoke<{ keys: DeletedMessage[] }>("ListDeletedKeys", {});
    return r.keys.map(toDeleted);
  }

  async getDeletedKey(name: string): Promise<DeletedKeyBundle> {
    return toDeleted(await this.invoke<DeletedMessage>("GetDeletedKey", { name, version: 0 }));
  }

  async recoverDeletedKey(name: string): Promise<KeyBundle> {
    return toBundle(await this.invoke<BundleMessage>("RecoverDeletedKey", { name, requestId: randomUUID() }));
  }

  async purgeDeletedKey(name: string): Promise<void> {
    await this.invoke("PurgeDeletedKey", { name, requestId: randomUUID() });
  }

  async setRotationPolicy(name: string, policy: RotationPolicyJson): Promise<RotationPolicyJson> {
    const r = await this.invoke<{ policyJson: string }>("SetRotationPolicy", {
      name,
      policyJson: JSON.stringify(policy),
      requestId: randomUUID(),
    });
    return (
      parsePolicy(r.policyJson, name) ?? fail("IntegrityError", `the pool returned no policy for ${name}`)
    );
  }

  /** The key's rotation policy; null when it has none. */
  async getRotationPolicy(name: string): Promise<RotationPolicyJson | null> {
    const r = await this.invoke<{ policyJson: string }>("GetRotationPolicy", { name, version: 0 });
    return parsePolicy(r.policyJson, name);
  }

  /** Every version of a key as a blob only a pool of the same security domain can restore. */
  async backupKey(name: string): Promise<Uint8Array> {
    return bytes((await this.invoke<{ value: Buffer }>("BackupKey", { name, version: 0 })).value);
  }

  async restoreKey(backup: Uint8Array): Promise<KeyBundle> {
    return toBundle(
      await this.invoke<BundleMessage>("RestoreKey", { value: buf(backup), requestId: randomUUID() }),
    );
  }

  async importKey(req: ImportKeyOptions): Promise<KeyBundle> {
    const m = await this.invoke<BundleMessage>("ImportKey", {
      name: req.name,
      jwkJson: req.jwk ? JSON.stringify(req.jwk) : "",
      byokJson: req.byok ?? "",
      kekName: req.kek?.name ?? "",
      kekVersion: req.kek?.version ?? 0,
      ops: req.ops ?? [],
      disabled: req.disabled ?? false,
      notBeforeMs: req.notBeforeMs ?? 0,
      expiresMs: req.expiresMs ?? 0,
      tags: req.tags ?? {},
      requestId: randomUUID(),
    });
    return toBundle(m);
  }

  /** `count` (1..128) random bytes from a pool member's HSM. */
  async getRandomBytes(count: number): Promise<Uint8Array> {
    return bytes((await this.invoke<{ value: Buffer }>("GetRandomBytes", { count })).value);
  }

  async listSettings(): Promise<PoolSetting[]> {
    return (await this.invoke<{ settings: PoolSetting[] }>("ListSettings", {})).settings;
  }

  async getSetting(name: string): Promise<PoolSetting> {
    return this.invoke<PoolSetting>("GetSetting", { name });
  }

  async updateSetting(name: string, value: string): Promise<PoolSetting> {
    return this.invoke<PoolSetting>("UpdateSetting", { name, value, requestId: randomUUID() });
  }

  // ---------------------------------------------------------------- crypto

  async sign(key: KeyRef & { alg: string; data: Uint8Array }): Promise<SignResult> {
    const r = await this.invoke<{ signature: Buffer; version: number; servedBy: string }>("Sign", {
      name: key.name,
      version: key.version ?? 0,
      alg: key.alg,
      data: buf(key.data),
    });
    return { signature: bytes(r.signature), version: r.version, servedBy: r.servedBy };
  }

  async verify(key: KeyRef & { alg: string; data: Uint8Array; signature: Uint8Array }): Promise<boolean> {
    const r = await this.invoke<{ valid: boolean }>("Verify", {
      name: key.name,
      version: key.version ?? 0,
      alg: key.alg,
      data: buf(key.data),
      signature: buf(key.signature),
    });
    return r.valid;
  }

  async encrypt(req: EncryptOptions): Promise<EncryptResult> {
    const r = await this.invoke<{ ciphertext: Buffer; iv: Buffer; tag: Buffer; version: number }>("Encrypt", {
      name: req.name,
      version: req.version ?? 0,
      alg: req.alg,
      plaintext: buf(req.plaintext),
      iv: buf(req.iv),
      aad: buf(req.aad),
    });
    return { ciphertext: bytes(r.ciphertext), iv: bytes(r.iv), tag: bytes(r.tag), version: r.version };
  }

  async decrypt(req: DecryptOptions): Promise<Uint8Array> {
    const r = await this.invoke<{ plaintext: Buffer }>("Decrypt", {
      name: req.name,
      version: req.version ?? 0,
      alg: req.alg,
      ciphertext: buf(req.ciphertext),
      iv: buf(req.iv),
      tag: buf(req.tag),
      aad: buf(req.aad),
    });
    return bytes(r.plaintext);
  }

  async wrapKey(req: KeyRef & { alg: string; key: Uint8Array }): Promise<WrapResult> {
    const r = await this.invoke<{ wrapped: Buffer; version: number }>("WrapKey", {
      name: req.name,
      version: req.version ?? 0,
      alg: req.alg,
      key: buf(req.key),
    });
    return { wrapped: bytes(r.wrapped), version: r.version };
  }

  async unwrapKey(req: KeyRef & { alg: string; wrapped: Uint8Array }): Promise<Uint8Array> {
    const r = await this.invoke<{ key: Buffer }>("UnwrapKey", {
      name: req.name,
      version: req.version ?? 0,
      alg: req.alg,
      wrapped: buf(req.wrapped),
    });
    return bytes(r.key);
  }

  // ---------------------------------------------------------------- security domain, backup, restore

  /** `sd download`: the security-domain file (JSON text). Not idempotent: a long deadline, never a blind retry. */
  async downloadSecurityDomain(req: {
    certificates: string[];
    quorum: number;
  }): Promise<{ securityDomainJson: string; sdId: string }> {
    return this.invoke(
      "Download",
      { certificatesPem: req.certificates, quorum: req.quorum },
      "SecurityDomain",
      SD_DEADLINE_MS,
    );
  }

  async initRecovery(): Promise<{ exchangeKeyPem: string; quote: Uint8Array; nodeId: string }> {
    const r = await this.invoke<{ exchangeKeyPem: string; quote: Buffer; nodeId: string }>(
      "InitRecovery",
      {},
      "SecurityDomain",
      SD_DEADLINE_MS,
    );
    return { exchangeKeyPem: r.exchangeKeyPem, quote: bytes(r.quote), nodeId: r.nodeId };
  }

  async uploadSecurityDomain(uploadBlobJson: string): Promise<{ sdId: string }> {
    return this.invoke("Upload", { uploadBlobJson }, "SecurityDomain", SD_DEADLINE_MS);
  }

  async securityDomainStatus(): Promise<SecurityDomainStatus> {
    const r = await this.invoke<SecurityDomainStatus & { activatedMs: number }>(
      "Status",
      {},
      "SecurityDomain",
    );
    return {
      state: r.state,
      sdId: r.sdId,
      quorum: r.quorum,
      shareCount: r.shareCount,
      activatedMs: r.activatedMs,
    };
  }

  async startBackup(storageUrl: string): Promise<BackupJob> {
    return jobOf(await this.invoke("StartBackup", { storageUrl }, "SecurityDomain"));
  }

  async startRestore(req: { storageUrl: string; folder: string; keyName?: string }): Promise<BackupJob> {
    return jobOf(
      await this.invoke(
        "StartRestore",
        { storageUrl: req.storageUrl, folder: req.folder, keyName: req.keyName ?? "" },
        "SecurityDomain",
      ),
    );
  }

  async getJob(jobId: string): Promise<BackupJob> {
    return jobOf(await this.invoke("GetJob", { jobId }, "SecurityDomain"));
  }

  // ---------------------------------------------------------------- local RBAC

  async listRoleDefinitions(): Promise<RoleDefinition[]> {
    const r = await this.invoke<{ definitions: RoleDefinition[] }>(
      "ListRoleDefinitions",
      {},
      "AccessControl",
    );
    return r.definitions;
  }

  async putRoleDefinition(definition: RoleDefinition): Promise<RoleDefinition> {
    return this.invoke<RoleDefinition>(
      "PutRoleDefinition",
      { definition, requestId: randomUUID() },
      "AccessControl",
    );
  }

  async deleteRoleDefinition(id: string): Promise<void> {
    await this.invoke("DeleteRoleDefinition", { id, requestId: randomUUID() }, "AccessControl");
  }

  /** Assignments at, above or below `scope` (every assignment when omitted). */
  async listRoleAssignments(scope = ""): Promise<RoleAssignment[]> {
    const r = await this.invoke<{ assignments: RoleAssignment[] }>(
      "ListRoleAssignments",
      { scope },
      "AccessControl",
    );
    return r.assignments;
  }

  async putRoleAssignment(assignment: RoleAssignment): Promise<RoleAssignment> {
    return this.invoke<RoleAssignment>(
      "PutRoleAssignment",
      { assignment, requestId: randomUUID() },
      "AccessControl",
    );
  }

  async deleteRoleAssignment(id: string): Promise<void> {
    await this.invoke("DeleteRoleAssignment", { id, requestId: randomUUID() }, "AccessControl");
  }

  /** Commits a new JWKS for the pool's tenant (Administrator; after `hsmpool tenant rotate-key`). */
  async rolloverJwks(jwks: { keys: object[] }): Promise<void> {
    await this.invoke(
      "RolloverJwks",
      { jwksJson: JSON.stringify(jwks), requestId: randomUUID() },
      "AccessControl",
    );
  }

  // ---------------------------------------------------------------- audit (per member)

  /** Each member's audit records after `afterSeq` (members are asked directly, not through the primary). */
  async readAudit(afterSeq: Record<string, number> = {}): Promise<MemberAnswer<MemberAudit>[]> {
    return this.everyMember(async (address) => {
      const r = await this.callAt<{ member: string; records: string[] }>(address, "ReadAudit", {
        afterSeq: afterSeq[address] ?? 0,
        max: 1000,
      });
      return { address, member: r.member, records: r.records.map((line) => JSON.parse(line) as AuditRecord) };
    });
  }

  /** Each member's verdict on its own audit chain (checked inside its enclave). */
  async verifyAudit(): Promise<MemberAnswer<AuditVerdict>[]> {
    return this.everyMember(async (address) => ({
      address,
      ...(await this.callAt<Omit<AuditVerdict, "address">>(address, "VerifyAudit", {})),
    }));
  }

  private async everyMember<T>(fn: (address: string) => Promise<T>): Promise<MemberAnswer<T>[]> {
    if (this.opts.hfc) {
      const status = await this.opts.hfc.status(2000).catch(() => undefined);
      if (status) this.endpoints = status.members.map((m) => m.dataAddress);
    }
    return Promise.all(
      this.endpoints.map((address) =>
        fn(address).catch((e: unknown) => ({
          address,
          error: fromServiceError(e, `audit at ${address}`).error,
        })),
      ),
    );
  }

  private async callAt<Res>(address: string, method: string, request: object): Promise<Res> {
    return unaryCall<Res>(this.channel(address, "AccessControl"), method, request, {
      deadlineMs: this.deadlineMs,
      metadata: await this.authorization(),
    });
  }

  // ---------------------------------------------------------------- routing and retries

  /**
   * The crypto session to `address` carrying `metadata`'s token: the open one, or a new one
   * when it broke or the token changed (the old one is ended: what it carries still gets
   * its answers). Crypto operations go as messages on it instead of unary calls.
   */
  private session(address: string, metadata: grpc.Metadata): CryptoSessionClient {
    let s = this.sessions.get(address);
    if (s === undefined || !s.usable || s.metadata !== metadata) {
      s?.end();
      s = new CryptoSessionClient(this.channel(address, "KeyVault"), metadata, address);
      this.sessions.set(address, s);
    }
    return s;
  }

  private channel(address: string, service: DataPlaneService): grpc.Client {
    const slot = `${service} ${address}`;
    let c = this.channels.get(slot);
    if (!c) {
      // A call settles on its answer, not on the member's trailers a write later (settle-on-answer.ts).
      c = new (poolProto()[service].ctor)(address, this.tlsCredentials, {
        ...DATA_PLANE_CHANNEL_OPTIONS,
        interceptors: [settleOnAnswer],
      });
      this.channels.set(slot, c);
    }
    return c;
  }

  /**
   * Where to go next after a failure at `failed`: the HFC's primary unless it is the one
   * that just failed or a suspect, else the next member that is neither.
   */
  private async rediscover(failed: string): Promise<string> {
    if (this.opts.hfc) {
      const status = await this.opts.hfc.status(1000).catch(() => undefined);
      if (status) {
        this.endpoints = status.members.map((m) => m.dataAddress);
        this.cryptoEndpoints = syncedAddressesOf(status);
        const primary = primaryAddressOf(status);
        if (primary && primary !== failed && !this.isSuspect(primary)) return primary;
      }
    }
    // Prefer another member that answers; then the one that just answered (no leader yet); a suspect last.
    const others = this.endpoints.filter((a) => a !== failed);
    const answering = others.filter((a) => !this.isSuspect(a));
    if (answering.length === 0 && failed !== "" && !this.isSuspect(failed)) return failed;
    const pool = answering.length > 0 ? answering : others.length > 0 ? others : this.endpoints;
    const next = pool[this.nextEndpoint++ % pool.length];
    return next ?? failed;
  }

  /**
   * `authorization: Bearer <token>` for this pool. The metadata of the current token is
   * built once and shared by the calls that carry it (grpc-js copies a call's metadata
   * before adding to it); a new token gets new metadata. As Azure's bearer-token policy
   * does, the credential is asked again only once the token is within
   * TOKEN_REFRESH_WINDOW_MS of its expiry (a call then waits for it); until then the
   * call takes the metadata it has, with no promise in its way.
   */
  private authorization(): grpc.Metadata | Promise<grpc.Metadata> {
    if (this.bearer !== undefined && this.nowMs() < this.bearer.reuseUntilMs) return this.bearer.metadata;
    return this.freshAuthorization();
  }

  private async freshAuthorization(): Promise<grpc.Metadata> {
    const token = await this.credential.getToken(this.scope);
    // No token: the request goes without one and the pool answers Unauthenticated (its challenge).
    if (!token) return NO_AUTHORIZATION;
    const reuseUntilMs = token.expiresOnTimestamp - TOKEN_REFRESH_WINDOW_MS;
    if (this.bearer?.token !== token.token) {
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${token.token}`);
      this.bearer = { token: token.token, metadata, reuseUntilMs };
    } else this.bearer.reuseUntilMs = reuseUntilMs;
    return this.bearer.metadata;
  }

  private isSuspect(address: string): boolean {
    const s = this.suspects.get(address);
    return s !== undefined && this.nowMs() < s.sinceMs + 2 * s.deadlineMs;
  }

  /**
   * `member` answered NotLeader naming `suspect` as its leader. A Raft follower forgets a
   * leader whose heartbeats stopped for an election timeout (it becomes a (pre-)candidate), so
   * a stopped primary is not named for long. Once the suspicion is older than the attempt
   * deadline that raised it, and every other member that is not a suspect itself has named
   * the suspect since, it is slow, not stopped: the suspicion is dropped and true returned
   * (follow the hint). Earlier vouches prove nothing (the followers may not have timed out yet).
   */
  private vouch(suspect: string, member: string): boolean {
    const s = this.suspects.get(suspect);
    if (s === undefined || this.nowMs() - s.sinceMs < s.deadlineMs) return false;
    s.vouchers.add(member);
    const others = this.endpoints.filter((a) => a !== suspect && !this.isSuspect(a));
    if (!others.every((a) => s.vouchers.has(a))) return false;
    this.suspects.delete(suspect);
    return true;
  }

  /** The next synced member for a crypto operation (skipping ones that just failed or timed out), if any. */
  private cryptoEndpoint(): string | undefined {
    const now = this.nowMs();
    for (let i = 0; i < this.cryptoEndpoints.length; i++) {
      const address = this.cryptoEndpoints[this.nextCrypto++ % this.cryptoEndpoints.length];
      if (address !== undefined && (this.avoidUntil.get(address) ?? 0) <= now && !this.isSuspect(address))
        return address;
    }
    return undefined;
  }

  /**
   * Members a spread crypto operation's retry asks at once: every synced member that has not
   * just failed one (all of them if each has). The operation changes nothing, so asking
   * several is harmless, and the caller does not have to guess which one stopped answering.
   * Without synced members crypto follows the primary like any call (and its redirects).
   */
  private hedgeTargets(): string[] {
    const now = this.nowMs();
    const fresh = this.cryptoEndpoints.filter(
      (a) => (this.avoidUntil.get(a) ?? 0) <= now && !this.isSuspect(a),
    );
    return fresh.length > 0 ? fresh : this.cryptoEndpoints;
  }

  /**
   * The first success among attempts at several members. A refusal not worth a retry is
   * an answer too (a member serves crypto only after its ReadIndex barrier, so its verdict
   * holds) and settles it at once; when every attempt failed worth a retry, the failure
   * reported is one that is not a timeout if there is one (it says more). A member still
   * silent when another answered gets no crypto operation until its attempt settles: it
   * may be the one that stopped.
   */
  private firstAnswer<Res>(addresses: string[], attemptAt: (address: string) => Promise<Res>): Promise<Res> {
    const pending = new Set(addresses);
    const legs = addresses.map((address) =>
      attemptAt(address).finally(() => {
        pending.delete(address);
        // A failure worth a retry has set a finite time to avoid it; any other answer clears the wait.
        if (this.avoidUntil.get(address) === Number.POSITIVE_INFINITY) this.avoidUntil.delete(address);
      }),
    );
    return new Promise<Res>((resolve, reject) => {
      let failed = 0;
      let reported: AttemptFailure | undefined;
      for (const leg of legs) {
        leg.then(
          (res) => {
            for (const silent of pending) this.avoidUntil.set(silent, Number.POSITIVE_INFINITY);
            resolve(res);
          },
          (e: unknown) => {
            if (!(e instanceof AttemptFailure) || !RETRYABLE_CODES.has(e.failure.error.code))
              return reject(e);
            if (reported === undefined || reported.failure.error.code === "Timeout") reported = e;
            if (++failed === legs.length) reject(reported);
          },
        );
      }
    });
  }

  private async invoke<Res>(
    method: string,
    request: object,
    service: DataPlaneService = "KeyVault",
    /** Given: every attempt may take this long (long-running calls); else attempt deadlines apply. */
    callDeadlineMs?: number,
  ): Promise<Res> {
    const startedMs = this.nowMs();
    const crypto = isCryptoMethod(method);
    let previousWasRedirect = false;
    /** Answers in a row that named a suspect as leader (their polls back off: retry.ts suspectNamed). */
    let suspectNamed = 0;
    /** Timed-out attempts per member in this call: its next attempt there gets a doubled deadline. */
    const timeouts = new Map<string, number>();
    /** One attempt at one member; a failure is noted (timeout, suspect, crypto member to avoid) and thrown as an AttemptFailure. */
    const attemptAt = async (address: string): Promise<Res> => {
      const deadlineMs =
        callDeadlineMs ??
        Math.min(this.deadlineMs, this.attemptDeadlineMs * 2 ** (timeouts.get(address) ?? 0));
      try {
        const authorization = this.authorization();
        const metadata = authorization instanceof grpc.Metadata ? authorization : await authorization;
        const res =
          service === "KeyVault" && isCryptoMethod(method)
            ? await this.session(address, metadata).call<Res>(method, request, deadlineMs)
            : await unaryCall<Res>(this.channel(address, service), method, request, { deadlineMs, metadata });
        // It answers: whatever failed or timed out there before is over.
        this.suspects.delete(address);
        this.avoidUntil.delete(address);
        return res;
      } catch (e) {
        const failure = fromServiceError(e, `${method} at ${address}`);
        if (failure.error.code === "Timeout") {
          timeouts.set(address, (timeouts.get(address) ?? 0) + 1);
          this.suspects.set(address, { sinceMs: this.nowMs(), deadlineMs, vouchers: new Set() });
        }
        if (crypto && RETRYABLE_CODES.has(failure.error.code))
          this.avoidUntil.set(address, this.nowMs() + AVOID_FAILED_MEMBER_MS);
        throw new AttemptFailure(address, failure);
      }
    };
    for (let attempt = 1; ; attempt++) {
      // A crypto operation goes to the next synced member that has not just failed, its retries to
      // every such member at once; other calls follow the primary.
      const hedgeTo = crypto && attempt > 1 ? this.hedgeTargets() : [];
      const hedge = hedgeTo.length > 0 ? hedgeTo : undefined;
      const spread = crypto && hedge === undefined ? this.cryptoEndpoint() : undefined;
      const address = spread ?? this.target ?? (await this.rediscover(""));
      try {
        const res = hedge ? await this.firstAnswer(hedge, attemptAt) : await attemptAt(address);
        if (spread === undefined && hedge === undefined) this.target = address;
        return res;
      } catch (e) {
        if (!(e instanceof AttemptFailure)) throw e;
        const { failure } = e;
        const hint = failure.leaderAddress;
        const named = failure.error.code === "NotLeader" && hint !== undefined && hint !== e.address;
        const namesSuspect = named && this.isSuspect(hint);
        const vouched = namesSuspect && this.vouch(hint, e.address);
        const redirect = named && (!namesSuspect || vouched);
        suspectNamed = namesSuspect ? suspectNamed + 1 : 0;
        const decision = decideRetry({
          attempt,
          elapsedMs: this.nowMs() - startedMs,
          code: failure.error.code,
          redirect,
          redirectToSuspect: vouched,
          suspectNamed,
          previousWasRedirect,
          leaderless: failure.error.code === "NotLeader" && !redirect,
          policy: this.policy,
          random: this.random,
        });
        if (!decision.retry) {
          // A caller's mistake is reported as the server said it, however many attempts led there.
          if (attempt === 1 || !RETRYABLE_CODES.has(failure.error.code)) throw failure.error;
          throw new HsmPoolError(failure.error.code, `${failure.error.message} (${decision.reason})`, {
            ...failure.error.details,
            attempts: attempt,
          });
        }
        if (redirect) this.target = hint;
        else if (spread === undefined && hedge === undefined) this.target = await this.rediscover(e.address);
        previousWasRedirect = redirect;
        await this.sleep(decision.delayMs);
      }
    }
  }
}

/**
 * A member whose attempt timed out: since when, that attempt's deadline, who named it leader since.
 * Its hints are not followed for two attempt deadlines (isSuspect): it stopped at most one deadline
 * ago, and an election after a fault ends within two election timeouts (randomised).
 */
interface Suspicion {
  sinceMs: number;
  deadlineMs: number;
  vouchers: Set<string>;
}

/** A failed attempt at one member: what it answered (or why it did not). */
class AttemptFailure extends Error {
  constructor(
    readonly address: string,
    readonly failure: CallFailure,
  ) {
    super(failure.error.message);
  }
}

/** The metadata of requests without a token (one object, so they share a crypto session too). */
const NO_AUTHORIZATION = new grpc.Metadata();
/**
 * A token is reused without asking the credential until this long before it expires
 * (Azure's bearer-token policy refreshes two minutes ahead; a little more, so the
 * credential's own two-minute margin has passed and it mints a fresh one).
 */
const TOKEN_REFRESH_WINDOW_MS = 150_000;
/** How long a member whose crypto attempt failed gets no more of them. */
const AVOID_FAILED_MEMBER_MS = 5_000;

function syncedAddressesOf(status: PoolStatus): string[] {
  return status.members
    .filter((m) => m.health === "up" && m.ownership === "synced")
    .map((m) => m.dataAddress);
}

type DataPlaneService = "KeyVault" | "SecurityDomain" | "AccessControl";
/** SD calls make RSA keys and wait for Raft (and, on upload, for ownership): far longer than a key call. */
const SD_DEADLINE_MS = 120_000;

export interface SecurityDomainStatus {
  state: "provisioned" | "recovery" | "active";
  sdId: string;
  quorum: number;
  shareCount: number;
  activatedMs: number;
}

/** A backup or restore job in the Azure shape (times in Unix ms; endTime null while in progress). */
export interface BackupJob {
  jobId: string;
  kind: "backup" | "restore";
  status: "InProgress" | "Succeeded" | "Failed";
  folder: string;
  startTime: number;
  endTime: number | null;
  statusDetails: string;
  error: { code: string; message: string } | null;
}

function jobOf(m: unknown): BackupJob {
  const j = m as Record<string, string | number>;
  return {
    jobId: String(j.jobId),
    kind: j.kind === "restore" ? "restore" : "backup",
    status: j.status as BackupJob["status"],
    folder: String(j.folder),
    startTime: Number(j.startTimeMs),
    endTime: Number(j.endTimeMs) || null,
    statusDetails: String(j.statusDetails),
    error: j.errorCode ? { code: String(j.errorCode), message: String(j.errorMessage) } : null,
  };
}

function primaryAddressOf(status: PoolStatus): string | undefined {
  return status.members.find((m) => m.id === status.primary)?.dataAddress;
}
