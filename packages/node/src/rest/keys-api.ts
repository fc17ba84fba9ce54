/**
 * The keys operations of the REST API, each a thin translation of the request onto
 * the node's KeyService (the same functions the gRPC API calls) and of its answer
 * back into the Key Vault JSON shape. No behaviour lives here.
 */
import { fail } from "@hsmpool/errors";
import type { KeyService } from "../keyvault/key-service.js";
import {
  b64url,
  base64urlField,
  keyBundleJson,
  keyId,
  keyItemJson,
  keyRef,
  objectField,
  poolKty,
  stringField,
  timeField,
} from "./key-json.js";
import { pageOf } from "./paging.js";
import type { RestRequest, RestResult } from "./types.js";

const ok = (body: unknown): RestResult => ({ status: 200, body });

export function createKey(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const attributes = objectField(r.body, "attributes");
  const publicExponent = r.body.public_exponent;
  if (publicExponent !== undefined && publicExponent !== null && publicExponent !== 65537) {
    fail("BadParameter", "public_exponent must be 65537, the only exponent this HSM makes", {
      field: "public_exponent",
    });
  }
  if (attributes.exportable === true || r.body.release_policy !== undefined) {
    fail("NotImplemented", "exportable keys and release policies are not implemented by this pool");
  }
  const tags = r.body.tags;
  return keys
    .createKey({
      name: r.params.name as string,
      kty: poolKty(r.body.kty),
      ...(r.body.key_size !== undefined && r.body.key_size !== null
        ? { size: r.body.key_size as number }
        : {}),
      ...(r.body.crv !== undefined && r.body.crv !== null ? { crv: r.body.crv as string } : {}),
      ...(r.body.key_ops !== undefined && r.body.key_ops !== null ? { ops: r.body.key_ops as string[] } : {}),
      enabled: attributes.enabled === undefined ? true : (attributes.enabled as boolean),
      notBeforeMs: timeField(attributes, "nbf"),
      expiresMs: timeField(attributes, "exp"),
      tags: tags === undefined || tags === null ? {} : (tags as Record<string, string>),
      ...(r.requestId ? { requestId: r.requestId } : {}),
    })
    .then((v) => ok(keyBundleJson(r.baseUrl, v)));
}

export async function getKey(keys: KeyService, r: RestRequest): Promise<RestResult> {
  return ok(keyBundleJson(r.baseUrl, await keys.getKey(keyRef(r.params.name as string, r.params.version))));
}

export async function listKeys(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const all = await keys.listKeys();
  return ok(
    pageOf(
      all,
      (v) => v.name,
      (v) => keyItemJson(r.baseUrl, v, false),
      r,
      "/keys",
    ),
  );
}

export async function listKeyVersions(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const name = r.params.name as string;
  const all = await keys.listVersions(name);
  return ok(
    pageOf(
      all,
      (v) => String(v.version).padStart(10, "0"),
      (v) => keyItemJson(r.baseUrl, v, true),
      r,
      `/keys/${name}/versions`,
    ),
  );
}

type CryptoName = "sign" | "verify" | "encrypt" | "decrypt" | "wrapkey" | "unwrapkey";

/** POST /keys/{name}/{version}/{operation}. */
export async function keyOperation(keys: KeyService, r: RestRequest, op: CryptoName): Promise<RestResult> {
  const ref = keyRef(r.params.name as string, r.params.version);
  const alg = stringField(r.body, "alg");
  const kid = (version: number) => keyId(r.baseUrl, ref.name, version);
  switch (op) {
    case "sign": {
      const { signature, version } = await keys.signDigest(ref, alg, base64urlField(r.body, "value", true));
      return ok({ kid: kid(version), value: b64url(signature) });
    }
    case "verify": {
      const valid = await keys.verifyDigest(
        ref,
        alg,
        base64urlField(r.body, "digest", true),
        base64urlField(r.body, "value", true),
      );
      return ok({ value: valid });
    }
    case "encrypt": {
      const iv = base64urlField(r.body, "iv", false);
      const aad = base64urlField(r.body, "aad", false);
      const out = await keys.encrypt(ref, alg, base64urlField(r.body, "value", true), {
        ...(iv && iv.length > 0 ? { iv } : {}),
        ...(aad && aad.length > 0 ? { aad } : {}),
      });
      return ok({
        kid: kid(out.version),
        value: b64url(out.ciphertext),
        ...(out.iv ? { iv: b64url(out.iv) } : {}),
        ...(out.tag ? { tag: b64url(out.tag) } : {}),
        ...(aad && aad.length > 0 ? { aad: b64url(aad) } : {}),
      });
    }
    case "decrypt": {
      const iv = base64urlField(r.body, "iv", false);
      const tag = base64urlField(r.body, "tag", false);
      const aad = base64urlField(r.body, "aad", false);
      const { plaintext, version } = await keys.decrypt(ref, alg, base64urlField(r.body, "value", true), {
        ...(iv && iv.length > 0 ? { iv } : {}),
        ...(tag && tag.length > 0 ? { tag } : {}),
        ...(aad && aad.length > 0 ? { aad } : {}),
      });
      return ok({ kid: kid(version), value: b64url(plaintext) });
    }
    case "wrapkey": {
      const { wrapped, version } = await keys.wrapKey(ref, alg, base64urlField(r.body, "value", true));
      return ok({ kid: kid(version), value: b64url(wrapped) });
    }
    case "unwrapkey": {
      const { key, version } = await keys.unwrapKey(ref, alg, base64urlField(r.body, "value", true));
      return ok({ kid: kid(version), value: b64url(key) });
    }
  }
}
