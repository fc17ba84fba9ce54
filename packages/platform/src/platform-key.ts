/**
 * The platform attestation private key at rest: AES-256-GCM under a key derived
 * from the server's CPU fuse, so the file is useless without that server's silicon.
 *
 * Format v1: "HPKW" | version u8 = 1 | iv (12) | ciphertext (PKCS#8 DER) | tag (16).
 * AAD: the header bytes, then "<serverId>\0<platform cert SHA-256 hex>" so a wrapped
 * key cannot be swapped between servers or certificates.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from "node:crypto";
import { ByteReader, ByteWriter, concatBytes, utf8 } from "@hsmpool/codec";
import { fail } from "@hsmpool/errors";

const MAGIC = utf8("HPKW");
const VERSION = 1;
const IV_SIZE_BYTES = 12;
const TAG_SIZE_BYTES = 16;
const KDF_INFO = utf8("hsmpool-platform-key-wrap-v1");

function wrapKey(fuse: Uint8Array): Buffer {
  return Buffer.from(hkdfSync("sha256", fuse, new Uint8Array(0), KDF_INFO, 32));
}

const binding = (serverId: string, certFingerprint: string): Uint8Array =>
  utf8(`${serverId}\0${certFingerprint}`);

export function wrapPlatformKey(
  fuse: Uint8Array,
  pkcs8Der: Uint8Array,
  serverId: string,
  certFingerprint: string,
): Uint8Array {
  const iv = randomBytes(IV_SIZE_BYTES);
  const header = new ByteWriter().raw(MAGIC).u8(VERSION).raw(iv).finish();
  const key = wrapKey(fuse);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(concatBytes(header, binding(serverId, certFingerprint)));
  const ct = Buffer.concat([cipher.update(pkcs8Der), cipher.final()]);
  key.fill(0);
  return concatBytes(header, ct, cipher.getAuthTag());
}

export function unwrapPlatformKey(
  fuse: Uint8Array,
  blob: Uint8Array,
  serverId: string,
  certFingerprint: string,
): KeyObject {
  const malformed = (): never =>
    fail("IntegrityError", `platform key file of server ${serverId} is malformed`, { serverId });
  const r = new ByteReader(blob, "platform key file", malformed);
  if (Buffer.compare(r.raw(MAGIC.byteLength, "magic"), MAGIC) !== 0 || r.u8("version") !== VERSION)
    malformed();
  const iv = r.raw(IV_SIZE_BYTES, "iv");
  if (r.remaining <= TAG_SIZE_BYTES) malformed();
  const header = r.consumed();
  const rest = r.rest();
  const ct = rest.subarray(0, rest.byteLength - TAG_SIZE_BYTES);
  const tag = rest.subarray(rest.byteLength - TAG_SIZE_BYTES);
  const key = wrapKey(fuse);
  let pkcs8: Buffer;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_SIZE_BYTES });
    decipher.setAAD(concatBytes(header, binding(serverId, certFingerprint)));
    decipher.setAuthTag(tag);
    pkcs8 = Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch {
    return fail(
      "IntegrityError",
      `platform key of server ${serverId} does not decrypt under its CPU fuse (tampered or from another server)`,
      { serverId },
    );
  } finally {
    key.fill(0);
  }
  try {
    return createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
  } finally {
    pkcs8.fill(0);
  }
}
