import { fail } from "@hsmpool/errors";
import { US_PER_MS, US_PER_S } from "./scheduler.js";

/**
 * Parsing of simulator CLI flags. Every mistake is one BadParameter line naming
 * the flag, so `hsmpool sim ...` can print it as is.
 */

/** A non-negative whole number (seeds may be 0). */
export function parseSeedFlag(flag: string, value: string): number {
  const n = /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n))
    fail("BadParameter", `${flag} must be a whole number >= 0, got "${value}"`, { flag });
  return n;
}

/** A count from 1 to max. */
export function parseCountFlag(flag: string, value: string, max: number): number {
  const n = /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) {
    fail("BadParameter", `${flag} must be a whole number from 1 to ${max}, got "${value}"`, { flag });
  }
  return n;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_US: Record<string, number> = { ms: US_PER_MS, s: US_PER_S, m: 60 * US_PER_S, h: 3600 * US_PER_S };

/** "60s", "1.5s", "500ms", "2m", "1h" or a bare number of seconds -> µs (at least 1 s, at most 24 h). */
export function parseDurationFlag(flag: string, value: string): number {
  const m = DURATION.exec(value.trim());
  const us = m ? Math.round(Number(m[1]) * (UNIT_US[m[2] ?? "s"] as number)) : Number.NaN;
  if (!Number.isSafeInteger(us) || us < US_PER_S || us > 24 * 3600 * US_PER_S) {
    fail(
      "BadParameter",
      `${flag} must be a simulated time from 1s to 24h such as 60s, 90s or 2m, got "${value}"`,
      {
        flag,
      },
    );
  }
  return us;
}

/** "3,7,12" -> [3, 7, 12]; "none" -> [] (replay with every fault dropped). */
export function parseFaultListFlag(flag: string, value: string): number[] {
  if (value.trim() === "none") return [];
  const parts = value.split(",").map((p) => p.trim());
  if (parts.some((p) => !/^\d{1,6}$/.test(p))) {
    fail(
      "BadParameter",
      `${flag} must be fault numbers separated by commas (e.g. 3,7) or "none", got "${value}"`,
      {
        flag,
      },
    );
  }
  return parts.map(Number);
}

/** One of `allowed`, else a BadParameter listing them. */
export function parseChoiceFlag<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    fail("BadParameter", `${flag} must be one of ${allowed.join(", ")}, got "${value}"`, { flag });
  }
  return value as T;
}
