/**
 * Code bundles: measurement (MRENCLAVE), the SIGSTRUCT that signs it, and the
 * launch-time check that both hold. Formats are documented in README.md.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { lstat, readFile } from "node:fs/promises";
import { join } from "node:path";
import { ByteReader, ByteWriter, concatBytes, fromHexStrict, toHex, utf8 } from "@hsmpool/codec";
import { fail, HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import { writeFileAtomic } from "@hsmpool/files";
import { listRegularFiles, runtimeClosureFiles } from "./closure.js";
import {
  type BundleFile,
  type BundleInspection,
  type BundleMeasurement,
  type RuntimeClosure,
  SIGSTRUCT_FILE,
  type Sigstruct,
  type SigstructFields,
} from "./types.js";

const MANIFEST_HEADER = "hsmpool-bundle-manifest-v1\n";
const MANIFEST_V2_HEADER = "hsmpool-bundle-manifest-v2\n";
const SIGSTRUCT_MAGIC = utf8("HSIG");
const SIGSTRUCT_VERSION = 1;
const SIGSTRUCT_SIGNED_DOMAIN = utf8("hsmpool-sigstruct-v1\0");
const FLAG_DEBUG = 0x01;
const MAX_U16 = 0xffff;

const sha256 = (data: Uint8Array | string): Uint8Array =>
  new Uint8Array(createHash("sha256").update(data).digest());

// ---------------------------------------------------------------- measurement

/**
 * The manifest that MRENCLAVE hashes: one `<sha256> <size> <path>` line per file, sorted by path
 * bytes (then hash). v1 lists the bundle's files; v2 (a bundle measured with its runtime closure)
 * prefixes them `bundle/` and adds the closure's `pkg/...` and `data/...` files.
 */
export function manifestText(files: readonly BundleFile[], header = MANIFEST_HEADER): string {
  return header + files.map((f) => `${f.sha256} ${f.sizeBytes} ${f.path}\n`).join("");
}

/** One read buffer for every file of a measurement: 17 MiB of per-file buffers cost more in GC than in hashing. */
let scratch = Buffer.allocUnsafe(1 << 20);

function measureFile(path: string, absPath: string): BundleFile {
  const fd = openSync(absPath, "r");
  try {
    let size = 0;
    for (;;) {
      if (size === scratch.length) scratch = Buffer.concat([scratch, Buffer.allocUnsafe(scratch.length)]);
      const n = readSync(fd, scratch, size, scratch.length - size, size);
      if (n === 0) break;
      size += n;
    }
    const sha256 = createHash("sha256").update(scratch.subarray(0, size)).digest("hex");
    return { path, sha256, sizeBytes: size };
  } finally {
    closeSync(fd);
  }
}

const byPathThenHash = (a: BundleFile, b: BundleFile): number =>
  Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)) ||
  (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0);

/**
 * Measures `bundleDir`, and with `runtime` also the runtime closure the bundle's process loads
 * (closure.ts). The same package reached twice at the same version (two installed copies) counts
 * once when the copies are identical and twice, so differently, when one of them was edited.
 */
export async function measureBundle(bundleDir: string, runtime?: RuntimeClosure): Promise<BundleMeasurement> {
  const st = await lstat(bundleDir).catch(() => null);
  if (!st) fail("NotFound", `bundle directory ${bundleDir} does not exist`, { path: bundleDir });
  if (!st.isDirectory()) fail("BadParameter", `bundle ${bundleDir} is not a directory`, { path: bundleDir });
  const paths: string[] = [];
  listRegularFiles(bundleDir, "", paths);
  const own = paths.filter((p) => p !== SIGSTRUCT_FILE);
  if (runtime === undefined) {
    const files = own.map((p) => measureFile(p, join(bundleDir, p))).sort(byPathThenHash);
    return { mrenclave: toHex(sha256(manifestText(files))), files };
  }
  const unique = new Map<string, BundleFile>();
  for (const f of [
    ...own.map((p) => ({ path: `bundle/${p}`, absPath: join(bundleDir, p) })),
    ...runtimeClosureFiles(runtime),
  ]) {
    const m = measureFile(f.path, f.absPath);
    unique.set(`${m.path}\n${m.sha256}`, m);
  }
  const files = [...unique.values()].sort(byPathThenHash);
  return { mrenclave: toHex(sha256(manifestText(files, MANIFEST_V2_HEADER))), files };
}

// ---------------------------------------------------------------- signer keys

function publicKeyOf(key: KeyObject | string): KeyObject {
  try {
    if (typeof key === "string") return createPublicKey(key);
    return key.type === "public" ? key : createPublicKey(key);
  } catch (e) {
    return fail("BadParameter", `not a usable public or private key: ${(e as Error).message}`);
  }
}

export function spkiDerOf(key: KeyObject | string): Uint8Array {
  return new Uint8Array(publicKeyOf(key).export({ type: "spki", format: "der" }));
}

export function mrsignerOf(key: KeyObject | string): string {
  return toHex(sha256(spkiDerOf(key)));
}

/** Signature parameters per key type: EC signatures are fixed-size IEEE P1363 (r||s). */
function signatureParams(key: KeyObject): { algorithm: string | null; dsaEncoding?: "ieee-p1363" } {
  switch (key.asymmetricKeyType) {
    case "ec":
      return { algorithm: "sha256", dsaEncoding: "ieee-p1363" };
    case "ed25519":
    case "ed448":
      return { algorithm: null };
    case "rsa":
    case "rsa-pss":
      return { algorithm: "sha256" };
    default:
      return fail(
        "BadParameter",
        `code-signing key type ${key.asymmetricKeyType ?? "unknown"} is not supported (use EC, Ed25519 or RSA)`,
      );
  }
}

// ---------------------------------------------------------------- SIGSTRUCT codec

function checkU16(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > MAX_U16) {
    fail("BadParameter", `${name} must be an integer from 0 to ${MAX_U16}, got ${n}`, { field: name });
  }
}

function signedBody(mrenclave: Uint8Array, fields: SigstructFields): Uint8Array {
  return new ByteWriter()
    .raw(mrenclave)
    .u16(fields.productId)
    .u16(fields.svn)
    .u8(fields.debug ? FLAG_DEBUG : 0)
    .finish();
}

export function encodeSigstruct(s: Sigstruct): Uint8Array {
  const mrenclave =
    fromHexStrict(s.mrenclave, 32) ?? fail("BadParameter", "mrenclave must be 64 hex characters");
  return new ByteWriter()
    .raw(SIGSTRUCT_MAGIC)
    .u8(SIGSTRUCT_VERSION)
    .raw(signedBody(mrenclave, s))
    .bytes16(s.signerPublicKeyDer)
    .bytes16(s.signature)
    .finish();
}

const formatError = (why: string): never =>
  fail("BadParameter", `malformed SIGSTRUCT: ${why}`, { check: "format", reason: why });

/** Decodes a SIGSTRUCT (format only; see `verifySigstruct`). BadParameter with `details.check = "format"`. */
export function decodeSigstruct(bytes: Uint8Array): Sigstruct {
  const r = new ByteReader(bytes, "SIGSTRUCT", formatError);
  if (Buffer.compare(r.raw(4, "magic"), SIGSTRUCT_MAGIC) !== 0) formatError("bad magic (not a SIGSTRUCT)");
  const version = r.u8("version");
  if (version !== SIGSTRUCT_VERSION) formatError(`unsupported version ${version}`);
  const mrenclave = r.raw(32, "mrenclave");
  const productId = r.u16("product id");
  const svn = r.u16("svn");
  const flags = r.u8("flags");
  const spki = r.bytes16("signer public key");
  const signature = r.bytes16("signature");
  if ((flags & ~FLAG_DEBUG) !== 0) formatError(`unknown flag bits 0x${flags.toString(16)}`);
  if (r.remaining !== 0) formatError(`${r.remaining} trailing bytes`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  } catch {
    return formatError("signer public key is not a valid SubjectPublicKeyInfo");
  }
  // Only the canonical encoding is accepted, so MRSIGNER names exactly one key.
  if (Buffer.compare(key.export({ type: "spki", format: "der" }), spki) !== 0) {
    formatError("signer public key is not canonically encoded");
  }
  return {
    mrenclave: toHex(mrenclave),
    mrsigner: toHex(sha256(spki)),
    productId,
    svn,
    debug: (flags & FLAG_DEBUG) !== 0,
    signerPublicKeyDer: spki,
    signature,
  };
}

/** True iff the signature verifies under the SIGSTRUCT's own signer key. */
export function verifySigstruct(s: Sigstruct): boolean {
  const mrenclave = fromHexStrict(s.mrenclave, 32);
  if (!mrenclave) return false;
  try {
    const key = createPublicKey({ key: Buffer.from(s.signerPublicKeyDer), format: "der", type: "spki" });
    const { algorithm, dsaEncoding } = signatureParams(key);
    const message = concatBytes(SIGSTRUCT_SIGNED_DOMAIN, signedBody(mrenclave, s));
    return cryptoVerify(algorithm, message, dsaEncoding ? { key, dsaEncoding } : key, s.signature);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- sign / read / inspect

export async function signBundle(
  bundleDir: string,
  signingKey: KeyObject | string,
  fields: SigstructFields,
  runtime?: RuntimeClosure,
): Promise<Sigstruct> {
  checkU16("productId", fields.productId);
  checkU16("svn", fields.svn);
  let key: KeyObject;
  try {
    key = typeof signingKey === "string" ? createPrivateKey(signingKey) : signingKey;
  } catch (e) {
    return fail("BadParameter", `signing key is not a readable private key: ${(e as Error).message}`);
  }
  if (key.type !== "private") fail("BadParameter", "signing needs a private key, got a public one");
  const { algorithm, dsaEncoding } = signatureParams(key);
  const { mrenclave } = await measureBundle(bundleDir, runtime);
  const body = signedBody(fromHexStrict(mrenclave, 32)!, fields);
  const signature = new Uint8Array(
    cryptoSign(
      algorithm,
      concatBytes(SIGSTRUCT_SIGNED_DOMAIN, body),
      dsaEncoding ? { key, dsaEncoding } : key,
    ),
  );
  const spki = spkiDerOf(key);
  const sigstruct: Sigstruct = {
    mrenclave,
    mrsigner: toHex(sha256(spki)),
    productId: fields.productId,
    svn: fields.svn,
    debug: fields.debug,
    signerPublicKeyDer: spki,
    signature,
  };
  await writeFileAtomic(join(bundleDir, SIGSTRUCT_FILE), encodeSigstruct(sigstruct), 0o644);
  return sigstruct;
}

export async function readSigstruct(bundleDir: string): Promise<Sigstruct> {
  const path = join(bundleDir, SIGSTRUCT_FILE);
  const bytes = await readFile(path).catch(() =>
    fail("NotFound", `${path} does not exist: the bundle is not signed (run \`hsmpool bundle sign\`)`, {
      path,
    }),
  );
  return decodeSigstruct(new Uint8Array(bytes));
}

export async function inspectBundle(bundleDir: string, runtime?: RuntimeClosure): Promise<BundleInspection> {
  const measurement = await measureBundle(bundleDir, runtime);
  let sigstruct: Sigstruct | null = null;
  let sigstructError: string | null = null;
  try {
    sigstruct = await readSigstruct(bundleDir);
  } catch (e) {
    if (!isHsmPoolError(e)) throw e;
    sigstructError = e.message;
  }
  return {
    measurement,
    sigstruct,
    sigstructError,
    signatureValid: sigstruct !== null && verifySigstruct(sigstruct),
    measurementMatches: sigstruct !== null && sigstruct.mrenclave === measurement.mrenclave,
  };
}

const refuse = (check: string, message: string, extra: Record<string, unknown> = {}): never =>
  fail("LaunchRefused", `launch refused: ${message}`, { check, ...extra });

/**
 * The launch check: measurement (of the bundle and, given `runtime`, of the code the process loads
 * beside it) + SIGSTRUCT. LaunchRefused with `details.check` naming what failed.
 */
export async function verifyBundle(
  bundleDir: string,
  runtime?: RuntimeClosure,
): Promise<{ mrenclave: string; sigstruct: Sigstruct }> {
  let measured: BundleMeasurement;
  try {
    measured = await measureBundle(bundleDir, runtime);
  } catch (e) {
    if (e instanceof HsmPoolError) return refuse("bundle", e.message, { path: bundleDir });
    throw e;
  }
  let sigstruct: Sigstruct;
  try {
    sigstruct = await readSigstruct(bundleDir);
  } catch (e) {
    if (e instanceof HsmPoolError) return refuse("sigstruct", e.message, { path: bundleDir });
    throw e;
  }
  if (!verifySigstruct(sigstruct)) {
    refuse("signature", "the SIGSTRUCT signature does not verify under its signer key", { path: bundleDir });
  }
  if (sigstruct.mrenclave !== measured.mrenclave) {
    refuse(
      "measurement",
      `bundle measurement ${measured.mrenclave} does not match the signed MRENCLAVE ${sigstruct.mrenclave} (bundle changed after signing?)`,
      { path: bundleDir, measured: measured.mrenclave, signed: sigstruct.mrenclave },
    );
  }
  return { mrenclave: measured.mrenclave, sigstruct };
}
