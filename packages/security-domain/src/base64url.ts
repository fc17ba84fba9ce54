/**
 * Strict base64url: Buffer's decoder skips characters outside the alphabet and ignores
 * unused trailing bits, so a flipped character could decode to the same bytes. Every
 * field of the security-domain files goes through this decoder, which accepts only the
 * one canonical spelling of each byte string.
 */
import { fail } from "@hsmpool/errors";

const ALPHABET = /^[A-Za-z0-9_-]*$/;

export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

export function fromBase64Url(text: unknown, what: string): Buffer {
  if (typeof text !== "string" || !ALPHABET.test(text)) fail("BadParameter", `${what} is not base64url`);
  const bytes = Buffer.from(text, "base64url");
  if (bytes.toString("base64url") !== text) fail("BadParameter", `${what} is not canonical base64url`);
  return bytes;
}
