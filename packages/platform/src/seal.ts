/**
 * Sealing: AES-256-GCM under HKDF-SHA256(CPU fuse, salt = per-blob key id,
 * info = label | policy | identity | svn). The fuse makes a blob server-bound; the
 * identity makes it code-bound (MRENCLAVE) or signer-bound (MRSIGNER + product id).
 * As in SGX, the key also binds the sealer's SVN, and an enclave may unseal blobs
 * sealed at its own SVN or lower, never higher (no rollback to older code).
 *
 * Blob v1: "HSSB" (4) | version u8 = 1 | policy u8 (1 = mrenclave, 2 = mrsigner) |
 *   svn u16 | keyId (16) | iv (12) | ciphertext | tag (16).
 * GCM AAD: the 36 header bytes, then the caller's associated data.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { ByteReader, ByteWriter, concatBytes, fromHexStrict, utf8 } from "@hsmpool/codec";
import { fail } from "@hsmpool/errors";
import type { EnclaveIdentity, SealOptions, SealPolicy, UnsealOptions } from "./types.js";

const MAGIC = utf8("HSSB");
const VERSION = 1;
const POLICY_CODES: Record<SealPolicy, number> = { mrenclave: 1, mrsigner: 2 };
const KEY_ID_SIZE_BYTES = 16;
const IV_SIZE_BYTES = 12;
const TAG_SIZE_BYTES = 16;
const KDF_LABEL = utf8("hsmpool-seal-v1\0");

export type SealIdentity = Pick<EnclaveIdentity, "mrenclave" | "mrsigner" | "productId" | "svn">;

function sealingKey(
  fuse: Uint8Array,
  policyCode: number,
  id: SealIdentity,
  svn: number,
  keyId: Uint8Array,
): Buffer {
  const w = new ByteWriter().raw(KDF_LABEL).u8(policyCode);
  if (policyCode === POLICY_CODES.mrenclave) w.raw(fromHexStrict(id.mrenclave, 32)!);
  else w.raw(fromHexStrict(id.mrsigner, 32)!).u16(id.productId);
  w.u16(svn);
  return Buffer.from(hkdfSync("sha256", fuse, keyId, w.finish(), 32));
}

export function sealWithFuse(
  fuse: Uint8Array,
  id: SealIdentity,
  plaintext: Uint8Array,
  opts: SealOptions,
): Uint8Array {
  if (!(plaintext instanceof Uint8Array)) fail("BadParameter", "plaintext must be a Uint8Array");
  if (opts?.policy !== "mrenclave" && opts?.policy !== "mrsigner") {
    fail("BadParameter", `seal policy must be "mrsigner" or "mrenclave", got ${String(opts?.policy)}`);
  }
  const policyCode = POLICY_CODES[opts.policy];
  const keyId = randomBytes(KEY_ID_SIZE_BYTES);
  const iv = randomBytes(IV_SIZE_BYTES);
  const header = new ByteWriter()
    .raw(MAGIC)
    .u8(VERSION)
    .u8(policyCode)
    .u16(id.svn)
    .raw(keyId)
    .raw(iv)
    .finish();
  const key = sealingKey(fuse, policyCode, id, id.svn, keyId);
  try {
    const cipher = createCipheriv("aes-256-gcm", key, iv);
    cipher.setAAD(concatBytes(header, opts.aad ?? new Uint8Array(0)));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return concatBytes(header, ct, cipher.getAuthTag());
  } finally {
    key.fill(0);
  }
}

const integrity = (reason: string): never => fail("IntegrityError", `cannot unseal: ${reason}`, { reason });

export function unsealWithFuse(
  fuse: Uint8Array,
  id: SealIdentity,
  blob: Uint8Array,
  opts: UnsealOptions = {},
): Uint8Array {
  if (!(blob instanceof Uint8Array)) return integrity("sealed blob must be a Uint8Array");
  const r = new ByteReader(blob, "sealed blob", () => integrity("sealed blob is truncated"));
  if (r.remaining < MAGIC.byteLength || Buffer.compare(r.raw(MAGIC.byteLength, "magic"), MAGIC) !== 0)
    return integrity("not a sealed blob (bad magic)");
  const version = r.done ? null : r.u8("version");
  if (version !== VERSION) return integrity(`unsupported sealed blob version ${version ?? "(truncated)"}`);
  const policyCode = r.done ? null : r.u8("policy");
  if (policyCode !== POLICY_CODES.mrenclave && policyCode !== POLICY_CODES.mrsigner) {
    return integrity(`unknown seal policy code ${policyCode ?? "(truncated)"}`);
  }
  const svn = r.u16("svn");
  const keyId = r.raw(KEY_ID_SIZE_BYTES, "key id");
  const iv = r.raw(IV_SIZE_BYTES, "iv");
  if (r.remaining < TAG_SIZE_BYTES) return integrity("sealed blob is truncated");
  if (svn > id.svn) return integrity(`blob was sealed at SVN ${svn}, above this enclave's SVN ${id.svn}`);
  const header = r.consumed();
  const rest = r.rest();
  const key = sealingKey(fuse, policyCode, id, svn, keyId);
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_SIZE_BYTES });
    decipher.setAAD(concatBytes(header, opts.aad ?? new Uint8Array(0)));
    decipher.setAuthTag(rest.subarray(rest.byteLength - TAG_SIZE_BYTES));
    return new Uint8Array(
      Buffer.concat([decipher.update(rest.subarray(0, rest.byteLength - TAG_SIZE_BYTES)), decipher.final()]),
    );
  } catch {
    return integrity(
      "authentication failed (sealed on another server, for other code, with other associated data, or tampered)",
    );
  } finally {
    key.fill(0);
  }
}
