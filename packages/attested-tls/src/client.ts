/**
 * Attested channel credentials for grpc-js clients. Node's TLS stack verifies the
 * server chain against the vendor root (chain, expiry); then `checkServerIdentity`
 * — which Node runs inside the handshake, only after the chain verified — runs the
 * RA-TLS verifier. Returning an Error there aborts the handshake, so no request
 * byte is ever written to a server that fails the policy. Hostnames play no part:
 * a node is who its attestation says, not what DNS says.
 */
import { createSecureContext, type PeerCertificate, type SecureContext } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { fail, HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import type { Policy } from "@hsmpool/platform";
import { type AttestedIdentity, tlsPrivateKeyPem } from "./attested-identity.js";
import { chainFromPeerCertificate } from "./peer-chain.js";
import { trustAnchor } from "./trust-anchor.js";
import { createPeerVerifier, type VerifiedPeer } from "./verify-peer.js";

export interface AttestedChannelOptions {
  identity: AttestedIdentity;
  /** Verifier policy for servers (validated with the platform's parsePolicy). */
  policy: Policy;
  vendorRoot: Uint8Array | string;
  /** If set, a server attested on another server id is refused (check "server-id"). */
  expectedServerId?: string;
  /** Clock for certificate validity in the RA-TLS check (default: system clock). */
  now?: () => Date;
}

/**
 * SNI is not used for identity here, and Node warns when grpc-js sends an IP address
 * as the TLS server name; a fixed name keeps addresses like 127.0.0.1:port quiet.
 */
export const ATTESTED_CHANNEL_OPTIONS: grpc.ChannelOptions = Object.freeze({
  "grpc.ssl_target_name_override": "hsmpool-node",
});

/** Credentials for one logical channel plus what its handshakes found out. */
export interface AttestedChannel {
  readonly credentials: grpc.ChannelCredentials;
  /** Pass these to the grpc-js client constructor along with `credentials`. */
  readonly channelOptions: grpc.ChannelOptions;
  /** The server verified by the most recent successful handshake, if any. */
  serverIdentity(): VerifiedPeer | undefined;
  /** Why the most recent refused handshake was refused by the RA-TLS check, if one was. */
  lastRejection(): HsmPoolError | undefined;
}

/**
 * One TLS context per (identity, vendor root). Building one parses the private key, the
 * certificate chain and the root (~2.5 ms, most of what a new channel cost beyond the
 * handshake itself), and the pool makes a channel per peer link and reconnect. The
 * context holds exactly what createSsl would have given it; the per-channel state (the
 * RA-TLS check and what it found) stays per channel. A renewed identity is another
 * object, so it gets its own context and presents its own certificate.
 */
const secureContexts = new WeakMap<AttestedIdentity, Map<string, SecureContext>>();

function secureContextFor(identity: AttestedIdentity, anchorPem: string): SecureContext {
  let byAnchor = secureContexts.get(identity);
  if (byAnchor === undefined) {
    byAnchor = new Map();
    secureContexts.set(identity, byAnchor);
  }
  let context = byAnchor.get(anchorPem);
  if (context === undefined) {
    context = createSecureContext({
      ca: anchorPem,
      key: tlsPrivateKeyPem(identity),
      cert: identity.certChainPem,
    });
    byAnchor.set(anchorPem, context);
  }
  return context;
}

export function attestedChannelCredentials(opts: AttestedChannelOptions): AttestedChannel {
  const anchor = trustAnchor(opts.vendorRoot);
  const verify = createPeerVerifier(opts.policy, anchor.der);
  const now = opts.now ?? (() => new Date());
  let verified: VerifiedPeer | undefined;
  let rejection: HsmPoolError | undefined;

  const checkServerIdentity = (_host: string, cert: PeerCertificate): Error | undefined => {
    try {
      const peer = verify(chainFromPeerCertificate(cert), now());
      if (opts.expectedServerId !== undefined && peer.serverId !== opts.expectedServerId) {
        fail(
          "AttestationFailed",
          `peer rejected (server-id): attested on ${peer.serverId}, expected ${opts.expectedServerId}`,
          { check: "server-id", serverId: peer.serverId, expected: opts.expectedServerId },
        );
      }
      verified = peer;
      rejection = undefined;
      return undefined;
    } catch (e) {
      rejection = isHsmPoolError(e)
        ? e
        : new HsmPoolError("AttestationFailed", `peer rejected: ${String(e)}`, { check: "internal" });
      return rejection;
    }
  };

  const credentials = grpc.credentials.createFromSecureContext(secureContextFor(opts.identity, anchor.pem), {
    checkServerIdentity,
  });
  return {
    credentials,
    channelOptions: ATTESTED_CHANNEL_OPTIONS,
    serverIdentity: () => verified,
    lastRejection: () => rejection,
  };
}
