/**
 * The simulated HSM's AES-256-GCM. What the node needs from it is what AES-GCM gives:
 * a ciphertext as long as the plaintext that does not show it, a 16-byte tag, and a
 * refusal when the key, IV, AAD, ciphertext or tag differ from the sealing call's. This
 * gives exactly that, deterministically and in plain JS: a keystream in counter mode
 * and a 128-bit hash over (key, IV, AAD, ciphertext), both keyed by the key material.
 * A real cipher's per-call setup (createCipheriv, for every WAL record the node seals)
 * was ~3% of a pool run. Not secure against an adversary: the simulation has none.
 *
 * simMac is the application keys' signature the same way (32 bytes, a function of key
 * and data; HMAC-SHA256 before, ~1% of a run).
 */
import { fail } from "@hsmpool/errors";
import { finalize, TraceHash } from "../trace.js";

export const TAG_BYTES = 16;
const GOLDEN = 0x9e3779b9;

function keyed(domain: number, key: Uint8Array, iv: Uint8Array): TraceHash {
  const h = new TraceHash();
  h.add(domain);
  h.addBytes(key);
  h.addBytes(iv);
  return h;
}

/** `data` XOR the keystream of (key, iv): the same call encrypts and decrypts. */
function xorStream(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const [s0, s1] = keyed(1, key, iv).lanes();
  const out = new Uint8Array(data.length);
  for (let i = 0, block = 0; i < data.length; block++) {
    const word = finalize((s0 + Math.imul(block, GOLDEN)) | 0) ^ finalize(s1 ^ block);
    for (let j = 0; j < 4 && i < data.length; j++, i++)
      out[i] = (data[i] as number) ^ ((word >>> (8 * j)) & 0xff);
  }
  return out;
}

/** `n` bytes (a multiple of 8) of the hash: its lanes, then those of the hash extended by a counter. */
function digest(h: TraceHash, n: number): Uint8Array {
  const out = new Uint8Array(n);
  const view = new DataView(out.buffer);
  for (let at = 0; at < n; at += 8) {
    const [a, b] = h.lanes();
    view.setUint32(at, a, true);
    view.setUint32(at + 4, b, true);
    h.add(at + 3);
  }
  return out;
}

function tagOf(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  const h = keyed(2, key, iv);
  h.addBytes(aad);
  h.addBytes(ciphertext);
  return digest(h, TAG_BYTES);
}

export const MAC_BYTES = 32;

/** The simulated application keys' signature of `data`: 32 bytes, a function of key and data. */
export function simMac(key: Uint8Array, data: Uint8Array): Uint8Array {
  const h = keyed(4, key, new Uint8Array());
  h.addBytes(data);
  return digest(h, MAC_BYTES);
}

export function simEncrypt(
  key: Uint8Array,
  iv: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): { ciphertext: Uint8Array; tag: Uint8Array } {
  const ciphertext = xorStream(key, iv, plaintext);
  return { ciphertext, tag: tagOf(key, iv, aad, ciphertext) };
}

/** The plaintext, or BadParameter (as the device's AES-GCM) when anything differs from the sealing call. */
export function simDecrypt(
  key: Uint8Array,
  iv: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  const expected = tagOf(key, iv, aad, ciphertext);
  if (tag.length !== TAG_BYTES || !expected.every((b, i) => b === tag[i]))
    fail("BadParameter", "AES-GCM authentication failed (wrong key, iv, aad or altered data)");
  return xorStream(key, iv, ciphertext);
}
