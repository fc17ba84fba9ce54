/**
 * AES Key Wrap (RFC 3394) with the default IV, via OpenSSL's id-aes*-wrap ciphers.
 * Used by wrapKey/unwrapKey with A128KW/A192KW/A256KW.
 */
import { createCipheriv, createDecipheriv, type KeyObject } from "node:crypto";
import { fail } from "@hsmpool/errors";

/** RFC 3394 section 2.2.3.1 default initial value. */
const DEFAULT_IV = Buffer.from("a6a6a6a6a6a6a6a6", "hex");

function cipherName(kek: KeyObject): string {
  const bits = (kek.symmetricKeySize ?? 0) * 8;
  if (bits !== 128 && bits !== 192 && bits !== 256)
    fail("Internal", `AES-KW needs a 128/192/256-bit KEK, not ${bits}`);
  return `id-aes${bits}-wrap`;
}

/** Wraps key bytes (a multiple of 8 bytes, at least 16). */
export function aesKeyWrap(kek: KeyObject, keyBytes: Uint8Array): Buffer {
  if (keyBytes.length < 16 || keyBytes.length % 8 !== 0) {
    fail(
      "BadParameter",
      `AES key wrap takes a key of at least 16 bytes in multiples of 8; got ${keyBytes.length} bytes`,
    );
  }
  const cipher = createCipheriv(cipherName(kek), kek, DEFAULT_IV);
  return Buffer.concat([cipher.update(keyBytes), cipher.final()]);
}

/** Unwraps and checks the RFC 3394 integrity value; a mismatch is an IntegrityError. */
export function aesKeyUnwrap(kek: KeyObject, wrapped: Uint8Array): Buffer {
  if (wrapped.length < 24 || wrapped.length % 8 !== 0) {
    fail(
      "BadParameter",
      `an AES-wrapped key is at least 24 bytes in multiples of 8; got ${wrapped.length} bytes`,
    );
  }
  const decipher = createDecipheriv(cipherName(kek), kek, DEFAULT_IV);
  try {
    return Buffer.concat([decipher.update(wrapped), decipher.final()]);
  } catch {
    return fail("IntegrityError", "AES key unwrap failed: wrong key-encryption key or corrupted wrapped key");
  }
}

/** RFC 5649 section 3 alternative initial value (its 4-byte constant; the 4-byte length follows inside). */
const PAD_AIV = Buffer.from("a65959a6", "hex");

/** AES Key Wrap with Padding (RFC 5649): any non-empty length, via OpenSSL's id-aes*-wrap-pad. */
export function aesKeyWrapPad(kek: KeyObject, keyBytes: Uint8Array): Buffer {
  if (keyBytes.length === 0) fail("BadParameter", "AES key wrap with padding needs at least one byte");
  const cipher = createCipheriv(`${cipherName(kek)}-pad`, kek, PAD_AIV);
  return Buffer.concat([cipher.update(keyBytes), cipher.final()]);
}

/** Unwraps RFC 5649 and checks its integrity value and padding; a mismatch is an IntegrityError. */
export function aesKeyUnwrapPad(kek: KeyObject, wrapped: Uint8Array): Buffer {
  if (wrapped.length < 16 || wrapped.length % 8 !== 0) {
    fail(
      "BadParameter",
      `an AES-KWP-wrapped key is at least 16 bytes in multiples of 8; got ${wrapped.length}`,
    );
  }
  const decipher = createDecipheriv(`${cipherName(kek)}-pad`, kek, PAD_AIV);
  try {
    return Buffer.concat([decipher.update(wrapped), decipher.final()]);
  } catch {
    return fail("IntegrityError", "AES key unwrap (RFC 5649) failed: wrong key or corrupted wrapped key");
  }
}
