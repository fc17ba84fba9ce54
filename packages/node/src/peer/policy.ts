/**
 * The attestation policy a node applies to its peers, baked into the code rather
 * than read from the HFC (which is untrusted): the same code signer (MRSIGNER) and
 * product id as this enclave, never a debug enclave, and an SVN floor. A tampered
 * bundle fails at launch (measurement); a foreign signer, an SVN below the floor or a
 * debug build fails here, in the TLS handshake, on both sides.
 *
 * The floor is this enclave's own SVN unless the launch config lowers it (`minPeerSvn`):
 * a newer bundle joining an older pool during a rolling update must accept the older
 * members. It can never be raised above the own SVN (the node would refuse its own
 * code) and lowering it does not let the HFC downgrade the pool: an older joiner is
 * still refused by every member whose floor is above its SVN (the older members are
 * not newer than it, and members started without `minPeerSvn` keep their own SVN), the
 * primary refuses a joiner below the SVN of every current member (join-rules.ts), and
 * the platform will not let an older bundle unseal what a newer one sealed.
 */
import { fail } from "@hsmpool/errors";
import type { EnclaveIdentity, Policy } from "@hsmpool/platform";

/** The SVN floor for peers: `minPeerSvn` when given (never above the own SVN), else the own SVN. */
export function peerSvnFloor(self: EnclaveIdentity, minPeerSvn: number | null): number {
  if (minPeerSvn === null) return self.svn;
  if (minPeerSvn > self.svn) {
    fail(
      "BadParameter",
      `config minPeerSvn: ${minPeerSvn} is above this enclave's own SVN ${self.svn}; the node would refuse peers running its own code`,
      { field: "minPeerSvn" },
    );
  }
  return minPeerSvn;
}

export function peerPolicyFor(self: EnclaveIdentity, minPeerSvn: number | null = null): Policy {
  return {
    allowedSigners: [
      { mrsigner: self.mrsigner, productId: self.productId, minSvn: peerSvnFloor(self, minPeerSvn) },
    ],
    // A production enclave never admits a debug peer; debug enclaves (chaos runs) admit each other.
    allowDebug: self.debug,
  };
}
