/**
 * gRPC handlers of the key surface beyond create/get/list/delete (proto/pool.proto:
 * RotateKey ... UpdateSetting), onto KeyService. Proto zero values mean "unset" as in
 * keyvault-handlers.ts; proto3 `optional` fields are present only when sent.
 */
import type * as grpc from "@grpc/grpc-js";
import { fail } from "@hsmpool/errors";
import {
  DataActions as A,
  type DeletedKeyView,
  fromAzureRotationPolicy,
  KEYS_SCOPE,
  keyScope,
  ROOT_SCOPE,
  type RotationPolicyView,
  toAzureRotationPolicy,
} from "@hsmpool/pool";
import type { ImportAttributesInput, KeyService, UpdateKeyInput } from "../keyvault/key-service.js";
import type { DataPlaneAccess } from "./access.js";
import { keyBundleOf } from "./keyvault-handlers.js";

type Unary = <Req, Res>(h: (r: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>) => unknown;

interface UpdateKeyMessage {
  name: string;
  version: number;
  ops: string[];
  enabled?: boolean;
  notBeforeMs?: number;
  expiresMs?: number;
  tags: Record<string, string>;
  setTags: boolean;
  requestId: string;
  _enabled?: string;
  _notBeforeMs?: string;
  _expiresMs?: string;
}

interface ImportKeyMessage {
  name: string;
  jwkJson: string;
  byokJson: string;
  kekName: string;
  kekVersion: number;
  ops: string[];
  disabled: boolean;
  notBeforeMs: number;
  expiresMs: number;
  tags: Record<string, string>;
  requestId: string;
}

/** proto3 optional: present when its synthetic oneof names it (proto-loader `oneofs: true`). */
function present<T>(r: UpdateKeyMessage, field: "enabled" | "notBeforeMs" | "expiresMs"): T | undefined {
  const marker = r[`_${field}` as const];
  return marker === field ? (r[field] as T) : undefined;
}

export function updateKeyInputOf(r: UpdateKeyMessage): UpdateKeyInput {
  const enabled = present<boolean>(r, "enabled");
  const notBefore = present<number>(r, "notBeforeMs");
  const expires = present<number>(r, "expiresMs");
  return {
    name: r.name,
    ...(r.version > 0 ? { version: r.version } : {}),
    ...(r.ops.length > 0 ? { ops: r.ops } : {}),
    ...(enabled !== undefined ? { enabled } : {}),
    ...(notBefore !== undefined ? { notBeforeMs: notBefore > 0 ? notBefore : null } : {}),
    ...(expires !== undefined ? { expiresMs: expires > 0 ? expires : null } : {}),
    ...(r.setTags ? { tags: r.tags } : {}),
    ...(r.requestId ? { requestId: r.requestId } : {}),
  };
}

function deletedKeyOf(d: DeletedKeyView) {
  return {
    key: keyBundleOf(d.latest),
    deletedMs: d.deletedMs,
    scheduledPurgeMs: d.scheduledPurgeMs,
    versions: d.versions,
  };
}

function policyJsonOf(p: RotationPolicyView | null): { policyJson: string } {
  return { policyJson: p ? JSON.stringify(toAzureRotationPolicy(p.name, p.policy, p)) : "" };
}

function parseJson(text: string, field: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return fail("BadParameter", `${field} is not valid JSON`, { field });
  }
}

function importAttributesOf(r: ImportKeyMessage): ImportAttributesInput {
  return {
    name: r.name,
    ...(r.ops.length > 0 ? { ops: r.ops } : {}),
    enabled: !r.disabled,
    notBeforeMs: r.notBeforeMs > 0 ? r.notBeforeMs : null,
    expiresMs: r.expiresMs > 0 ? r.expiresMs : null,
    tags: r.tags,
    ...(r.requestId ? { requestId: r.requestId } : {}),
  };
}

/**
 * Every handler authorises first with the managed-HSM data action of its operation
 * (the same rows as node/src/rest/routes.ts). Settings have no data action in the real
 * service's table: reading them needs an authenticated caller, changing them the
 * hsmpool extension SettingsWrite (an Administrator's; see pool/src/access/data-actions.ts).
 */
export function keyLifecycleHandlers(
  keys: KeyService,
  u: Unary,
  access: DataPlaneAccess,
): Record<string, unknown> {
  return {
    RotateKey: u(async (r: { name: string; requestId: string }, call) => {
      await access.authorize(call, A.KeysRotate, keyScope(r.name));
      return keyBundleOf(
        await keys.rotateKey({ name: r.name, ...(r.requestId ? { requestId: r.requestId } : {}) }),
      );
    }),
    ListKeyVersions: u(async (r: { name: string }, call) => {
      await access.authorize(call, A.KeysRead, keyScope(r.name));
      return { keys: (await keys.listVersions(r.name)).map(keyBundleOf) };
    }),
    UpdateKey: u(async (r: UpdateKeyMessage, call) => {
      await access.authorize(call, A.KeysWrite, keyScope(r.name));
      return keyBundleOf(await keys.updateKey(updateKeyInputOf(r)));
    }),
    ListDeletedKeys: u(async (_r: unknown, call) => {
      await access.authorize(call, A.DeletedKeysRead, KEYS_SCOPE);
      return { keys: (await keys.listDeletedKeys()).map(deletedKeyOf) };
    }),
    GetDeletedKey: u(async (r: { name: string }, call) => {
      await access.authorize(call, A.DeletedKeysRead, keyScope(r.name));
      return deletedKeyOf(await keys.getDeletedKey(r.name));
    }),
    RecoverDeletedKey: u(async (r: { name: string; requestId: string }, call) => {
      await access.authorize(call, A.DeletedKeysRecover, keyScope(r.name));
      return keyBundleOf(await keys.recoverKey(r.name, r.requestId || undefined));
    }),
    PurgeDeletedKey: u(async (r: { name: string; requestId: string }, call) => {
      await access.authorize(call, A.DeletedKeysPurge, keyScope(r.name));
      return { name: await keys.purgeKey(r.name, r.requestId || undefined) };
    }),
    SetRotationPolicy: u(async (r: { name: string; policyJson: string; requestId: string }, call) => {
      await access.authorize(call, A.KeysWrite, keyScope(r.name));
      return policyJsonOf(
        await keys.setRotationPolicy({
          name: r.name,
          policy: fromAzureRotationPolicy(parseJson(r.policyJson, "policy")),
          ...(r.requestId ? { requestId: r.requestId } : {}),
        }),
      );
    }),
    GetRotationPolicy: u(async (r: { name: string }, call) => {
      await access.authorize(call, A.KeysRead, keyScope(r.name));
      return policyJsonOf(await keys.getRotationPolicy(r.name));
    }),
    BackupKey: u(async (r: { name: string }, call) => {
      await access.authorize(call, A.KeysBackup, keyScope(r.name));
      return { value: Buffer.from(await keys.backupKey(r.name)) };
    }),
    RestoreKey: u(async (r: { value: Buffer; requestId: string }, call) => {
      await access.authorize(call, A.KeysRestore, KEYS_SCOPE);
      return keyBundleOf(await keys.restoreKey(r.value, r.requestId || undefined));
    }),
    ImportKey: u(async (r: ImportKeyMessage, call) => {
      await access.authorize(call, A.KeysImport, keyScope(r.name));
      if ((r.jwkJson === "") === (r.byokJson === "")) {
        fail("BadParameter", "import takes exactly one of a JWK or a BYOK blob", { field: "key" });
      }
      const attributes = importAttributesOf(r);
      if (r.jwkJson !== "") {
        return keyBundleOf(await keys.importKey({ ...attributes, jwk: parseJson(r.jwkJson, "jwk") }));
      }
      if (r.kekName === "")
        fail("BadParameter", "a BYOK import names its key-exchange key (kek)", { field: "kek" });
      return keyBundleOf(
        await keys.importByok({
          ...attributes,
          byok: r.byokJson,
          kek: r.kekVersion > 0 ? { name: r.kekName, version: r.kekVersion } : { name: r.kekName },
        }),
      );
    }),
    GetRandomBytes: u(async (r: { count: number }, call) => {
      await access.authorize(call, A.Rng, ROOT_SCOPE);
      return { value: Buffer.from(await keys.getRandomBytes(r.count)) };
    }),
    ListSettings: u(async (_r: unknown, call) => {
      await access.authenticate(call);
      return { settings: await keys.listSettings() };
    }),
    GetSetting: u(async (r: { name: string }, call) => {
      await access.authenticate(call);
      return keys.getSetting(r.name);
    }),
    UpdateSetting: u(async (r: { name: string; value: string; requestId: string }, call) => {
      await access.authorize(call, A.SettingsWrite, ROOT_SCOPE);
      return keys.setSetting({
        name: r.name,
        value: r.value,
        ...(r.requestId ? { requestId: r.requestId } : {}),
      });
    }),
  };
}
