/**
 * Field validators shared by the codecs and the request validators. Each throws a
 * BadParameter whose message names the field and says what is expected, and puts
 * the field name in `details.field` so callers (REST facade, CLI) can point at it.
 */
import { fail } from "@hsmpool/errors";

const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9._:/-]*$/;
export const MAX_ID_CHARS = 128;
/** 64 lowercase hex characters: a SHA-256 fingerprint. */
const FINGERPRINT = /^[0-9a-f]{64}$/;
/** HSM key ids (32 lowercase hex) and similar opaque identifiers the shell hands in. */
const KEY_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function bad(field: string, message: string): never {
  return fail("BadParameter", message, { field });
}

/** Pool ids, node ids, partition ids, request ids: 1..128 of [A-Za-z0-9._:/-], starting alphanumeric. */
export function requireIdentifier(value: unknown, field: string): string {
  if (
    typeof value !== "string" ||
    value.length === 0 ||
    value.length > MAX_ID_CHARS ||
    !IDENTIFIER.test(value)
  ) {
    bad(
      field,
      `${field} must be 1..${MAX_ID_CHARS} characters of letters, digits and . _ : / - (starting with a letter or digit); got ${JSON.stringify(value)?.slice(0, 80)}`,
    );
  }
  return value;
}

export function requireFingerprint(value: unknown, field: string): string {
  if (typeof value !== "string" || !FINGERPRINT.test(value)) {
    bad(field, `${field} must be a SHA-256 fingerprint (64 lowercase hex characters)`);
  }
  return value;
}

export function requireKeyId(value: unknown, field: string): string {
  if (typeof value !== "string" || !KEY_ID.test(value)) {
    bad(field, `${field} must be an HSM key id (1..128 characters of letters, digits and . _ : -)`);
  }
  return value;
}

/** Wall-clock milliseconds since the Unix epoch (a non-negative safe integer). */
export function requireTimeMs(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    bad(field, `${field} must be a time in milliseconds since the Unix epoch (a non-negative integer)`);
  }
  return value;
}

/** 1..maxBytes bytes, copied (the caller's buffer may change later). */
export function requireBytes(value: unknown, field: string, maxBytes: number): Uint8Array {
  return Uint8Array.from(requireBytesInPlace(value, field, maxBytes));
}

/** requireBytes without the copy, for bytes a decoder just read (already its own). */
export function requireBytesInPlace(value: unknown, field: string, maxBytes: number): Uint8Array {
  if (!(value instanceof Uint8Array)) bad(field, `${field} must be bytes (Uint8Array)`);
  if (value.length === 0 || value.length > maxBytes) {
    bad(field, `${field} must be 1..${maxBytes} bytes; got ${value.length}`);
  }
  return value;
}

export function requireBoolean(value: unknown, field: string): boolean {
  if (typeof value !== "boolean") bad(field, `${field} must be true or false`);
  return value;
}

const HOST_PORT = /^[A-Za-z0-9.-]{1,253}:(\d{1,5})$/;

/** A network address "host:port" (host: name or IPv4 literal, port 1..65535). */
export function requireHostPort(value: unknown, field: string): string {
  const m = typeof value === "string" ? HOST_PORT.exec(value) : null;
  const port = m ? Number(m[1]) : 0;
  if (!m || port < 1 || port > 65535) {
    bad(
      field,
      `${field} must be "host:port" with a port 1..65535; got ${JSON.stringify(value)?.slice(0, 80)}`,
    );
  }
  return value as string;
}
