/**
 * gRPC handlers of proto/pool.proto: KeyVault (onto KeyService) and
 * NodeControl.Status. Proto zero values mean "unset" (version 0 = latest, size 0 /
 * crv "" = the key type's default, times 0 = no limit, empty ops = every operation
 * the key type allows).
 */
import type * as grpc from "@grpc/grpc-js";
import type { KeyVersionView } from "@hsmpool/pool";
import type { KeyRefInput, KeyService } from "../keyvault/key-service.js";
import { unary } from "./grpc-errors.js";
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

export function keyVaultImplementation(
  keys: KeyService,
  nodeId: string,
  onInternalError: (e: unknown) => void,
): grpc.UntypedServiceImplementation {
  const u = <Req, Res>(h: (r: Req) => Promise<Res>) => unary(h, onInternalError);
  return {
    CreateKey: u(async (r: CreateKeyRequestMessage) =>
      keyBundleOf(
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
      ),
    ),
    GetKey: u(async (r: { name: string; version: number }) => keyBundleOf(await keys.getKey(refOf(r)))),
    ListKeys: u(async () => ({ keys: (await keys.listKeys()).map(keyBundleOf) })),
    DeleteKey: u(async (r: { name: string; requestId: string }) => ({
      name: await keys.deleteKey(r.name, r.requestId),
    })),
    Sign: u(async (r: NamedRequest & { data: Buffer }) => {
      const { signature, version } = await keys.sign(refOf(r), r.alg, r.data);
      return { signature: asBuffer(signature), version, servedBy: nodeId };
    }),
    Verify: u(async (r: NamedRequest & { data: Buffer; signature: Buffer }) => ({
      valid: await keys.verify(refOf(r), r.alg, r.data, r.signature),
    })),
    Encrypt: u(async (r: NamedRequest & { plaintext: Buffer; iv: Buffer; aad: Buffer }) => {
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
    }),
    Decrypt: u(async (r: NamedRequest & { ciphertext: Buffer; iv: Buffer; tag: Buffer; aad: Buffer }) => {
      const opts: { iv?: Uint8Array; tag?: Uint8Array; aad?: Uint8Array } = {};
      const iv = optionalBytes(r.iv);
      const tag = optionalBytes(r.tag);
      const aad = optionalBytes(r.aad);
      if (iv) opts.iv = iv;
      if (tag) opts.tag = tag;
      if (aad) opts.aad = aad;
      return { plaintext: asBuffer(await keys.decrypt(refOf(r), r.alg, r.ciphertext, opts)) };
    }),
    WrapKey: u(async (r: NamedRequest & { key: Buffer }) => {
      const { wrapped, version } = await keys.wrapKey(refOf(r), r.alg, r.key);
      return { wrapped: asBuffer(wrapped), version };
    }),
    UnwrapKey: u(async (r: NamedRequest & { wrapped: Buffer }) => ({
      key: asBuffer(await keys.unwrapKey(refOf(r), r.alg, r.wrapped)),
    })),
  };
}
