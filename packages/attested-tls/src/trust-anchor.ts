/** The vendor root certificate in the two forms the TLS stack and the verifier need. */
import { X509Certificate } from "node:crypto";
import { fail } from "@hsmpool/errors";

export interface TrustAnchor {
  der: Uint8Array;
  pem: string;
}

/** Accepts the vendor root as DER bytes or PEM text; BadParameter for anything else. */
export function trustAnchor(vendorRoot: Uint8Array | string): TrustAnchor {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(typeof vendorRoot === "string" ? vendorRoot : Buffer.from(vendorRoot));
  } catch {
    return fail("BadParameter", "the vendor root must be an X.509 certificate (DER bytes or PEM text)");
  }
  if (!cert.ca) fail("BadParameter", "the vendor root certificate is not a CA certificate");
  return { der: new Uint8Array(cert.raw), pem: cert.toString() };
}
