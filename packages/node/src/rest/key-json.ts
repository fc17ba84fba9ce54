/**
 * The Key Vault JSON shapes of keys (KeyBundle, KeyItem, DeletedKeyBundle) rendered
 * from the pool's key views, and the small readers of request bodies: base64url
 * byte fields, Unix-seconds times, names and versions in paths. Pure functions.
 */
import { fail } from "@hsmpool/errors";
import type { KeyVersionView } from "@hsmpool/pool";
import type { KeyRefInput } from "../keyvault/key-service.js";

/** Every key of a Managed HSM is HSM-backed: the service reports the -HSM key types. */
const HSM_KTY = { RSA: "RSA-HSM", EC: "EC-HSM", oct: "oct-HSM" } as const;

/** Request key types: the plain names and their -HSM forms mean the same here. */
export function poolKty(kty: unknown): string {
  if (typeof kty !== "string")
    return fail("BadParameter", "kty is required (RSA, RSA-HSM, EC, EC-HSM, oct, oct-HSM)", { field: "kty" });
  return kty.endsWith("-HSM") ? kty.slice(0, -4) : kty;
}

/** Soft delete with the default 90-day retention and purge protection off (the level is not yet derived from the settings). */
export const RECOVERY_LEVEL = "Recoverable+Purgeable";

const seconds = (ms: number): number => Math.floor(ms / 1000);

export function keyId(baseUrl: string, name: string, version?: number): string {
  return version === undefined ? `${baseUrl}/keys/${name}` : `${baseUrl}/keys/${name}/${version}`;
}

export function attributesJson(v: KeyVersionView): Record<string, unknown> {
  return {
    enabled: v.attributes.enabled,
    ...(v.attributes.notBeforeMs !== null ? { nbf: seconds(v.attributes.notBeforeMs) } : {}),
    ...(v.attributes.expiresMs !== null ? { exp: seconds(v.attributes.expiresMs) } : {}),
    created: seconds(v.createdMs),
    updated: seconds(v.updatedMs),
    recoveryLevel: RECOVERY_LEVEL,
  };
}

const tagsJson = (v: KeyVersionView) =>
  Object.keys(v.attributes.tags).length > 0 ? { tags: { ...v.attributes.tags } } : {};

/** KeyBundle: the public JWK (with kid and key_ops), attributes and tags. */
export function keyBundleJson(baseUrl: string, v: KeyVersionView): Record<string, unknown> {
  const jwk: Record<string, unknown> = {
    kid: keyId(baseUrl, v.name, v.version),
    kty: HSM_KTY[v.shape.kty],
    key_ops: [...v.ops],
    ...(v.publicJwk ? withoutKty(v.publicJwk) : {}),
  };
  return { key: jwk, attributes: attributesJson(v), ...tagsJson(v) };
}

function withoutKty(jwk: Readonly<Record<string, string>>): Record<string, string> {
  const { kty: _kty, ...rest } = jwk;
  return rest;
}

/** KeyItem of a list: kid without version for GetKeys, with it for GetKeyVersions. */
export function keyItemJson(
  baseUrl: string,
  v: KeyVersionView,
  withVersion: boolean,
): Record<string, unknown> {
  return {
    kid: keyId(baseUrl, v.name, withVersion ? v.version : undefined),
    attributes: attributesJson(v),
    ...tagsJson(v),
  };
}

/** A path's key version: empty = the latest; else the pool's version number. */
export function keyRef(name: string, version: string | undefined): KeyRefInput {
  if (version === undefined || version === "") return { name };
  const n = /^[1-9][0-9]{0,9}$/.test(version) ? Number(version) : Number.NaN;
  if (!Number.isSafeInteger(n))
    fail("KeyNotFound", `A key with (name/id) ${name}/${version} was not found in this key vault.`);
  return { name, version: n };
}

export function base64urlField(body: Record<string, unknown>, field: string, required: true): Buffer;
export function base64urlField(
  body: Record<string, unknown>,
  field: string,
  required: false,
): Buffer | undefined;
export function base64urlField(
  body: Record<string, unknown>,
  field: string,
  required: boolean,
): Buffer | undefined {
  const v = body[field];
  if (v === undefined || v === null) {
    if (required) fail("BadParameter", `${field} is required`, { field });
    return undefined;
  }
  if (typeof v !== "string" || !/^[A-Za-z0-9_-]*={0,2}$/.test(v)) {
    return fail("BadParameter", `${field} must be a base64url string`, { field });
  }
  return Buffer.from(v, "base64url");
}

export function stringField(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (typeof v !== "string" || v === "") return fail("BadParameter", `${field} is required`, { field });
  return v;
}

/** Unix seconds (nbf, exp) → ms; absent → null. */
export function timeField(attributes: Record<string, unknown>, field: string): number | null {
  const v = attributes[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    return fail("BadParameter", `attributes.${field} must be a time in Unix seconds`, {
      field: `attributes.${field}`,
    });
  }
  return v * 1000;
}

export const b64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64url");

/** A JSON object body, or BadParameter (a missing body is an empty object for bodiless operations). */
export function objectField(body: Record<string, unknown>, field: string): Record<string, unknown> {
  const v = body[field];
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v))
    return fail("BadParameter", `${field} must be an object`, { field });
  return v as Record<string, unknown>;
}
