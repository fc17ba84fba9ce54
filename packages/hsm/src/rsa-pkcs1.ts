/**
 * RSAES-PKCS1-v1_5 decoding (RFC 8017 section 7.2.2 step 3). node:crypto on Node 20
 * refuses RSA_PKCS1_PADDING for private decryption (CVE-2023-46809) unless OpenSSL
 * does implicit rejection, so RSA1_5 decrypts with raw RSA and unpads here, the same
 * way on every Node version. The scan touches every byte and has one failure path so
 * timing and error do not reveal where the padding went wrong.
 */
import { fail } from "@hsmpool/errors";

const MIN_PADDING_STRING_BYTES = 8;

export function pkcs1v15Unpad(encoded: Uint8Array): Buffer {
  let bad = (encoded[0] ?? 1) | ((encoded[1] ?? 0) ^ 0x02);
  let separator = 0;
  for (let i = 2; i < encoded.length; i++) {
    const isZero = encoded[i] === 0 ? 1 : 0;
    const firstZero = isZero & (separator === 0 ? 1 : 0);
    separator = firstZero ? i : separator;
  }
  bad |= separator === 0 ? 1 : 0;
  bad |= separator - 2 < MIN_PADDING_STRING_BYTES ? 1 : 0;
  if (bad !== 0) fail("IntegrityError", "RSA1_5 decryption failed: wrong key or corrupted ciphertext");
  return Buffer.from(encoded.subarray(separator + 1));
}
