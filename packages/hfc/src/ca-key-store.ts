/**
 * The fabric CA private key at rest: never a plaintext PEM. PKCS#8 DER sealed with
 * AES-256-GCM under HKDF-SHA256(<pki>/ca-kek.bin, salt), where ca-kek.bin is 32
 * random bytes readable only by the HFC user (0600) — a stand-in for a KMS-held key.
 * Blob: "HFCK" | version u8 = 1 | salt 32 | iv 12 | ciphertext | tag 16, with AAD =
 * the 37-byte header ‖ SHA-256(CA certificate DER), so a blob only opens for its own CA.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from "node:crypto";
import { chmod, readFile } from "node:fs/promises";
import { fail } from "@hsmpool/errors";
import { writeFileAtomic } from "@hsmpool/files";

const MAGIC = Buffer.from("HFCK", "ascii");
const VERSION = 1;
const SALT_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEK_BYTES = 32;
const HEADER_BYTES = MAGIC.length + 1 + SALT_BYTES;
const HKDF_INFO = Buffer.from("hsmpool-fabric-ca-key-v1", "ascii");

function aesKey(kek: Uint8Array, salt: Uint8Array): Buffer {
  return Buffer.from(hkdfSync("sha256", kek, salt, HKDF_INFO, 32));
}

function aad(header: Uint8Array, caCertDer: Uint8Array): Buffer {
  return Buffer.concat([header, createHash("sha256").update(caCertDer).digest()]);
}

export function sealCaKey(pkcs8: Uint8Array, kek: Uint8Array, caCertDer: Uint8Array): Uint8Array {
  const salt = randomBytes(SALT_BYTES);
  const iv = randomBytes(IV_BYTES);
  const header = Buffer.concat([MAGIC, Buffer.from([VERSION]), salt]);
  const key = aesKey(kek, salt);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(aad(header, caCertDer));
  const ct = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
  key.fill(0);
  return new Uint8Array(Buffer.concat([header, iv, ct, cipher.getAuthTag()]));
}

export function unsealCaKey(blob: Uint8Array, kek: Uint8Array, caCertDer: Uint8Array): Uint8Array {
  const b = Buffer.from(blob);
  if (b.length < HEADER_BYTES + IV_BYTES + TAG_BYTES + 1 || !b.subarray(0, 4).equals(MAGIC)) {
    fail("IntegrityError", "the fabric CA key file is not a sealed CA key (bad header)");
  }
  if (b[4] !== VERSION) fail("IntegrityError", `the fabric CA key file has unsupported version ${b[4]}`);
  const header = b.subarray(0, HEADER_BYTES);
  const salt = header.subarray(5);
  const iv = b.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES);
  const ct = b.subarray(HEADER_BYTES + IV_BYTES, b.length - TAG_BYTES);
  const tag = b.subarray(b.length - TAG_BYTES);
  const key = aesKey(kek, salt);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv);
    decipher.setAAD(aad(header, caCertDer));
    decipher.setAuthTag(tag);
    return new Uint8Array(Buffer.concat([decipher.update(ct), decipher.final()]));
  } catch {
    return fail(
      "IntegrityError",
      "the fabric CA key does not open (tampered, or not the key of this CA certificate)",
    );
  } finally {
    key.fill(0);
  }
}

/** Reads the key-encryption key, or creates it (0600) when `create` is set. */
export async function loadOrCreateKek(path: string, create: boolean): Promise<Uint8Array> {
  const existing = await readFile(path).catch(() => null);
  if (existing) {
    if (existing.length !== KEK_BYTES) fail("IntegrityError", `${path} must hold ${KEK_BYTES} bytes`);
    return new Uint8Array(existing);
  }
  if (!create) fail("IntegrityError", `${path} is missing: the fabric CA key cannot be opened`);
  const kek = new Uint8Array(randomBytes(KEK_BYTES));
  await writeFileAtomic(path, kek, 0o600);
  await chmod(path, 0o600);
  return kek;
}
