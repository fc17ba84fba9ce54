/** Input checks for byte arguments at the device boundary. */
import { fail } from "@hsmpool/errors";

/** Non-empty Uint8Array or BadParameter naming the argument. */
export function requireBytes(value: unknown, name: string): Uint8Array {
  if (!(value instanceof Uint8Array))
    fail("BadParameter", `${name} must be a Uint8Array (got ${typeName(value)})`);
  if (value.length === 0) fail("BadParameter", `${name} must not be empty`);
  return value;
}

export function optionalBytes(value: unknown, name: string): Uint8Array | undefined {
  return value === undefined ? undefined : requireBytes(value, name);
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return (value as object).constructor?.name ?? "object";
  return typeof value;
}
