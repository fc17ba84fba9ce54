/** AES-256-GCM with a fresh 96-bit IV per message; a failed tag is one clear refusal. */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { fail } from "@hsmpool/errors";

export interface Sealed {
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

export function aesGcmSeal(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Sealed {
  if (key.length !== 32) fail("Internal", "AES-256-GCM needs a 32-byte key");
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, ciphertext, tag: cipher.getAuthTag() };
}

export function aesGcmOpen(key: Uint8Array, sealed: Sealed, aad: Uint8Array, refusal: string): Buffer {
  if (key.length !== 32 || sealed.iv.length !== 12 || sealed.tag.length !== 16) fail("BadParameter", refusal);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, sealed.iv);
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.tag);
    return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
  } catch {
    return fail("BadParameter", refusal);
  }
}
