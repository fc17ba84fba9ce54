/**
 * gRPC handlers of proto/pool.proto: KeyVault (onto KeyService) and
 * NodeControl.Status. Proto zero values mean "unset" (version 0 = latest, size 0 /
 * crv "" = the key type's default, times 0 = no limit, empty ops = every operation
 * the key type allows).
 */
import type * as grpc from "@grpc/grpc-js";
import { DataActions as A, KEYS_SCOPE, type KeyVersionView, keyScope } from "@hsmpool/pool";
import type { CryptoMethod } from "@hsmpool/wire";
import type { KeyRefInput, KeyService } from "../keyvault/key-service.js";
import type { CallWithMetadata, DataPlaneAccess } from "./access.js";
import { unary } from "./grpc-errors.js";
import { keyLifecycleHandlers } from "./key-lifecycle-handlers.js";
import type { CreateKeyRequestMessage, KeyBundleMessage } from "./protos.js";

export function keyBundleOf(v: KeyVersionView): KeyBundleMessage {
  return {
    name: v.name,
    version: v.version,
    kty: v.shape.kty,
    size: v.shape.kty === "EC" ? 0 : v.shape.size,
    crv: v.shape.kty === "EC" ? v.shape.crv : "",
    ops: [...v.ops],
    attributes: {
      enabled: v.attributes.enabled,
      notBeforeMs: v.attributes.notBeforeMs ?? 0,
      expiresMs: v.attributes.expiresMs ?? 0,
      createdMs: v.createdMs,
      updatedMs: v.updatedMs,
    },
    tags: { ...v.attributes.tags },
    publicJwkJson: v.publicJwk ? JSON.stringify(v.publicJwk) : "",
  };
}

interface NamedRequest {
  name: string;
  version: number;
  alg: string;
}

const refOf = (r: { name: string; version: number }): KeyRefInput =>
  r.version > 0 ? { name: r.name, version: r.version } : { name: r.name };

const optionalBytes = (b: Uint8Array | undefined): Uint8Array | undefined =>
  b !== undefined && b.length > 0 ? b : undefined;

const asBuffer = (b: Uint8Array | undefined): Buffer => Buffer.from(b ?? new Uint8Array(0));

/** Every handler authorises first: `access.authorize(call, <data action>, <scope>)`. */
export function keyVaultImplementation(
  keys: KeyService,
  nodeId: string,
  onInternalError: (e: unknown) => void,
  access: DataPlaneAccess,
): grpc.UntypedServiceImplementation {
  const u = <Req, Res>(h: (r: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>) =>
    unary(h, onInternalError);
  return {
    ...keyLifecycleHandlers(keys, u, access),
    CreateKey: u(async (r: CreateKeyRequestMessage, call) => {
      await access.authorize(call, A.KeysCreate, keyScope(r.name));
      return keyBundleOf(
        await keys.createKey({
          name: r.name,
          kty: r.kty,
          ...(r.size > 0 ? { size: r.size } : {}),
          ...(r.crv !== "" ? { crv: r.crv } : {}),
          ...(r.ops.length > 0 ? { ops: r.ops } : {}),
          enabled: !r.disabled,
          notBeforeMs: r.notBeforeMs > 0 ? r.notBeforeMs : null,
          expiresMs: r.expiresMs > 0 ? r.expiresMs : null,
          tags: r.tags,
          requestId: r.requestId,
        }),
      );
    }),
    GetKey: u(async (r: { name: string; version: number }, call) => {
      await access.authorize(call, A.KeysRead, keyScope(r.name));
      return keyBundleOf(await keys.getKey(refOf(r)));
    }),
    ListKeys: u(async (_r: unknown, call) => {
      await access.authorize(call, A.KeysRead, KEYS_SCOPE);
      return { keys: (await keys.listKeys()).map(keyBundleOf) };
    }),
    DeleteKey: u(async (r: { name: string; requestId: string }, call) => {
      await access.authorize(call, A.KeysDelete, keyScope(r.name));
      return { name: await keys.deleteKey(r.name, r.requestId) };
    }),
    ...Object.fromEntries(
      Object.entries(cryptoOperations(keys, nodeId, access)).map(([method, op]) => [method, u(op)]),
    ),
  };
}

/**
 * The crypto operations (Sign ... UnwrapKey): served as unary methods and as messages of a
 * crypto session alike, each authorising first against its call's (or session's) metadata.
 */
export function cryptoOperations(
  keys: KeyService,
  nodeId: string,
  access: DataPlaneAccess,
): Record<CryptoMethod, (request: never, call: CallWithMetadata) => Promise<unknown>> {
  return {
    Sign: async (r: NamedRequest & { data: Buffer }, call: CallWithMetadata) => {
      await access.authorize(call, A.KeysSign, keyScope(r.name));
      const { signature, version } = await keys.sign(refOf(r), r.alg, r.data);
      return { signature: asBuffer(signature), version, servedBy: nodeId };
    },
    Verify: async (r: NamedRequest & { data: Buffer; signature: Buffer }, call: CallWithMetadata) => {
      await access.authorize(call, A.KeysVerify, keyScope(r.name));
      return { valid: await keys.verify(refOf(r), r.alg, r.data, r.signature) };
    },
    Encrypt: async (
      r: NamedRequest & { plaintext: Buffer; iv: Buffer; aad: Buffer },
      call: CallWithMetadata,
    ) => {
      await access.authorize(call, A.KeysEncrypt, keyScope(r.name));
      const opts: { iv?: Uint8Array; aad?: Uint8Array } = {};
      const iv = optionalBytes(r.iv);
      const aad = optionalBytes(r.aad);
      if (iv) opts.iv = iv;
      if (aad) opts.aad = aad;
      const out = await keys.encrypt(refOf(r), r.alg, r.plaintext, opts);
      return {
        ciphertext: asBuffer(out.ciphertext),
        iv: asBuffer(out.iv),
        tag: asBuffer(out.tag),
        version: out.version,
      };
    },
    Decrypt: async (
      r: NamedRequest & { ciphertext: Buffer; iv: Buffer; tag: Buffer; aad: Buffer },
      call: CallWithMetadata,
    ) => {
      await access.authorize(call, A.KeysDecrypt, keyScope(r.name));
      const opts: { iv?: Uint8Array; tag?: Uint8Array; aad?: Uint8Array } = {};
      const iv = optionalBytes(r.iv);
      const tag = optionalBytes(r.tag);
      const aad = optionalBytes(r.aad);
      if (iv) opts.iv = iv;
      if (tag) opts.tag = tag;
      if (aad) opts.aad = aad;
      return { plaintext: asBuffer((await keys.decrypt(refOf(r), r.alg, r.ciphertext, opts)).plaintext) };
    },
    WrapKey: async (r: NamedRequest & { key: Buffer }, call: CallWithMetadata) => {
      await access.authorize(call, A.KeysWrap, keyScope(r.name));
      const { wrapped, version } = await keys.wrapKey(refOf(r), r.alg, r.key);
      return { wrapped: asBuffer(wrapped), version };
    },
    UnwrapKey: async (r: NamedRequest & { wrapped: Buffer }, call: CallWithMetadata) => {
      await access.authorize(call, A.KeysUnwrap, keyScope(r.name));
      return { key: asBuffer((await keys.unwrapKey(refOf(r), r.alg, r.wrapped)).key) };
    },
  };
}
