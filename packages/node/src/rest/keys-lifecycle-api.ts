/**
 * The key-lifecycle operations of the REST API (soft delete, recover, purge, update,
 * rotate, rotation policy, backup/restore, import, random bytes): thin translations
 * onto KeyService, like keys-api.ts. No behaviour lives here.
 */
import { fail } from "@hsmpool/errors";
import { parseByokBlob } from "@hsmpool/hsm";
import { type DeletedKeyView, fromAzureRotationPolicy, toAzureRotationPolicy } from "@hsmpool/pool";
import type { KeyService } from "../keyvault/key-service.js";
import {
  attributesJson,
  b64url,
  base64urlField,
  keyBundleJson,
  keyId,
  keyRef,
  objectField,
  timeField,
} from "./key-json.js";
import { pageOf } from "./paging.js";
import type { RestRequest, RestResult } from "./types.js";

const ok = (body: unknown): RestResult => ({ status: 200, body });
const seconds = (ms: number): number => Math.floor(ms / 1000);
const requestIdOf = (r: RestRequest) => (r.requestId ? { requestId: r.requestId } : {});

function deletedFields(baseUrl: string, d: DeletedKeyView): Record<string, unknown> {
  return {
    recoveryId: `${baseUrl}/deletedkeys/${d.name}`,
    deletedDate: seconds(d.deletedMs),
    scheduledPurgeDate: seconds(d.scheduledPurgeMs),
  };
}

/** DeletedKeyBundle: the key bundle of the latest version plus the recovery fields. */
function deletedKeyJson(baseUrl: string, d: DeletedKeyView): Record<string, unknown> {
  return { ...keyBundleJson(baseUrl, d.latest), ...deletedFields(baseUrl, d) };
}

/** Soft delete: the answer carries recoveryId, so the SDK's poller waits until getDeletedKey finds it. */
export async function deleteKey(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const name = r.params.name as string;
  await keys.deleteKey(name, r.requestId);
  return ok(deletedKeyJson(r.baseUrl, await keys.getDeletedKey(name)));
}

export async function getDeletedKey(keys: KeyService, r: RestRequest): Promise<RestResult> {
  return ok(deletedKeyJson(r.baseUrl, await keys.getDeletedKey(r.params.name as string)));
}

export async function listDeletedKeys(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const all = await keys.listDeletedKeys();
  return ok(
    pageOf(
      all,
      (d) => d.name,
      (d) => ({
        kid: keyId(r.baseUrl, d.name),
        attributes: attributesJson(d.latest),
        ...deletedFields(r.baseUrl, d),
      }),
      r,
      "/deletedkeys",
    ),
  );
}

export async function recoverDeletedKey(keys: KeyService, r: RestRequest): Promise<RestResult> {
  return ok(keyBundleJson(r.baseUrl, await keys.recoverKey(r.params.name as string, r.requestId)));
}

export async function purgeDeletedKey(keys: KeyService, r: RestRequest): Promise<RestResult> {
  await keys.purgeKey(r.params.name as string, r.requestId);
  return { status: 204 };
}

export async function rotateKey(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const rotated = await keys.rotateKey({ name: r.params.name as string, ...requestIdOf(r) });
  return ok(keyBundleJson(r.baseUrl, rotated));
}

/** PATCH /keys/{name}/{version}: only the fields the body names change. */
export async function updateKey(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const attributes = objectField(r.body, "attributes");
  const present = (v: unknown) => v !== undefined && v !== null;
  const updated = await keys.updateKey({
    ...keyRef(r.params.name as string, r.params.version),
    ...(present(r.body.key_ops) ? { ops: r.body.key_ops as string[] } : {}),
    ...(attributes.enabled !== undefined ? { enabled: attributes.enabled as boolean } : {}),
    ...("nbf" in attributes ? { notBeforeMs: timeField(attributes, "nbf") } : {}),
    ...("exp" in attributes ? { expiresMs: timeField(attributes, "exp") } : {}),
    ...(present(r.body.tags) ? { tags: r.body.tags as Record<string, string> } : {}),
    ...requestIdOf(r),
  });
  return ok(keyBundleJson(r.baseUrl, updated));
}

export async function getRotationPolicy(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const name = r.params.name as string;
  const view = await keys.getRotationPolicy(name);
  if (!view) {
    await keys.getKey({ name }); // KeyNotFound for a missing key; an existing key without a policy has an empty one
    return ok({ id: `${keyId(r.baseUrl, name)}/rotationpolicy`, lifetimeActions: [], attributes: {} });
  }
  const json = toAzureRotationPolicy(name, view.policy, view);
  return ok({ ...json, id: `${keyId(r.baseUrl, name)}/rotationpolicy` });
}

export async function updateRotationPolicy(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const name = r.params.name as string;
  const view = await keys.setRotationPolicy({
    name,
    policy: fromAzureRotationPolicy(r.body),
    ...requestIdOf(r),
  });
  return ok({
    ...toAzureRotationPolicy(name, view.policy, view),
    id: `${keyId(r.baseUrl, name)}/rotationpolicy`,
  });
}

export async function getRandomBytes(keys: KeyService, r: RestRequest): Promise<RestResult> {
  return ok({ value: b64url(await keys.getRandomBytes(r.body.count as number)) });
}

export async function backupKey(keys: KeyService, r: RestRequest): Promise<RestResult> {
  return ok({ value: b64url(await keys.backupKey(r.params.name as string)) });
}

export async function restoreKey(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const restored = await keys.restoreKey(base64urlField(r.body, "value", true), r.requestId);
  return ok(keyBundleJson(r.baseUrl, restored));
}

/** PUT /keys/{name}: a private JWK (BYOK transfer blobs, key_hsm, are not taken over REST yet). */
/**
 * ImportKey: a plain JWK, or BYOK (`kty` "RSA-HSM"/"EC-HSM"/"oct-HSM" with `key_hsm` =
 * the .byok file's bytes, base64url): the blob's header.kid names the key-exchange key by
 * its key id (`.../keys/<kek>/<version>`), and the target is unwrapped only inside the HSM.
 */
export async function importKey(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const jwk = objectField(r.body, "key");
  const attributes = objectField(r.body, "attributes");
  const tags = r.body.tags;
  const common = {
    name: r.params.name as string,
    ...(Array.isArray(jwk.key_ops) ? { ops: jwk.key_ops as string[] } : {}),
    enabled: attributes.enabled === undefined ? true : (attributes.enabled as boolean),
    notBeforeMs: timeField(attributes, "nbf"),
    expiresMs: timeField(attributes, "exp"),
    tags: tags === undefined || tags === null ? {} : (tags as Record<string, string>),
    ...requestIdOf(r),
  };
  if (jwk.key_hsm === undefined)
    return ok(keyBundleJson(r.baseUrl, await keys.importKey({ ...common, jwk })));
  const byok = base64urlField(jwk, "key_hsm", true).toString("utf8");
  return ok(keyBundleJson(r.baseUrl, await keys.importByok({ ...common, byok, kek: kekOf(byok) })));
}

/** The key-exchange key a .byok blob's header.kid names: `<any prefix>/keys/<name>/<version>`. */
function kekOf(byok: string): { name: string; version: number } {
  const { kid } = parseByokBlob(byok);
  const m = /\/keys\/([0-9A-Za-z-]{1,127})\/([1-9][0-9]{0,9})$/.exec(kid);
  if (!m)
    return fail(
      "BadParameter",
      `the BYOK blob's header.kid must be the key-exchange key's id (.../keys/<name>/<version>); got ${JSON.stringify(kid.slice(0, 80))}`,
      { field: "key_hsm" },
    );
  return { name: m[1] as string, version: Number(m[2]) };
}
