import { createHash } from "node:crypto";
import { fail } from "@hsmpool/errors";
import type { Prng } from "@hsmpool/faults";
import type { KeyHandle, KeyOp, KeySpec } from "@hsmpool/hsm";
import { keyFingerprint, type P384PublicJwk } from "@hsmpool/pool";
import { p384 } from "@noble/curves/nist.js";
import { simDecrypt, simEncrypt, simMac } from "./sim-cipher.js";

/**
 * A deterministic simulated HSM: one partition per simulated server, all drawing
 * their randomness from the run's PRNG, so a seed fixes every key. It answers the
 * session calls the node shell makes (the HsmSession seam, adapted in
 * shell/server.ts), synchronously; the device model adds queueing, latency and faults.
 *
 * What is real: the owner root is a real P-384 key (the pool machine verifies ES384
 * certificate signatures), signing deterministically (RFC 6979); wrapped key blobs carry the HSM's "HSMK" v1 header with the key id (the
 * node reads it). What is modelled: ECDH transfer, DEK wrapping and AES-GCM (sim-cipher.ts:
 * what the node sees of it, with IVs from the PRNG). A blob
 * names a record in the fabric — the physics of the simulation — that only the
 * partition it was made for can open: a transfer blob needs the target partition id
 * *and* its current transfer key (a partition re-initialized since cannot open it), a
 * wrapped application key needs a partition holding the very DEK material it was
 * wrapped under. Key material never leaves the fabric; the node shell and the wire only
 * ever carry key ids, public keys, signatures and blobs. Application keys sign with a
 * keyed hash (simMac; the invariants are about ownership, not about the application algorithm).
 *
 * P-384 owner-root keys and partition transfer keys are derived from the partition id and
 * how many the partition made before (not from the seed): every run's keys are distinct
 * from each other and a re-initialized partition gets new ones, but the same few recur
 * across seeds, so the pure-JS key generation, RFC 6979 signing and certificate checks
 * (milliseconds each) are done once per process (P384_KEYS, P384_SIGNATURES here, the pool's
 * verified-signature memo) instead of in every run.
 */

type KeyRole = "ownerRoot" | "dek" | "poolKey" | "app";

interface SimKey {
  readonly role: KeyRole;
  readonly handle: KeyHandle;
  /** Secret material: never copied outside the fabric. */
  readonly material: Uint8Array;
  /** EC keys: the public key. */
  readonly publicJwk?: { kty: string; crv: string; x: string; y: string };
  /** Owner-root keys: the P384_KEYS label that signs. */
  readonly p384Label?: string;
}

type BlobRecord =
  | {
      mode: "transfer";
      key: SimKey;
      sourcePartitionId: string;
      sourceTransferKey: string;
      targetPartitionId: string;
      targetTransferKey: string;
      filler: Uint8Array;
    }
  | { mode: "wrapped"; key: SimKey; wrappingMaterial: string; filler: Uint8Array };

const BLOB_MAGIC = [0x53, 0x48, 0x42, 0x31]; // "SHB1"
const BLOB_FILLER_BYTES = 40;
/** The HSM's wrapped-key header: "HSMK" | version 1 | reserved | key id (16 bytes). */
const HSMK = [0x48, 0x53, 0x4d, 0x4b, 1, 0];
const KEY_ID_BYTES = 16;

function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Fingerprints by material array (key material is never changed in place; the checkers ask per served op). */
const FINGERPRINTS = new WeakMap<Uint8Array, string>();

/** A stable fingerprint of secret material (for checkers; reveals nothing about it). */
export function materialFingerprint(material: Uint8Array): string {
  let fingerprint = FINGERPRINTS.get(material);
  if (fingerprint === undefined) {
    fingerprint = createHash("sha256").update(material).digest("hex").slice(0, 32);
    FINGERPRINTS.set(material, fingerprint);
  }
  return fingerprint;
}

interface P384Key {
  readonly secretKey: Uint8Array;
  readonly publicJwk: { kty: string; crv: string; x: string; y: string };
}
const P384_KEYS = new Map<string, P384Key>();
/** RFC 6979 signatures are a function of key and message: `${label}|${hex(message)}` -> signature. */
const P384_SIGNATURES = new Map<string, Uint8Array>();
const MAX_P384_SIGNATURES = 4096;

function derived(label: string, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0, block = 0; at < n; block++, at += 64) {
    const h = createHash("sha512").update(`${label}/${block}`).digest();
    out.set(h.subarray(0, Math.min(64, n - at)), at);
  }
  return out;
}

function p384KeyFor(label: string): P384Key {
  let key = P384_KEYS.get(label);
  if (!key) {
    const secretKey = p384.utils.randomSecretKey(derived(`hsmpool-sim/p384/${label}`, 72));
    const point = p384.getPublicKey(secretKey, false);
    const publicJwk = {
      kty: "EC",
      crv: "P-384",
      x: base64Url(point.subarray(1, 49)),
      y: base64Url(point.subarray(49, 97)),
    };
    key = { secretKey, publicJwk };
    P384_KEYS.set(label, key);
  }
  return key;
}

function p384Sign(label: string, data: Uint8Array): Uint8Array {
  const memo = `${label}|${hex(data)}`;
  let signature = P384_SIGNATURES.get(memo);
  if (!signature) {
    signature = p384.sign(data, p384KeyFor(label).secretKey);
    if (P384_SIGNATURES.size >= MAX_P384_SIGNATURES) P384_SIGNATURES.clear();
    P384_SIGNATURES.set(memo, signature);
  }
  return Uint8Array.from(signature);
}

function jwkKey(jwk: { x?: unknown; y?: unknown }): string {
  return `${String(jwk.x)}.${String(jwk.y)}`;
}

function bytesOf(prng: Prng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 4) {
    const w = prng.nextU32();
    for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (w >>> (8 * j)) & 0xff;
  }
  return out;
}

function base64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The run-wide physics of the simulated HSMs: the blob records and which DEK each Genesis names. */
export class SimHsmFabric {
  private readonly blobs = new Map<number, BlobRecord>();
  private nextBlob = 1;
  /** keyFingerprint(keyId) -> material fingerprint of every DEK ever created (the truth). */
  private readonly dekTruth = new Map<string, string>();
  /** Unsafe "divergentDek": the next DEK import (on any partition) stores different material. */
  corruptNextDekImport = false;

  issue(record: BlobRecord): Uint8Array {
    const id = this.nextBlob++;
    this.blobs.set(id, record);
    const out = new Uint8Array(8 + record.filler.length);
    out.set(BLOB_MAGIC, 0);
    new DataView(out.buffer).setUint32(4, id, true);
    out.set(record.filler, 8);
    return out;
  }

  open(blob: Uint8Array): BlobRecord {
    const id = blob.length >= 8 ? new DataView(blob.buffer, blob.byteOffset).getUint32(4, true) : 0;
    const record = BLOB_MAGIC.every((b, i) => blob[i] === b) ? this.blobs.get(id) : undefined;
    const filler = blob.subarray(8);
    if (!record || !equalBytes(filler, record.filler)) {
      fail("IntegrityError", "blob does not unwrap: not made by this fabric or altered in transit");
    }
    return record;
  }

  recordDek(keyId: string, material: Uint8Array): void {
    this.dekTruth.set(keyFingerprint(keyId), materialFingerprint(material));
  }

  /** Material fingerprint of the DEK a Genesis names by `dekFingerprint`, if it was ever made. */
  dekMaterialOf(dekFingerprint: string): string | undefined {
    return this.dekTruth.get(dekFingerprint);
  }
}

const ROLE_CODES: Record<KeyRole, string> = { ownerRoot: "01", dek: "02", poolKey: "03", app: "04" };

/**
 * One node's HSM partition. It is hardware: it survives a crash of the node process
 * (only `wipe`, a server loss, destroys it). Every call is synchronous and throws the
 * HSM's typed errors (NotInitialized, Unauthenticated, KeyNotFound, IntegrityError).
 */
export class SimPartition {
  readonly partitionId: string;
  /** The device works through one call at a time: when the last queued call completes. */
  busyUntilUs = 0;
  private initialized = false;
  private epoch = 0;
  private credential: string | null = null;
  private transferKey: P384PublicJwk | null = null;
  private readonly keys = new Map<string, SimKey>();
  private seq = 0;
  private readonly idPrefix: string;
  /** P-384 and transfer keys this partition made so far (never reset: a wiped partition makes new ones). */
  private p384Made = 0;
  private transferKeysMade = 0;

  constructor(
    readonly nodeId: string,
    private readonly fabric: SimHsmFabric,
    private readonly prng: Prng,
  ) {
    this.partitionId = `hsm-${nodeId}/p0`;
    this.idPrefix = createHash("sha256").update(this.partitionId).digest("hex").slice(0, 8);
  }

  get keyCount(): number {
    return this.keys.size;
  }

  // ---- partition ------------------------------------------------------------------

  zeroize(): void {
    this.keys.clear();
    this.initialized = false;
    this.credential = null;
    this.transferKey = null;
    this.epoch++;
  }

  initialize(): Uint8Array {
    if (this.initialized) fail("Conflict", `partition ${this.partitionId} is already initialized`);
    const credential = bytesOf(this.prng, 16);
    this.initialized = true;
    this.credential = hex(credential);
    // Two 48-byte draws stay (they were the key once), so the PRNG stream and the seeds' traces are unchanged.
    bytesOf(this.prng, 96);
    const label = `${this.partitionId}/transfer/${this.transferKeysMade++}`;
    this.transferKey = {
      kty: "EC",
      crv: "P-384",
      x: base64Url(derived(`${label}/x`, 48)),
      y: base64Url(derived(`${label}/y`, 48)),
    };
    this.epoch++;
    return credential;
  }

  /** Logs in; returns the session's epoch (a later zeroize or initialize invalidates it). */
  login(credential: Uint8Array): number {
    if (!this.initialized) fail("NotInitialized", `partition ${this.partitionId} is not initialized`);
    if (hex(credential) !== this.credential)
      fail("Unauthenticated", `the credential does not open partition ${this.partitionId}`);
    return this.epoch;
  }

  requireSession(epoch: number): void {
    if (!this.initialized) fail("NotInitialized", `partition ${this.partitionId} is not initialized`);
    if (epoch !== this.epoch)
      fail(
        "Unauthenticated",
        `partition ${this.partitionId} was re-initialized after this session logged in`,
      );
  }

  // ---- keys -----------------------------------------------------------------------

  generateKey(spec: KeySpec): KeyHandle {
    const ops = [...spec.ops] as KeyOp[];
    if (spec.kty === "EC" && spec.crv === "P-384") {
      bytesOf(this.prng, 72); // the draw that made the key once (the PRNG stream stays as it was)
      const label = `${this.partitionId}/${this.p384Made++}`;
      const { secretKey, publicJwk } = p384KeyFor(label);
      return this.add("ownerRoot", { kty: "EC", crv: "P-384", ops }, secretKey, publicJwk, label);
    }
    if (spec.kty === "EC") {
      const publicJwk = {
        kty: "EC",
        crv: spec.crv ?? "P-256",
        x: base64Url(bytesOf(this.prng, 32)),
        y: base64Url(bytesOf(this.prng, 32)),
      };
      return this.add("app", { kty: "EC", crv: spec.crv ?? "P-256", ops }, bytesOf(this.prng, 32), publicJwk);
    }
    if (spec.kty === "oct") {
      const role: KeyRole = ops.includes("wrapKey") ? "dek" : "poolKey";
      const material = bytesOf(this.prng, 32);
      const handle = this.add(role, { kty: "oct", size: spec.size ?? 256, ops }, material);
      if (role === "dek") this.fabric.recordDek(handle.id, material);
      return handle;
    }
    return fail("BadParameter", `the simulated HSM makes EC and AES keys, not ${spec.kty}`);
  }

  getHandle(keyId: string): KeyHandle {
    return this.key(keyId).handle;
  }

  deleteKey(keyId: string): void {
    this.key(keyId);
    this.keys.delete(keyId);
  }

  getPublicJwk(keyId: string): { kty: string; crv: string; x: string; y: string; kid: string } {
    const key = this.key(keyId);
    if (!key.publicJwk) fail("BadParameter", `key ${keyId} has no public key`);
    return { ...key.publicJwk, kid: keyId };
  }

  sign(keyId: string, data: Uint8Array): Uint8Array {
    const key = this.key(keyId);
    if (!key.handle.ops.includes("sign")) fail("OperationNotAllowed", `key ${keyId} cannot sign`);
    return key.p384Label !== undefined ? p384Sign(key.p384Label, data) : simMac(key.material, data);
  }

  verify(keyId: string, data: Uint8Array, signature: Uint8Array): boolean {
    const key = this.key(keyId);
    return key.role === "ownerRoot" ? false : equalBytes(simMac(key.material, data), signature);
  }

  /** AES-256-GCM as the node sees it (sim-cipher.ts); the IV comes from the PRNG. */
  encrypt(
    keyId: string,
    plaintext: Uint8Array,
    aad: Uint8Array,
  ): { ciphertext: Uint8Array; iv: Uint8Array; tag: Uint8Array } {
    const key = this.aesKey(keyId, "encrypt");
    const iv = bytesOf(this.prng, 12);
    return { ...simEncrypt(key.material, iv, plaintext, aad), iv };
  }

  decrypt(
    keyId: string,
    ciphertext: Uint8Array,
    iv: Uint8Array,
    tag: Uint8Array,
    aad: Uint8Array,
  ): Uint8Array {
    return simDecrypt(this.aesKey(keyId, "decrypt").material, iv, ciphertext, tag, aad);
  }

  /** The key wrapped under the DEK `dekKeyId`: an "HSMK" v1 blob naming the key id, then the fabric token. */
  exportWrapped(keyId: string, dekKeyId: string): Uint8Array {
    const key = this.key(keyId);
    const dek = this.key(dekKeyId);
    if (dek.role !== "dek") fail("BadParameter", `key ${dekKeyId} is not a wrapping key`);
    const token = this.fabric.issue({
      mode: "wrapped",
      key,
      wrappingMaterial: materialFingerprint(dek.material),
      filler: bytesOf(this.prng, BLOB_FILLER_BYTES),
    });
    const out = new Uint8Array(HSMK.length + KEY_ID_BYTES + token.length);
    out.set(HSMK, 0);
    out.set(Buffer.from(keyId, "hex"), HSMK.length);
    out.set(token, HSMK.length + KEY_ID_BYTES);
    return out;
  }

  importWrapped(blob: Uint8Array, dekKeyId: string): KeyHandle {
    if (!HSMK.every((b, i) => blob[i] === b)) fail("IntegrityError", "not an HSM key blob (v1)");
    const record = this.fabric.open(blob.subarray(HSMK.length + KEY_ID_BYTES));
    if (record.mode !== "wrapped") fail("BadParameter", "not a wrapped key blob");
    const dek = this.key(dekKeyId);
    if (materialFingerprint(dek.material) !== record.wrappingMaterial)
      fail("IntegrityError", `key ${record.key.handle.id} does not unwrap under DEK ${dekKeyId}`);
    this.keys.set(record.key.handle.id, record.key);
    return record.key.handle;
  }

  transferPublicKey(): P384PublicJwk {
    return this.requireInitialized();
  }

  exportForTransfer(keyId: string, target: { x?: unknown; y?: unknown }, targetId: string): Uint8Array {
    const source = this.requireInitialized();
    return this.fabric.issue({
      mode: "transfer",
      key: this.key(keyId),
      sourcePartitionId: this.partitionId,
      sourceTransferKey: jwkKey(source),
      targetPartitionId: targetId,
      targetTransferKey: jwkKey(target),
      filler: bytesOf(this.prng, BLOB_FILLER_BYTES),
    });
  }

  importFromTransfer(blob: Uint8Array, source: { x?: unknown; y?: unknown }, sourceId: string): KeyHandle {
    const own = this.requireInitialized();
    const r = this.fabric.open(blob);
    const forUs =
      r.mode === "transfer" &&
      r.targetPartitionId === this.partitionId &&
      r.targetTransferKey === jwkKey(own) &&
      r.sourcePartitionId === sourceId &&
      r.sourceTransferKey === jwkKey(source);
    if (!forUs) fail("IntegrityError", `blob was not made for ${this.partitionId} by the named source`);
    let key = r.key;
    if (key.role === "dek" && this.fabric.corruptNextDekImport) {
      // Unsafe "divergentDek": a faulty HSM stores other material under the DEK's id.
      this.fabric.corruptNextDekImport = false;
      key = { ...key, material: bytesOf(this.prng, 32) };
    }
    this.keys.set(key.handle.id, key);
    return key.handle;
  }

  // ---- inspection (checkers only) --------------------------------------------

  /** Material fingerprint of a key the partition holds, or null. */
  materialFingerprintOf(keyId: string): string | null {
    const key = this.initialized ? this.keys.get(keyId) : undefined;
    return key ? materialFingerprint(key.material) : null;
  }

  /** Public key of an owner-root key the partition holds, or null. */
  ownerRootPublicKeyOf(keyId: string): P384PublicJwk | null {
    const key = this.initialized ? this.keys.get(keyId) : undefined;
    return key?.role === "ownerRoot" && key.publicJwk ? (key.publicJwk as P384PublicJwk) : null;
  }

  /** Server loss: the device is gone, with every key and the credential. */
  wipe(): void {
    this.zeroize();
  }

  private add(
    role: KeyRole,
    shape: { kty: string; crv?: string; size?: number; ops: KeyOp[] },
    material: Uint8Array,
    publicJwk?: SimKey["publicJwk"],
    p384Label?: string,
  ): KeyHandle {
    this.seq += 1;
    const id = `${this.idPrefix}${ROLE_CODES[role]}${this.seq.toString(16).padStart(22, "0")}`;
    const handle = { id, ...shape } as unknown as KeyHandle;
    this.keys.set(id, {
      role,
      handle,
      material,
      ...(publicJwk ? { publicJwk } : {}),
      ...(p384Label !== undefined ? { p384Label } : {}),
    });
    return handle;
  }

  private key(keyId: string): SimKey {
    this.requireInitialized();
    return this.keys.get(keyId) ?? fail("KeyNotFound", `partition ${this.partitionId} holds no key ${keyId}`);
  }

  private aesKey(keyId: string, op: "encrypt" | "decrypt"): SimKey {
    const key = this.key(keyId);
    if (key.handle.kty !== "oct" || !key.handle.ops.includes(op))
      fail("OperationNotAllowed", `key ${keyId} cannot ${op}`);
    return key;
  }

  private requireInitialized(): P384PublicJwk {
    if (!this.initialized || !this.transferKey) {
      fail("NotInitialized", `partition ${this.partitionId} is not initialized`);
    }
    return this.transferKey;
  }
}
