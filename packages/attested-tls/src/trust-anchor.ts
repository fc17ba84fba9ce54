/** The vendor root certificate in the two forms the TLS stack and the verifier need. */
import { X509Certificate } from "node:crypto";
import { fail } from "@hsmpool/errors";

export interface TrustAnchor {
  /** Shared between callers (see below): read it, never write to it. */
  readonly der: Uint8Array;
  readonly pem: string;
}

/**
 * Parsed anchors by their exact input (PEM text, or DER as base64). Every channel and
 * verifier starts from the same one or two roots, and an X509Certificate parse costs
 * ~0.3 ms: on a reconnect it was a measurable part of the attested handshake. Only
 * inputs that parsed as a CA are kept; anything else is refused again every time.
 */
const parsed = new Map<string, TrustAnchor>();
const MAX_ANCHORS = 16;

/** Accepts the vendor root as DER bytes or PEM text; BadParameter for anything else. */
export function trustAnchor(vendorRoot: Uint8Array | string): TrustAnchor {
  const key =
    typeof vendorRoot === "string"
      ? `pem:${vendorRoot}`
      : `der:${Buffer.from(vendorRoot.buffer, vendorRoot.byteOffset, vendorRoot.byteLength).toString("base64")}`;
  const known = parsed.get(key);
  if (known !== undefined) return known;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(typeof vendorRoot === "string" ? vendorRoot : Buffer.from(vendorRoot));
  } catch {
    return fail("BadParameter", "the vendor root must be an X.509 certificate (DER bytes or PEM text)");
  }
  if (!cert.ca) fail("BadParameter", "the vendor root certificate is not a CA certificate");
  const anchor: TrustAnchor = Object.freeze({ der: new Uint8Array(cert.raw), pem: cert.toString() });
  if (parsed.size >= MAX_ANCHORS) {
    const oldest = parsed.keys().next();
    if (!oldest.done) parsed.delete(oldest.value);
  }
  parsed.set(key, anchor);
  return anchor;
}
