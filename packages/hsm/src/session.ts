/**
 * A logged-in session on one partition: key management and every key operation.
 * Handles carry attributes only; private and secret material stays in the device and
 * leaves it only wrapped (exportWrapped, exportForTransfer).
 */
import { createPrivateKey, createSecretKey, type JsonWebKey, type KeyObject, randomBytes } from "node:crypto";
import { fail } from "@hsmpool/errors";
import { OPS_BY_TYPE } from "./algorithms.js";
import { unwrapByokCiphertext } from "./byok.js";
import {
  type DecryptOptions,
  decryptData,
  type EncryptOptions,
  type EncryptResult,
  encryptData,
  requireOp,
  signMessage,
  unwrapKeyBytes,
  verifyMessage,
  wrapKeyBytes,
} from "./crypto-ops.js";
import { signDigest, verifyDigest } from "./digest-sign.js";
import {
  copyHandle,
  describeKey,
  type KeyHandle,
  type KeyRef,
  type KeySpec,
  keyIdOf,
  makeHandle,
  validateKeySpec,
} from "./key-attributes.js";
import { exportTransferKey, exportWrappedKey, importTransferKey, importWrappedKey } from "./key-export.js";
import {
  generateMaterial,
  importMaterial,
  type LoadedKey,
  type Material,
  materialFromKeyObject,
  publicJwk,
} from "./key-material.js";
import type { OperationGate } from "./operation-gate.js";
import type { PartitionCore } from "./partition-core.js";
import {
  describeTransferPublicKey,
  parseTransferPublicKey,
  type TransferPublicKey,
  type TransferPublicKeyInput,
} from "./transfer-key.js";

type OctKey = Extract<LoadedKey, { handle: { kty: "oct" } }>;

/** Test-only access to a session's partition (see testing/key-material-door.ts); not exported by the package. */
export const sessionPartitions = new WeakMap<Session, () => PartitionCore>();

export class Session {
  private loggedIn = true;

  /** @internal Sessions come from Partition.login(). */
  constructor(
    private readonly core: PartitionCore,
    private readonly gate: OperationGate,
    private readonly epoch: number,
  ) {
    sessionPartitions.set(this, () => this.live());
  }

  /** "<device id>/p<index>": the id other partitions use as source/target of a transfer. */
  get partitionId(): string {
    return this.core.id;
  }

  logout(): void {
    this.loggedIn = false;
  }

  /** The partition, if this session is still valid (not logged out, partition not zeroized or re-initialized). */
  private live(): PartitionCore {
    if (!this.loggedIn)
      fail("Unauthenticated", `session on partition ${this.core.id} is logged out; log in again`);
    this.core.requireInitialized();
    if (this.core.epoch !== this.epoch) {
      fail(
        "Unauthenticated",
        `partition ${this.core.id} was re-initialized after this session logged in; log in again`,
      );
    }
    return this.core;
  }

  private key(ref: KeyRef): LoadedKey {
    return this.live().getKey(keyIdOf(ref));
  }

  /**
   * Runs a key-adding operation. The task ends in `add` (PartitionCore.addKey), which
   * batches with concurrent adds and re-checks this session's epoch when it writes.
   */
  private change<T>(operation: string, task: (core: PartitionCore) => Promise<T>): Promise<T> {
    return this.gate.run(operation, () => task(this.live()));
  }

  private add(
    core: PartitionCore,
    handle: KeyHandle,
    material: Material,
    persist = true,
  ): Promise<KeyHandle> {
    return core.addKey(handle, material, this.epoch, persist);
  }

  /**
   * Generates a key in the partition. `{ persist: false }` makes a session object
   * (PKCS#11 CKA_TOKEN false): held in memory only, gone when the device closes, for a
   * caller that keeps the key durably elsewhere (the node wraps it into the Raft log).
   */
  generateKey(spec: KeySpec, options: { persist?: boolean } = {}): Promise<KeyHandle> {
    return this.gate.run("generateKey", async () => {
      this.live();
      const { shape, ops, label } = validateKeySpec(spec);
      const material = await generateMaterial(shape);
      const handle = makeHandle(randomBytes(16).toString("hex"), shape, ops, label);
      return this.add(this.live(), handle, material, options.persist ?? true);
    });
  }

  /**
   * Imports raw AES key bytes under a caller-chosen id (key import, as in BYOK): the one
   * way symmetric material enters a partition from outside. Used to bring a security
   * domain's escrow key in, so blobs exported under it on another pool import here.
   */
  importSecretKey(id: string, spec: KeySpec, material: Uint8Array): Promise<KeyHandle> {
    return this.change("importSecretKey", async (core) => {
      const { shape, ops, label } = validateKeySpec(spec);
      keyIdOf(id);
      if (shape.kty !== "oct") fail("BadParameter", "importSecretKey takes AES (oct) keys only");
      if (material.length * 8 !== shape.size)
        fail(
          "BadParameter",
          `AES-${shape.size} material must be ${shape.size / 8} bytes, not ${material.length}`,
        );
      return this.add(core, makeHandle(id, shape, ops, label), importMaterial(shape, material));
    });
  }

  /** Imports a key the caller holds as a private JWK (RSA, EC) or an oct JWK (`k`); the shape comes from the key. */
  importJwk(jwk: unknown, ops?: readonly string[]): Promise<KeyHandle> {
    return this.change("importJwk", (core) => {
      if (typeof jwk !== "object" || jwk === null)
        fail("BadParameter", "the key to import must be a JWK object");
      let key: KeyObject;
      try {
        const j = jwk as JsonWebKey;
        key =
          j.kty === "oct"
            ? createSecretKey(Buffer.from(String(j.k ?? ""), "base64url"))
            : createPrivateKey({ key: j, format: "jwk" });
      } catch {
        return fail("BadParameter", "the JWK to import is not a valid private RSA/EC key or oct key");
      }
      return this.addImported(core, key, ops);
    });
  }

  /**
   * BYOK: unwraps a CKM_RSA_AES_KEY_WRAP ciphertext with the key-exchange key `kekRef`
   * (RSA, whose only operation is import) here inside the partition and stores the target.
   */
  importByok(kekRef: KeyRef, ciphertext: Uint8Array, ops?: readonly string[]): Promise<KeyHandle> {
    return this.change("importByok", (core) => {
      const kek = this.key(kekRef);
      if (kek.handle.kty !== "RSA" || !("privateKey" in kek)) {
        fail("BadParameter", `a key-exchange key must be RSA; ${describeKey(kek.handle)} is not one`);
      }
      requireOp(kek, "import");
      const target = unwrapByokCiphertext(kek.privateKey, kek.handle.size / 8, ciphertext);
      try {
        let key: KeyObject;
        try {
          key = createPrivateKey({ key: target, format: "der", type: "pkcs8" });
        } catch {
          key = createSecretKey(Buffer.from(target));
        }
        return this.addImported(core, key, ops);
      } finally {
        target.fill(0);
      }
    });
  }

  /** `ops` undefined: every operation the key's type allows except import (which only a KEK is made with). */
  private addImported(core: PartitionCore, key: KeyObject, ops?: readonly string[]): Promise<KeyHandle> {
    const { shape, material } = materialFromKeyObject(key);
    const valid = validateKeySpec({
      ...shape,
      ops: ops ?? OPS_BY_TYPE[shape.kty].filter((op) => op !== "import"),
    });
    return this.add(core, makeHandle(randomBytes(16).toString("hex"), valid.shape, valid.ops), material);
  }

  /** `count` random bytes from the device's generator (1..4096). */
  randomBytes(count: number): Promise<Uint8Array> {
    return this.gate.run("randomBytes", () => {
      this.live();
      if (!Number.isSafeInteger(count) || count < 1 || count > 4096) {
        fail("BadParameter", `random byte count must be 1..4096; got ${count}`);
      }
      return new Uint8Array(randomBytes(count));
    });
  }

  listHandles(): Promise<KeyHandle[]> {
    return this.gate.run("listHandles", () =>
      [...this.live().keys.values()].map((k) => copyHandle(k.handle)),
    );
  }

  getHandle(ref: KeyRef): Promise<KeyHandle> {
    return this.gate.run("getHandle", () => copyHandle(this.key(ref).handle));
  }

  deleteKey(ref: KeyRef): Promise<void> {
    return this.gate.run("deleteKey", () => {
      this.live();
      return this.core.queue.run(() => this.live().deleteKey(keyIdOf(ref)));
    });
  }

  /** Public key of an RSA or EC key as a JWK (EC secp256k1 is crv "P-256K", as in Key Vault). */
  getPublicJwk(ref: KeyRef): Promise<JsonWebKey & { kid: string }> {
    return this.gate.run("getPublicJwk", () => publicJwk(this.key(ref)));
  }

  /** Signs `data` (the message, hashed inside with the algorithm's hash). ECDSA signatures are JOSE r||s. */
  sign(ref: KeyRef, alg: string, data: Uint8Array): Promise<Uint8Array> {
    return this.gate.run("sign", () => signMessage(this.key(ref), alg, data));
  }

  verify(ref: KeyRef, alg: string, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return this.gate.run("verify", () => verifyMessage(this.key(ref), alg, data, signature));
  }

  /** Signs a `digest` the caller computed (the Key Vault REST semantics; digest-sign.ts). */
  signDigest(ref: KeyRef, alg: string, digest: Uint8Array): Promise<Uint8Array> {
    return this.gate.run("sign", () => signDigest(this.key(ref), alg, digest));
  }

  verifyDigest(ref: KeyRef, alg: string, digest: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return this.gate.run("verify", () => verifyDigest(this.key(ref), alg, digest, signature));
  }

  encrypt(ref: KeyRef, alg: string, plaintext: Uint8Array, options?: EncryptOptions): Promise<EncryptResult> {
    return this.gate.run("encrypt", () => encryptData(this.key(ref), alg, plaintext, options));
  }

  decrypt(ref: KeyRef, alg: string, ciphertext: Uint8Array, options?: DecryptOptions): Promise<Uint8Array> {
    return this.gate.run("decrypt", () => decryptData(this.key(ref), alg, ciphertext, options));
  }

  /** Key Vault wrapKey: encrypts caller-supplied key bytes (A*KW, RSA-OAEP, RSA-OAEP-256). */
  wrapKey(ref: KeyRef, alg: string, keyBytes: Uint8Array): Promise<Uint8Array> {
    return this.gate.run("wrapKey", () => wrapKeyBytes(this.key(ref), alg, keyBytes));
  }

  unwrapKey(ref: KeyRef, alg: string, wrappedKey: Uint8Array): Promise<Uint8Array> {
    return this.gate.run("unwrapKey", () => unwrapKeyBytes(this.key(ref), alg, wrappedKey));
  }

  /** The key as a blob wrapped under an AES key of this partition (needs wrapKey on that key). */
  exportWrapped(ref: KeyRef, wrappingKeyRef: KeyRef): Promise<Uint8Array> {
    return this.gate.run("exportWrapped", () => {
      const key = this.key(ref);
      const wrappingKey = this.wrappingKey(wrappingKeyRef, "wrapKey");
      if (key.handle.id === wrappingKey.handle.id)
        fail("BadParameter", "a key cannot be exported wrapped under itself");
      return exportWrappedKey(key, wrappingKey, this.core.id);
    });
  }

  /** Imports a blob from exportWrapped (any partition holding the same wrapping key); keeps the key's id. */
  importWrapped(blob: Uint8Array, wrappingKeyRef: KeyRef): Promise<KeyHandle> {
    return this.change("importWrapped", (core) => {
      const { handle, material } = importWrappedKey(blob, this.wrappingKey(wrappingKeyRef, "unwrapKey"));
      return this.add(core, handle, material);
    });
  }

  /** This partition's P-384 transfer public key (JWK and SPKI DER), to be certified and sent to peers. */
  getTransferPublicKey(): Promise<TransferPublicKey> {
    return this.gate.run("getTransferPublicKey", () =>
      describeTransferPublicKey(this.live().transferKey.publicKey),
    );
  }

  /** The key as a blob only the partition holding `targetTransferPublicKey` and named `targetId` can import. */
  exportForTransfer(
    ref: KeyRef,
    targetTransferPublicKey: TransferPublicKeyInput,
    targetId: string,
  ): Promise<Uint8Array> {
    return this.gate.run("exportForTransfer", () => {
      const key = this.key(ref);
      const target = parseTransferPublicKey(targetTransferPublicKey, "target transfer public key");
      requireId(targetId, "target id");
      return exportTransferKey(key, this.core.transferKey, this.core.id, target, targetId);
    });
  }

  /** Imports a transfer blob made for this partition by the partition `sourceId` holding `sourceTransferPublicKey`. */
  importFromTransfer(
    blob: Uint8Array,
    sourceTransferPublicKey: TransferPublicKeyInput,
    sourceId: string,
  ): Promise<KeyHandle> {
    return this.change("importFromTransfer", (core) => {
      const source = parseTransferPublicKey(sourceTransferPublicKey, "source transfer public key");
      requireId(sourceId, "source id");
      const { handle, material } = importTransferKey(blob, core.transferKey, core.id, source, sourceId);
      return this.add(core, handle, material);
    });
  }

  private wrappingKey(ref: KeyRef, op: "wrapKey" | "unwrapKey"): OctKey {
    const key = this.key(ref);
    if (key.handle.kty !== "oct") {
      fail("BadParameter", `wrapping key must be an AES (oct) key; ${describeKey(key.handle)} is not one`);
    }
    requireOp(key, op);
    return key as OctKey;
  }
}

function requireId(id: unknown, what: string): asserts id is string {
  if (typeof id !== "string" || id.length === 0) fail("BadParameter", `${what} must be a non-empty string`);
}
