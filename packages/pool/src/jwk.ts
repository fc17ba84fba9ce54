/**
 * Public JSON Web Keys as the pool stores and signs them: string members only,
 * canonical member order, and never a private member (a JWK carrying "d" or "k"
 * would put key material into the Raft log, so it is refused at every boundary).
 */

import type { ByteReader, ByteWriter } from "@hsmpool/codec";
import { fail } from "@hsmpool/errors";

/** A public JWK: every member a string (kty, crv, x, y, n, e, kid, ...). */
export type PublicJwk = Readonly<Record<string, string>>;

/** The owner root and partition transfer keys: EC P-384 public keys. */
export type P384PublicJwk = {
  readonly kty: "EC";
  readonly crv: "P-384";
  readonly x: string;
  readonly y: string;
};

const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k", "oth"];
const MAX_MEMBERS = 16;
const MAX_MEMBER_NAME_CHARS = 32;
const MAX_MEMBER_VALUE_CHARS = 2048;
const MEMBER_NAME = /^[A-Za-z0-9_]+$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Validates a public JWK; returns a copy with members in canonical (sorted) order. */
export function validatePublicJwk(input: unknown, field: string): PublicJwk {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    fail("BadParameter", `${field} must be a JWK object`, { field });
  }
  const entries = Object.entries(input as Record<string, unknown>);
  if (entries.length > MAX_MEMBERS)
    fail("BadParameter", `${field} has more than ${MAX_MEMBERS} members`, { field });
  const out: Record<string, string> = {};
  for (const [name, value] of entries.sort(([a], [b]) => compareStrings(a, b))) {
    if (PRIVATE_MEMBERS.includes(name)) {
      fail("BadParameter", `${field} contains the private member "${name}"; only public keys may be stored`, {
        field,
      });
    }
    if (!MEMBER_NAME.test(name) || name.length > MAX_MEMBER_NAME_CHARS) {
      fail("BadParameter", `${field} has an invalid member name ${JSON.stringify(name.slice(0, 40))}`, {
        field,
      });
    }
    if (typeof value !== "string" || value.length > MAX_MEMBER_VALUE_CHARS) {
      fail(
        "BadParameter",
        `${field}.${name} must be a string of at most ${MAX_MEMBER_VALUE_CHARS} characters`,
        {
          field,
        },
      );
    }
    out[name] = value;
  }
  if (out.kty !== "RSA" && out.kty !== "EC")
    fail("BadParameter", `${field}.kty must be "RSA" or "EC"`, { field });
  return Object.freeze(out);
}

/** Validates an EC P-384 public JWK and keeps only kty, crv, x, y (drops kid and the like). */
export function validateP384Jwk(input: unknown, field: string): P384PublicJwk {
  const jwk = input as Partial<Record<string, unknown>> | null;
  if (typeof jwk !== "object" || jwk === null)
    fail("BadParameter", `${field} must be a JWK object`, { field });
  if (jwk.kty !== "EC" || jwk.crv !== "P-384") {
    fail("BadParameter", `${field} must be an EC P-384 public key (kty "EC", crv "P-384")`, { field });
  }
  if ("d" in jwk) fail("BadParameter", `${field} contains the private member "d"`, { field });
  for (const coord of ["x", "y"] as const) {
    const value = jwk[coord];
    if (typeof value !== "string" || base64UrlDecode(value)?.length !== 48) {
      fail("BadParameter", `${field}.${coord} must be 48 bytes of unpadded base64url`, { field });
    }
  }
  return Object.freeze({ kty: "EC", crv: "P-384", x: jwk.x as string, y: jwk.y as string });
}

export function writeJwk(w: ByteWriter, jwk: PublicJwk): void {
  const names = Object.keys(jwk).sort(compareStrings);
  w.list(names, (w, name) => w.string(name).string(jwk[name] ?? ""));
}

/** Member values every key of a type repeats: decoded once and shared (each decode is a new string). */
const COMMON_VALUES = new Map(["EC", "RSA", "P-256", "P-256K", "P-384", "P-521", "AQAB"].map((v) => [v, v]));

export function readJwk(r: ByteReader, field: string): Record<string, string> {
  const out: Record<string, string> = {};
  let previous: string | null = null;
  for (const [name, value] of r.list(field, MAX_MEMBERS, (r): [string, string] => [
    r.string(`${field} member name`, MAX_MEMBER_NAME_CHARS),
    r.string(`${field} member value`, MAX_MEMBER_VALUE_CHARS),
  ])) {
    // Canonical order is part of the format: a reordered JWK is not the same bytes.
    if (previous !== null && compareStrings(previous, name) >= 0)
      r.corrupt(`${field} members are not in order`);
    previous = name;
    out[name] = COMMON_VALUES.get(value) ?? value;
  }
  return out;
}

/** Ordinal (UTF-16 code unit) comparison: locale-independent, so every member sorts alike. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sameJwk(a: PublicJwk, b: PublicJwk): boolean {
  const ka = Object.keys(a).sort(compareStrings);
  const kb = Object.keys(b).sort(compareStrings);
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** Unpadded base64url to bytes; null when the text is not canonical base64url. */
export function base64UrlDecode(text: string): Uint8Array | null {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let o = 0;
  for (const ch of text) {
    value = ((value << 6) | ALPHABET.indexOf(ch)) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (value >> bits) & 0xff;
    }
  }
  // Leftover bits must be zero, otherwise two texts would decode to the same bytes.
  if ((value & ((1 << bits) - 1)) !== 0) return null;
  return out;
}

export function base64UrlEncode(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += ALPHABET[(value >> bits) & 63];
    }
  }
  if (bits > 0) out += ALPHABET[(value << (6 - bits)) & 63];
  return out;
}
