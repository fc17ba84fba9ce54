/**
 * Quote wire format v1 (all integers big-endian), signed by the platform
 * attestation key (ECDSA P-256, SHA-256, IEEE P1363 r||s):
 *
 *   magic "HSMQ" (4) | version u8 = 1 | mrenclave (32) | mrsigner (32) |
 *   productId u16 | svn u16 | flags u8 (bit 0 = debug; others 0) | reportData (64) |
 *   nonceLen u8 (0..64) | nonce | certCount u8 (= 1) | certLen u16 | platform cert DER |
 *   signature (64)
 *
 * The signature covers "hsmpool-quote-v1\0" followed by every byte before it.
 */
import { type KeyObject, sign } from "node:crypto";
import { ByteReader, ByteWriter, concatBytes, utf8 } from "@hsmpool/codec";
import { fail } from "@hsmpool/errors";
import { REPORT_DATA_SIZE_BYTES } from "./types.js";

const MAGIC = utf8("HSMQ");
const VERSION = 1;
const SIGNED_DOMAIN = utf8("hsmpool-quote-v1\0");
const FLAG_DEBUG = 0x01;
export const MAX_NONCE_SIZE_BYTES = 64;
const SIGNATURE_SIZE_BYTES = 64;
/** The chain is the platform cert alone; the vendor root is the verifier's anchor and never travels. */
const CHAIN_LENGTH = 1;

export interface QuoteBody {
  mrenclave: Uint8Array;
  mrsigner: Uint8Array;
  productId: number;
  svn: number;
  debug: boolean;
  reportData: Uint8Array;
  nonce: Uint8Array;
}

/** A parsed but NOT verified quote. */
export interface DecodedQuote extends QuoteBody {
  chainDer: Uint8Array[];
  signature: Uint8Array;
  /** The exact bytes the signature covers (domain prefix included). */
  signedMessage: Uint8Array;
}

function encodeUnsigned(body: QuoteBody, chainDer: Uint8Array[]): Uint8Array {
  const w = new ByteWriter()
    .raw(MAGIC)
    .u8(VERSION)
    .raw(body.mrenclave)
    .raw(body.mrsigner)
    .u16(body.productId)
    .u16(body.svn)
    .u8(body.debug ? FLAG_DEBUG : 0)
    .raw(body.reportData)
    .bytes8(body.nonce)
    .u8(chainDer.length);
  for (const der of chainDer) w.bytes16(der);
  return w.finish();
}

export function signQuote(body: QuoteBody, chainDer: Uint8Array[], platformKey: KeyObject): Uint8Array {
  if (body.reportData.byteLength !== REPORT_DATA_SIZE_BYTES) {
    fail(
      "BadParameter",
      `report data must be exactly ${REPORT_DATA_SIZE_BYTES} bytes, got ${body.reportData.byteLength}`,
    );
  }
  if (body.nonce.byteLength > MAX_NONCE_SIZE_BYTES) {
    fail("BadParameter", `nonce must be at most ${MAX_NONCE_SIZE_BYTES} bytes, got ${body.nonce.byteLength}`);
  }
  const unsigned = encodeUnsigned(body, chainDer);
  const signature = sign("sha256", concatBytes(SIGNED_DOMAIN, unsigned), {
    key: platformKey,
    dsaEncoding: "ieee-p1363",
  });
  return concatBytes(unsigned, signature);
}

const formatError = (why: string): never =>
  fail("AttestationFailed", `malformed quote: ${why}`, { check: "format", reason: why });

/** Parses a quote without trusting it. AttestationFailed `check: "format"` for anything malformed. */
export function decodeQuote(bytes: Uint8Array): DecodedQuote {
  if (!(bytes instanceof Uint8Array)) formatError("quote must be a Uint8Array");
  const r = new ByteReader(bytes, "quote", formatError);
  if (Buffer.compare(r.raw(MAGIC.byteLength, "magic"), MAGIC) !== 0) formatError("bad magic (not a quote)");
  const version = r.u8("version");
  if (version !== VERSION) formatError(`unsupported version ${version}`);
  const mrenclave = r.raw(32, "mrenclave");
  const mrsigner = r.raw(32, "mrsigner");
  const productId = r.u16("product id");
  const svn = r.u16("svn");
  const flags = r.u8("flags");
  const reportData = r.raw(REPORT_DATA_SIZE_BYTES, "report data");
  const nonce = r.bytes8("nonce");
  const certCount = r.u8("certificate count");
  if ((flags & ~FLAG_DEBUG) !== 0) formatError(`unknown flag bits 0x${flags.toString(16)}`);
  if (nonce.byteLength > MAX_NONCE_SIZE_BYTES)
    formatError(`nonce of ${nonce.byteLength} bytes exceeds ${MAX_NONCE_SIZE_BYTES}`);
  if (certCount !== CHAIN_LENGTH) formatError(`certificate count ${certCount}, expected ${CHAIN_LENGTH}`);
  const chainDer: Uint8Array[] = [];
  for (let i = 0; i < CHAIN_LENGTH; i++) chainDer.push(r.bytes16("certificate"));
  const signedMessage = concatBytes(SIGNED_DOMAIN, r.consumed());
  const signature = r.raw(SIGNATURE_SIZE_BYTES, "signature");
  if (r.remaining !== 0) formatError(`${r.remaining} trailing bytes`);
  return {
    mrenclave,
    mrsigner,
    productId,
    svn,
    debug: (flags & FLAG_DEBUG) !== 0,
    reportData,
    nonce,
    chainDer,
    signature,
    signedMessage,
  };
}
