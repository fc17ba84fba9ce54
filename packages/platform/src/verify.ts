/**
 * Quote verification: format, certificate chain to the vendor root, quote
 * signature, then the policy, report data and nonce. The clock is injectable.
 */
import { verify, X509Certificate } from "node:crypto";
import { bytesEqual, toHex } from "@hsmpool/codec";
import { fail } from "@hsmpool/errors";
import { checkPolicy, parsePolicy } from "./policy.js";
import { decodeQuote } from "./quote.js";
import {
  type EnclaveIdentity,
  type Policy,
  REPORT_DATA_SIZE_BYTES,
  type VerifiedIdentity,
  type VerifyOptions,
} from "./types.js";

const reject = (check: string, message: string, extra: Record<string, unknown> = {}): never =>
  fail("AttestationFailed", `attestation rejected: ${message}`, { check, ...extra });

function parseAnchor(vendorRoot: Uint8Array | string): X509Certificate {
  try {
    return new X509Certificate(typeof vendorRoot === "string" ? vendorRoot : Buffer.from(vendorRoot));
  } catch {
    return fail("BadParameter", "vendor root must be an X.509 certificate (DER bytes or PEM text)");
  }
}

/** Node 22+ has `validFromDate`; Node 20 only the OpenSSL text form, which Date parses. */
function validity(cert: X509Certificate): { from: Date; to: Date } {
  const c = cert as X509Certificate & { validFromDate?: Date; validToDate?: Date };
  return { from: c.validFromDate ?? new Date(cert.validFrom), to: c.validToDate ?? new Date(cert.validTo) };
}

function checkValidAt(cert: X509Certificate, what: string, now: Date): void {
  const { from, to } = validity(cert);
  if (!(now >= from && now <= to)) {
    reject(
      "chain",
      `${what} certificate is not valid at ${now.toISOString()} (valid ${from.toISOString()} to ${to.toISOString()})`,
    );
  }
}

/** CN = server id, OU = rack id (our own platform certs; values use a plain id alphabet). */
function subjectField(cert: X509Certificate, key: "CN" | "OU"): string {
  const line = cert.subject.split("\n").find((l) => l.startsWith(`${key}=`));
  const value = line?.slice(key.length + 1);
  if (!value || !/^[A-Za-z0-9._-]{1,64}$/.test(value)) {
    return reject("chain", `platform certificate subject has no usable ${key}`);
  }
  return value;
}

function checkOptions(opts: VerifyOptions): void {
  if (
    opts.expectedReportData !== undefined &&
    opts.expectedReportData.byteLength !== REPORT_DATA_SIZE_BYTES
  ) {
    fail(
      "BadParameter",
      `expectedReportData must be ${REPORT_DATA_SIZE_BYTES} bytes, got ${opts.expectedReportData.byteLength}`,
    );
  }
  if (opts.now !== undefined && Number.isNaN(opts.now.getTime()))
    fail("BadParameter", "now must be a valid date");
}

export function verifyQuote(
  quote: Uint8Array,
  vendorRoot: Uint8Array | string,
  policy: Policy,
  opts: VerifyOptions = {},
): VerifiedIdentity {
  const parsedPolicy = parsePolicy(policy);
  checkOptions(opts);
  const now = opts.now ?? new Date();
  const root = parseAnchor(vendorRoot);
  const q = decodeQuote(quote);

  let platform: X509Certificate;
  try {
    platform = new X509Certificate(Buffer.from(q.chainDer[0]!));
  } catch {
    return reject("format", "the platform certificate in the quote is not valid X.509");
  }
  if (!platform.checkIssued(root) || !platform.verify(root.publicKey)) {
    reject("chain", "the platform certificate is not issued by this fabric's vendor root");
  }
  if (!platform.ca) reject("chain", "the platform certificate is not a CA certificate");
  checkValidAt(root, "vendor root", now);
  checkValidAt(platform, "platform", now);

  let signatureOk = false;
  try {
    signatureOk = verify(
      "sha256",
      q.signedMessage,
      { key: platform.publicKey, dsaEncoding: "ieee-p1363" },
      q.signature,
    );
  } catch {
    signatureOk = false;
  }
  if (!signatureOk)
    reject("signature", "the quote signature does not verify under the platform attestation key");

  const identity: EnclaveIdentity = {
    mrenclave: toHex(q.mrenclave),
    mrsigner: toHex(q.mrsigner),
    productId: q.productId,
    svn: q.svn,
    debug: q.debug,
    serverId: subjectField(platform, "CN"),
    rackId: subjectField(platform, "OU"),
  };
  checkPolicy(identity, parsedPolicy);
  if (opts.expectedReportData && !bytesEqual(q.reportData, opts.expectedReportData)) {
    reject(
      "reportData",
      "the quote's report data does not match the expected value (quote made for another key?)",
    );
  }
  if (opts.nonce && !bytesEqual(q.nonce, opts.nonce)) {
    reject("nonce", "the quote's nonce does not match the verifier's (stale or replayed quote?)");
  }
  return { ...identity, reportData: q.reportData, nonce: q.nonce };
}
