/**
 * Managed HSM account settings over REST (GetSettings, GetSetting, UpdateSetting) onto
 * the pool's settings (KeyService; changes committed through Raft). The service's own
 * setting, AllowKeyManagementOperationsThroughARM, is listed as it is here: "false",
 * since this pool has no Azure Resource Manager; setting it to "true" is refused rather
 * than stored without effect. purge-protection is a boolean as the SDKs read it
 * ("true"/"false" on the wire, the pool's "on"/"off" inside).
 */
import { fail } from "@hsmpool/errors";
import type { KeyService } from "../keyvault/key-service.js";
import type { RestRequest, RestResult } from "./types.js";

const ARM_SETTING = "AllowKeyManagementOperationsThroughARM";

interface SettingJson {
  name: string;
  value: string;
  type?: "boolean";
}

const armSetting = (): SettingJson => ({ name: ARM_SETTING, value: "false", type: "boolean" });

function settingJson(s: { name: string; value: string }): SettingJson {
  if (s.name === "purge-protection")
    return { name: s.name, value: String(s.value === "on"), type: "boolean" };
  return { name: s.name, value: s.value };
}

/** The pool's value for a wire value: booleans become "on"/"off"; anything else is checked by the pool. */
function poolValueOf(name: string, value: string): string {
  if (name !== "purge-protection") return value;
  if (value === "true") return "on";
  if (value === "false") return "off";
  return fail(
    "BadParameter",
    `purge-protection is a boolean setting: "true" or "false" (got ${JSON.stringify(value).slice(0, 20)})`,
    {
      field: "value",
    },
  );
}

function requestedValue(r: RestRequest): string {
  const value = r.body.value;
  if (typeof value !== "string")
    return fail("BadParameter", "the body must carry `value` as a string", { field: "value" });
  return value;
}

export async function listSettings(keys: KeyService, _r: RestRequest): Promise<RestResult> {
  return { status: 200, body: { settings: [armSetting(), ...(await keys.listSettings()).map(settingJson)] } };
}

export async function getSetting(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const name = r.params.name as string;
  if (name === ARM_SETTING) return { status: 200, body: armSetting() };
  return { status: 200, body: settingJson(await keys.getSetting(name)) };
}

export async function updateSetting(keys: KeyService, r: RestRequest): Promise<RestResult> {
  const name = r.params.name as string;
  const value = requestedValue(r);
  if (name === ARM_SETTING) {
    if (value !== "false")
      fail("BadParameter", `${ARM_SETTING} is always "false" here: this pool has no Azure Resource Manager`, {
        field: "value",
      });
    return { status: 200, body: armSetting() };
  }
  const changed = await keys.setSetting({
    name,
    value: poolValueOf(name, value),
    ...(r.requestId ? { requestId: r.requestId } : {}),
  });
  return { status: 200, body: settingJson(changed) };
}
