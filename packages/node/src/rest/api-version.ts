/**
 * The api-versions of the Key Vault / Managed HSM data plane this endpoint speaks
 * (../shared/azure-rest-examples/INDEX.md), oldest first. Paths and bodies are the
 * same in all of them; a few operations only exist from some version on.
 */
import { fail } from "@hsmpool/errors";

export const API_VERSIONS = ["7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01"] as const;
export type ApiVersion = (typeof API_VERSIONS)[number];
export const LATEST_API_VERSION: ApiVersion = "2026-04-01";

const isApiVersion = (v: string): v is ApiVersion => (API_VERSIONS as readonly string[]).includes(v);

/** The real service's answer (400 BadParameter) to a missing or unknown api-version. */
export function requireApiVersion(value: string | null): ApiVersion {
  if (value === null || value === "") {
    return fail(
      "BadParameter",
      `The api-version query parameter is missing. Consider using the latest supported version (${LATEST_API_VERSION}).`,
      {
        field: "api-version",
      },
    );
  }
  if (!isApiVersion(value)) {
    return fail(
      "BadParameter",
      `The specified version (${value}) is not recognized. Consider using the latest supported version (${LATEST_API_VERSION}).`,
      {
        field: "api-version",
      },
    );
  }
  return value;
}

/** Refuses an operation older api-versions do not have, as the service does (400 BadParameter). */
export function requireSince(version: ApiVersion, since: ApiVersion, operation: string): void {
  if (API_VERSIONS.indexOf(version) < API_VERSIONS.indexOf(since)) {
    fail(
      "BadParameter",
      `${operation} is not supported in api-version ${version}; it needs ${since} or later.`,
      {
        field: "api-version",
      },
    );
  }
}
