/** Parsing of CLI values: base64, byte inputs from flags or files, whole numbers. Mistakes are one BadParameter line. */
import { readFile } from "node:fs/promises";
import { fail } from "@hsmpool/errors";

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Standard base64 (padded) or base64url (unpadded); anything else is refused rather than half-decoded. */
export function decodeBase64(flag: string, value: string): Uint8Array {
  const v = value.trim();
  if (BASE64.test(v)) return new Uint8Array(Buffer.from(v, "base64"));
  if (BASE64URL.test(v) && v.length % 4 !== 1) return new Uint8Array(Buffer.from(v, "base64url"));
  return fail("BadParameter", `${flag} must be base64, got ${JSON.stringify(v.slice(0, 40))}`, { flag });
}

export const encodeBase64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");

export interface ByteInputFlags {
  data?: string;
  text?: string;
  file?: string;
}

/** Exactly one of --data <base64>, --text <utf-8>, --file <path>. */
export async function readByteInput(flags: ByteInputFlags, what: string): Promise<Uint8Array> {
  const given = (["data", "text", "file"] as const).filter((k) => flags[k] !== undefined);
  if (given.length !== 1) {
    fail(
      "BadParameter",
      `give the ${what} with exactly one of --data <base64>, --text <string>, --file <path>`,
    );
  }
  if (flags.data !== undefined) return decodeBase64("--data", flags.data);
  if (flags.text !== undefined) return new Uint8Array(Buffer.from(flags.text, "utf8"));
  const path = flags.file as string;
  return new Uint8Array(
    await readFile(path).catch((e: NodeJS.ErrnoException) =>
      fail("BadParameter", `cannot read --file ${path}: ${e.code ?? e.message}`, { flag: "--file" }),
    ),
  );
}

export function parseWholeNumber(flag: string, value: string, min: number, max: number): number {
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    fail("BadParameter", `${flag} must be a whole number from ${min} to ${max}, got "${value}"`, { flag });
  }
  return n;
}
