/**
 * The attestation policy a node applies to its peers, baked into the code rather
 * than read from the HFC (which is untrusted): the same code signer (MRSIGNER) and
 * product id as this enclave, at this enclave's SVN or higher, never a debug
 * enclave. A tampered bundle fails at launch (measurement); a foreign signer, an
 * older SVN or a debug build fails here, in the TLS handshake, on both sides.
 */
import type { EnclaveIdentity, Policy } from "@hsmpool/platform";

export function peerPolicyFor(self: EnclaveIdentity): Policy {
  return {
    allowedSigners: [{ mrsigner: self.mrsigner, productId: self.productId, minSvn: self.svn }],
    allowDebug: false,
  };
}
