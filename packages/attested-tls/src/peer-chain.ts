/** The certificate chain a TLS peer presented, as DER, from Node's detailed peer certificate. */
import type { DetailedPeerCertificate, PeerCertificate } from "node:tls";

const MAX_CERTS = 8;

/** Leaf first. Node links the chain through `issuerCertificate`; a self-signed root points at itself. */
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
