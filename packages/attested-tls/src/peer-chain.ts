/** The certificate chain a TLS peer presented, as DER, leaf first. */
import type { X509Certificate } from "node:crypto";
import type { DetailedPeerCertificate, PeerCertificate } from "node:tls";

const MAX_CERTS = 8;

/** From Node's detailed peer certificate, linked through `issuerCertificate`; a self-signed root points at itself. */
export function chainFromPeerCertificate(cert: PeerCertificate | DetailedPeerCertificate): Uint8Array[] {
  const chain: Uint8Array[] = [];
  let current: Partial<DetailedPeerCertificate> | undefined = cert;
  while (current?.raw && chain.length < MAX_CERTS) {
    chain.push(new Uint8Array(current.raw));
    const next: DetailedPeerCertificate | undefined = current.issuerCertificate;
    if (!next || next === current || next.fingerprint256 === current.fingerprint256) break;
    current = next;
  }
  return chain;
}

/**
 * From `socket.getPeerX509Certificate()`: the same DER chain without building the legacy
 * object (every field decoded, three fingerprints per certificate), which the server side
 * paid on every accepted connection only to read `raw`.
 */
export function chainFromPeerX509(cert: X509Certificate | undefined): Uint8Array[] {
  const chain: Uint8Array[] = [];
  let current = cert;
  while (current !== undefined && chain.length < MAX_CERTS) {
    chain.push(new Uint8Array(current.raw));
    const next: X509Certificate | undefined = current.issuerCertificate;
    if (next === undefined || next.fingerprint256 === current.fingerprint256) break;
    current = next;
  }
  return chain;
}
