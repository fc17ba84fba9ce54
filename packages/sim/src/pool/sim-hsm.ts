import { fail, isHsmPoolError } from "@hsmpool/errors";
import type { Prng } from "@hsmpool/faults";
import {
  keyFingerprint,
  type OwnershipEffect,
  type OwnershipInput,
  type OwnershipKeyRole,
  type P384PublicJwk,
  type PublicJwk,
} from "@hsmpool/pool";
import { p384 } from "@noble/curves/nist.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";

/**
 * A deterministic simulated HSM: one partition per simulated server, all drawing
 * their randomness from the run's PRNG, so a seed fixes every key.
 *
 * What is real: the owner root is a real P-384 key (the pool machine verifies ES384
 * certificate signatures), made from PRNG bytes and signing deterministically
 * (RFC 6979). What is modelled: ECDH transfer and DEK wrapping. A blob is an opaque
 * token (magic, id, random filler) naming a record in the fabric — the physics of
 * the simulation — that only the partition it was made for can open: a transfer
 * blob needs the target partition id *and* its current transfer key (a partition
 * re-initialized since cannot open it), a wrapped application key needs a partition
 * holding the very DEK material it was wrapped under. Key material never leaves the
 * fabric; the node shell and the wire only ever carry key ids, public keys,
 * signatures and blobs. Application keys sign with HMAC-SHA256 (the invariants are
 * about ownership, not about the application algorithm).
 */

export type HsmEffect = Extract<OwnershipEffect, { kind: `hsm.${string}` }>;

export function isHsmEffect(e: OwnershipEffect): e is HsmEffect {
  return e.kind.startsWith("hsm.");
}

type KeyRole = OwnershipKeyRole | "app";

interface SimKey {
  readonly role: KeyRole;
  /** Secret material: never copied outside the fabric. */
  readonly material: Uint8Array;
  /** Owner root only: the P-384 public key. */
  readonly publicKey?: P384PublicJwk;
}

type BlobRecord =
  | {
      mode: "transfer";
      keyId: string;
      key: SimKey;
      sourcePartitionId: string;
      sourceTransferKey: string;
      targetPartitionId: string;
      targetTransferKey: string;
      filler: Uint8Array;
    }
  | { mode: "wrapped"; keyId: string; key: SimKey; wrappingMaterial: string; filler: Uint8Array };

const BLOB_MAGIC = [0x53, 0x48, 0x42, 0x31]; // "SHB1"
const BLOB_FILLER_BYTES = 40;

function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** A stable fingerprint of secret material (for checkers; reveals nothing about it). */
export function materialFingerprint(material: Uint8Array): string {
  return hex(sha256(material)).slice(0, 32);
}

function jwkKey(jwk: P384PublicJwk): string {
  return `${jwk.x}.${jwk.y}`;
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
    if (
      !record ||
      filler.length !== record.filler.length ||
      !filler.every((b, i) => b === record.filler[i])
    ) {
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

/**
 * One node's HSM partition. It is hardware: it survives a crash of the node process
 * (only `wipe`, a server loss, destroys it). `run` executes one ownership effect and
 * returns the machine's next input; failures come back as hsmFailed, as the node's
 * real shell reports them.
 */
export class SimPartition {
  readonly partitionId: string;
  /** The device works through one call at a time: when the last queued call completes. */
  busyUntilUs = 0;
  /** Whether the node's stored (sealed) credential opens the partition. */
  private initialized = false;
  private transferKey: P384PublicJwk | null = null;
  private readonly keys = new Map<string, SimKey>();
  private seq = 0;

  constructor(
    readonly nodeId: string,
    private readonly fabric: SimHsmFabric,
    private readonly prng: Prng,
  ) {
    this.partitionId = `hsm-${nodeId}/p0`;
  }

  get keyCount(): number {
    return this.keys.size;
  }

  run(effect: HsmEffect): OwnershipInput | null {
    try {
      return this.execute(effect);
    } catch (e) {
      if (effect.kind === "hsm.deleteKeys") return null;
      const error = isHsmPoolError(e)
        ? { code: e.code, message: e.message }
        : { code: "Internal" as const, message: `HSM call failed: ${String(e)}` };
      return { kind: "hsmFailed", correlationId: effect.correlationId, error };
    }
  }

  private execute(effect: HsmEffect): OwnershipInput | null {
    switch (effect.kind) {
      case "hsm.zeroizeAndInit":
        this.keys.clear();
        this.initialized = true;
        this.transferKey = this.randomP384Jwk();
        return {
          kind: "partitionReady",
          correlationId: effect.correlationId,
          partitionId: this.partitionId,
          transferPublicKey: this.transferKey,
        };
      case "hsm.createOwnershipKeys": {
        this.requireLoggedIn();
        const secretKey = p384.utils.randomSecretKey(bytesOf(this.prng, 72));
        const publicKey = jwkOfPoint(p384.getPublicKey(secretKey, false));
        const ownerRootId = this.add({ role: "ownerRoot", material: secretKey, publicKey });
        const dekId = this.add({ role: "dek", material: bytesOf(this.prng, 32) });
        this.fabric.recordDek(dekId, this.keys.get(dekId)!.material);
        const poolKeyId = this.add({ role: "poolKey", material: bytesOf(this.prng, 32) });
        return {
          kind: "ownershipKeysCreated",
          correlationId: effect.correlationId,
          ownerRoot: { keyId: ownerRootId, publicKey },
          dekKeyId: dekId,
          poolKeyKeyId: poolKeyId,
        };
      }
      case "hsm.signWithOwnerRoot": {
        const key = this.key(effect.keyId);
        if (key.role !== "ownerRoot") fail("OperationNotAllowed", `key ${effect.keyId} cannot sign`);
        return {
          kind: "signed",
          correlationId: effect.correlationId,
          signature: p384.sign(effect.data, key.material),
        };
      }
      case "hsm.exportForTransfer": {
        const source = this.requireLoggedIn();
        const blobs = effect.keyIds.map((keyId) =>
          this.fabric.issue({
            mode: "transfer",
            keyId,
            key: this.key(keyId),
            sourcePartitionId: this.partitionId,
            sourceTransferKey: jwkKey(source),
            targetPartitionId: effect.targetPartitionId,
            targetTransferKey: jwkKey(effect.targetTransferPublicKey),
            filler: bytesOf(this.prng, BLOB_FILLER_BYTES),
          }),
        );
        return { kind: "transferExported", correlationId: effect.correlationId, blobs };
      }
      case "hsm.importFromTransfer": {
        const own = this.requireLoggedIn();
        const opened = effect.items.map((item) => {
          const r = this.fabric.open(item.blob);
          const forUs =
            r.mode === "transfer" &&
            r.targetPartitionId === this.partitionId &&
            r.targetTransferKey === jwkKey(own) &&
            r.sourcePartitionId === effect.sourcePartitionId &&
            r.sourceTransferKey === jwkKey(effect.sourceTransferPublicKey);
          if (!forUs) fail("IntegrityError", `blob was not made for ${this.partitionId} by the named source`);
          return { item, record: r };
        });
        const keys = opened.map(({ item, record }) => {
          let key = record.key;
          if (key.role === "dek" && this.fabric.corruptNextDekImport) {
            // Unsafe "divergentDek": a faulty HSM stores other material under the DEK's id.
            this.fabric.corruptNextDekImport = false;
            key = { role: "dek", material: bytesOf(this.prng, 32) };
          }
          this.keys.set(record.keyId, key);
          return key.publicKey
            ? { role: item.role, keyId: record.keyId, publicKey: key.publicKey }
            : { role: item.role, keyId: record.keyId };
        });
        return { kind: "transferImported", correlationId: effect.correlationId, keys };
      }
      case "hsm.checkKeys":
        return {
          kind: "keysChecked",
          correlationId: effect.correlationId,
          partition:
            this.initialized && this.transferKey
              ? { partitionId: this.partitionId, transferPublicKey: this.transferKey }
              : null,
          missingKeyIds: this.initialized ? effect.keyIds.filter((id) => !this.keys.has(id)) : [],
        };
      case "hsm.deleteKeys":
        for (const id of effect.keyIds) this.keys.delete(id);
        return null;
    }
  }

  // ---- application keys (the key-service side of the node shell) -------------

  /** Generate an application EC key and return it wrapped under the DEK `dekKeyId`, with its public key. */
  generateWrappedAppKey(dekKeyId: string): {
    keyId: string;
    wrappedMaterial: Uint8Array;
    publicJwk: PublicJwk;
  } {
    const dek = this.key(dekKeyId);
    if (dek.role !== "dek") fail("OperationNotAllowed", `key ${dekKeyId} is not a DEK`);
    const key: SimKey = { role: "app", material: bytesOf(this.prng, 32) };
    const keyId = this.add(key);
    const wrappedMaterial = this.fabric.issue({
      mode: "wrapped",
      keyId,
      key,
      wrappingMaterial: materialFingerprint(dek.material),
      filler: bytesOf(this.prng, BLOB_FILLER_BYTES),
    });
    const publicJwk = {
      kty: "EC",
      crv: "P-256",
      x: base64Url(bytesOf(this.prng, 32)),
      y: base64Url(bytesOf(this.prng, 32)),
    };
    return { keyId, wrappedMaterial, publicJwk };
  }

  /** Unwrap (if not yet held) the application key in `wrapped` under `dekKeyId` and sign `data` with it. */
  signWithAppKey(wrapped: Uint8Array, dekKeyId: string, data: Uint8Array): Uint8Array {
    const record = this.fabric.open(wrapped);
    if (record.mode !== "wrapped") fail("BadParameter", "not a wrapped application key");
    let key = this.keys.get(record.keyId);
    if (!key) {
      const dek = this.key(dekKeyId);
      if (materialFingerprint(dek.material) !== record.wrappingMaterial) {
        fail("IntegrityError", `key ${record.keyId} does not unwrap under DEK ${dekKeyId}`);
      }
      key = record.key;
      this.keys.set(record.keyId, key);
    }
    return hmac(sha256, key.material, data);
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
    return key?.role === "ownerRoot" && key.publicKey ? key.publicKey : null;
  }

  /** Server loss: the device is gone, with every key and the credential. */
  wipe(): void {
    this.keys.clear();
    this.initialized = false;
    this.transferKey = null;
  }

  private add(key: SimKey): string {
    this.seq += 1;
    const keyId = `${this.partitionId.replace("/", ".")}-${key.role}-${this.seq}`;
    this.keys.set(keyId, key);
    return keyId;
  }

  private key(keyId: string): SimKey {
    this.requireLoggedIn();
    return this.keys.get(keyId) ?? fail("KeyNotFound", `partition ${this.partitionId} holds no key ${keyId}`);
  }

  private requireLoggedIn(): P384PublicJwk {
    if (!this.initialized || !this.transferKey) {
      fail("NotInitialized", `partition ${this.partitionId} is not initialized`);
    }
    return this.transferKey;
  }

  private randomP384Jwk(): P384PublicJwk {
    return {
      kty: "EC",
      crv: "P-384",
      x: base64Url(bytesOf(this.prng, 48)),
      y: base64Url(bytesOf(this.prng, 48)),
    };
  }
}

function jwkOfPoint(uncompressed: Uint8Array): P384PublicJwk {
  return {
    kty: "EC",
    crv: "P-384",
    x: base64Url(uncompressed.subarray(1, 49)),
    y: base64Url(uncompressed.subarray(49, 97)),
  };
}
