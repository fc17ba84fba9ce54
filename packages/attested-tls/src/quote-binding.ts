/**
 * How an RA-TLS certificate binds the platform quote to its TLS key. This is the
 * file format this package defines (also documented in proto/peer.proto):
 *
 *  - the quote rides in a non-critical X.509 extension, OID {@link RA_TLS_QUOTE_OID};
 *    its extnValue OCTET STRING holds the raw quote bytes as `Enclave.getQuote` made them;
 *  - the quote's 64-byte report data is SHA-256(SubjectPublicKeyInfo DER of the leaf)
 *    followed by 32 zero bytes (SGX REPORTDATA is 64 bytes; the digest fills the first half).
 */
import { createHash } from "node:crypto";
import { REPORT_DATA_SIZE_BYTES } from "@hsmpool/platform";

/**
 * id-hsmpool-ra-tls-quote. A private-enterprise-style arc (1.3.6.1.4.1.99999) that is
 * NOT registered with IANA: hsmpool is a model, and nothing outside it reads this OID.
 */
export const RA_TLS_QUOTE_OID = "1.3.6.1.4.1.99999.1.1";

const DIGEST_SIZE_BYTES = 32;

/** Report data binding a quote to a public key: SHA-256(SPKI DER) || 32 zero bytes. */
export function reportDataForSpki(spkiDer: Uint8Array): Uint8Array {
  const reportData = new Uint8Array(REPORT_DATA_SIZE_BYTES);
  reportData.set(createHash("sha256").update(spkiDer).digest().subarray(0, DIGEST_SIZE_BYTES), 0);
  return reportData;
}
