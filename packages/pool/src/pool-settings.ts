/**
 * Pool-wide settings, changed only through the log (SetSetting): soft-delete retention
 * (7..90 days, default 90) and purge protection (off by default; once on it can never
 * be turned off, as in the managed-HSM service). Pure.
 */
import { bad } from "./validate.js";

export interface PoolSettings {
  readonly softDeleteRetentionDays: number;
  readonly purgeProtection: boolean;
}

export const DEFAULT_SETTINGS: PoolSettings = Object.freeze({
  softDeleteRetentionDays: 90,
  purgeProtection: false,
});
export const SETTING_NAMES = ["soft-delete-retention-days", "purge-protection"] as const;
export type SettingName = (typeof SETTING_NAMES)[number];
export const MIN_RETENTION_DAYS = 7;
export const MAX_RETENTION_DAYS = 90;
export const DAY_MS = 86_400_000;

export function requireSettingName(name: unknown): SettingName {
  if (!(SETTING_NAMES as readonly unknown[]).includes(name)) {
    bad(
      "setting",
      `unknown setting ${JSON.stringify(name)?.slice(0, 60)}; expected one of ${SETTING_NAMES.join(", ")}`,
    );
  }
  return name as SettingName;
}

/** The settings after `name = value`; BadParameter for a value out of range or a forbidden change. */
export function changeSetting(current: PoolSettings, nameInput: unknown, value: unknown): PoolSettings {
  const name = requireSettingName(nameInput);
  if (typeof value !== "string") bad("value", "a setting's value is a string");
  if (name === "soft-delete-retention-days") {
    const days = /^\d{1,3}$/.test(value) ? Number(value) : Number.NaN;
    if (!(days >= MIN_RETENTION_DAYS && days <= MAX_RETENTION_DAYS)) {
      bad(
        "value",
        `soft-delete-retention-days must be a whole number of days from ${MIN_RETENTION_DAYS} to ${MAX_RETENTION_DAYS}; got ${JSON.stringify(value).slice(0, 20)}`,
      );
    }
    return Object.freeze({ ...current, softDeleteRetentionDays: days });
  }
  if (value !== "on" && value !== "off")
    bad("value", `purge-protection is "on" or "off"; got ${JSON.stringify(value).slice(0, 20)}`);
  if (current.purgeProtection && value === "off") {
    bad("value", "purge protection cannot be turned off once it is on (as in the managed-HSM service)");
  }
  return Object.freeze({ ...current, purgeProtection: value === "on" });
}

export function settingValue(settings: PoolSettings, name: SettingName): string {
  return name === "purge-protection"
    ? settings.purgeProtection
      ? "on"
      : "off"
    : String(settings.softDeleteRetentionDays);
}

export function isDefaultSettings(s: PoolSettings): boolean {
  return (
    s.softDeleteRetentionDays === DEFAULT_SETTINGS.softDeleteRetentionDays &&
    s.purgeProtection === DEFAULT_SETTINGS.purgeProtection
  );
}
