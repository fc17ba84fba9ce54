/**
 * Verifier policy as data: parsing untrusted policy input, and checking an
 * attested identity against a policy (pure; no clock, no I/O).
 */
import { fail } from "@hsmpool/errors";
import type { EnclaveIdentity, Policy, SignerRule } from "./types.js";

const HEX64 = /^[0-9a-fA-F]{64}$/;
const MAX_U16 = 0xffff;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const bad = (field: string, why: string): never =>
  fail("BadParameter", `invalid policy: ${field} ${why}`, { field });

/** Unknown fields are refused: a misspelt `allowDebug` or `minSvn` must not silently weaken a policy. */
function onlyKnownFields(obj: Record<string, unknown>, path: string, known: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) bad(`${path}.${key}`, `is not a known field (known: ${known.join(", ")})`);
  }
}

function hex64(v: unknown, field: string): string {
  if (typeof v !== "string" || !HEX64.test(v))
    return bad(field, "must be 64 hex characters (a SHA-256 digest)");
  return v.toLowerCase();
}

function u16(v: unknown, field: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > MAX_U16) {
    return bad(field, `must be an integer from 0 to ${MAX_U16}`);
  }
  return v;
}

function parseSigner(v: unknown, field: string): SignerRule {
  if (!isRecord(v)) return bad(field, "must be an object { mrsigner, productId?, minSvn? }");
  onlyKnownFields(v, field, ["mrsigner", "productId", "minSvn"]);
  const rule: SignerRule = { mrsigner: hex64(v.mrsigner, `${field}.mrsigner`) };
  if (v.productId !== undefined) rule.productId = u16(v.productId, `${field}.productId`);
  if (v.minSvn !== undefined) rule.minSvn = u16(v.minSvn, `${field}.minSvn`);
  return rule;
}

/** Validates and normalises (lower-case hex) a policy; BadParameter whose `details.field` names the bad field. */
export function parsePolicy(input: unknown): Policy {
  if (!isRecord(input))
    return bad("policy", "must be an object { allowedSigners, allowedMeasurements?, allowDebug? }");
  onlyKnownFields(input, "policy", ["allowedSigners", "allowedMeasurements", "allowDebug"]);
  const { allowedSigners, allowedMeasurements, allowDebug } = input;
  if (!Array.isArray(allowedSigners)) return bad("policy.allowedSigners", "must be an array");
  if (allowedSigners.length === 0)
    bad("policy.allowedSigners", "must list at least one signer (an empty list admits nothing)");
  const policy: Policy = {
    allowedSigners: allowedSigners.map((s, i) => parseSigner(s, `policy.allowedSigners[${i}]`)),
  };
  if (allowedMeasurements !== undefined) {
    if (!Array.isArray(allowedMeasurements)) return bad("policy.allowedMeasurements", "must be an array");
    if (allowedMeasurements.length === 0) {
      bad("policy.allowedMeasurements", "must list at least one measurement, or be left out to allow any");
    }
    policy.allowedMeasurements = allowedMeasurements.map((m, i) =>
      hex64(m, `policy.allowedMeasurements[${i}]`),
    );
  }
  if (allowDebug !== undefined) {
    if (typeof allowDebug !== "boolean") return bad("policy.allowDebug", "must be true or false");
    policy.allowDebug = allowDebug;
  }
  return policy;
}

const reject = (check: string, message: string, extra: Record<string, unknown> = {}): never =>
  fail("AttestationFailed", `attestation rejected: ${message}`, { check, ...extra });

/** Checks a (signature-verified) identity against a parsed policy. AttestationFailed naming the failed check. */
export function checkPolicy(identity: EnclaveIdentity, policy: Policy): void {
  const sameSigner = policy.allowedSigners.filter((s) => s.mrsigner === identity.mrsigner);
  if (sameSigner.length === 0) {
    reject("signer", `MRSIGNER ${identity.mrsigner} is not an allowed signer`, {
      mrsigner: identity.mrsigner,
    });
  }
  const sameProduct = sameSigner.filter(
    (s) => s.productId === undefined || s.productId === identity.productId,
  );
  if (sameProduct.length === 0) {
    reject("signer", `product id ${identity.productId} is not allowed for signer ${identity.mrsigner}`, {
      productId: identity.productId,
    });
  }
  if (!sameProduct.some((s) => identity.svn >= (s.minSvn ?? 0))) {
    const minSvn = Math.min(...sameProduct.map((s) => s.minSvn ?? 0));
    reject("svn", `security version ${identity.svn} is below the minimum ${minSvn}`, {
      svn: identity.svn,
      minSvn,
    });
  }
  if (policy.allowedMeasurements && !policy.allowedMeasurements.includes(identity.mrenclave)) {
    reject("measurement", `MRENCLAVE ${identity.mrenclave} is not an allowed measurement`, {
      mrenclave: identity.mrenclave,
    });
  }
  if (identity.debug && policy.allowDebug !== true) {
    reject("debug", "the enclave runs in debug mode, which the policy does not allow");
  }
}
