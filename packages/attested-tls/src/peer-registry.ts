/**
 * Which verified peer is on the other end of a server call. The attested server
 * records each accepted connection under (remote address:port, leaf fingerprint);
 * a call is looked up by grpc-js's `getPeer()` plus the certificate its auth
 * context reports, so a lookup can only ever return the identity that was verified
 * for the very certificate that connection presented.
 */
import type { X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import { fail } from "@hsmpool/errors";
import type { VerifiedPeer } from "./verify-peer.js";

interface Entry {
  peer: VerifiedPeer;
  connections: number;
}

const byConnection = new Map<string, Entry>();

/** grpc-js/Node print SHA-256 fingerprints as colon-separated upper-case hex. */
const normaliseFingerprint = (fp: string): string => fp.replaceAll(":", "").toLowerCase();

const keyOf = (peerAddress: string, fingerprintHex: string): string => `${peerAddress}#${fingerprintHex}`;

/** Records `peer` for `socket` until the socket closes. */
export function rememberPeer(socket: TLSSocket, peer: VerifiedPeer): void {
  const key = keyOf(`${socket.remoteAddress}:${socket.remotePort}`, peer.certFingerprint);
  const entry = byConnection.get(key);
  if (entry) entry.connections++;
  else byConnection.set(key, { peer, connections: 1 });
  socket.once("close", () => {
    const e = byConnection.get(key);
    if (e && --e.connections === 0) byConnection.delete(key);
  });
}

/** The parts of a grpc-js server call this lookup needs (unary, streaming and interceptors all have them). */
export interface CallWithPeer {
  getPeer(): string;
  getAuthContext?(): { sslPeerCertificate?: { fingerprint256?: string } | X509Certificate } | null;
}

/** The verified identity of the peer that made `call`, or undefined on a connection this package did not accept. */
export function peerIdentityOf(call: CallWithPeer): VerifiedPeer | undefined {
  const cert = call.getAuthContext?.()?.sslPeerCertificate;
  const fp = cert && "fingerprint256" in cert ? cert.fingerprint256 : undefined;
  if (!fp) return undefined;
  return byConnection.get(keyOf(call.getPeer(), normaliseFingerprint(fp)))?.peer;
}

/** Like {@link peerIdentityOf} but throws Unauthenticated, for handlers that must know their caller. */
export function requirePeerIdentity(call: CallWithPeer): VerifiedPeer {
  return (
    peerIdentityOf(call) ??
    fail("Unauthenticated", "this call did not arrive over an attested connection accepted by this server")
  );
}
