/**
 * The RA-TLS verifier: given the certificate chain a peer presented, decide whether
 * it is a genuine enclave this policy admits. Pure apart from the injectable clock
 * default; it is what both handshake sides run (client: checkServerIdentity, server:
 * secureConnection), and it re-checks everything the TLS stack already checked so
 * it is safe to call on its own.
 *
 * Checks, in order, each named in `details.check` of the AttestationFailed it throws:
 *   chain            leaf -> platform cert -> vendor root signatures, CA flags
 *   validity         every certificate in the chain is inside its validity window
 *   quote-missing    the leaf has no quote extension
 *   quote-format     the extension does not hold a well-formed quote
 *   platform-mismatch the quote was made by another platform than the one that issued the leaf
 *   key-binding      report data != SHA-256(SPKI of this leaf) || zeros
 *   quote-signature  the quote is not signed by a vendor-certified platform key
 *   signer / svn / measurement / debug   the verifier policy (platform checkPolicy)
 */
import { createHash, X509Certificate } from "node:crypto";
import { fail, isHsmPoolError } from "@hsmpool/errors";
import { decodeQuote, type EnclaveIdentity, type Policy, parsePolicy, verifyQuote } from "@hsmpool/platform";
import { sha256Hex } from "./attested-identity.js";
import { encodeOid, findExtension } from "./der.js";
import { RA_TLS_QUOTE_OID, reportDataForSpki } from "./quote-binding.js";
import { type TrustAnchor, trustAnchor } from "./trust-anchor.js";

/** What a verified peer is: its enclave identity plus the certificate that proved it. */
export interface VerifiedPeer extends EnclaveIdentity {
  /** SHA-256 of the peer's leaf certificate DER, lower-case hex. */
  certFingerprint: string;
}

export interface VerifyPeerOptions {
  /** The fabric's vendor root (DER or PEM): the only trust anchor. */
  vendorRootCertDer: Uint8Array | string;
  /** Clock for validity checks (default: now). Shells pass their injected clock. */
  now?: Date;
}

export type PeerCheck =
  | "chain"
  | "validity"
  | "quote-missing"
  | "quote-format"
  | "platform-mismatch"
  | "key-binding"
  | "quote-signature"
  | "signer"
  | "svn"
  | "measurement"
  | "debug";

const MAX_CHAIN_LENGTH = 4;

const reject = (check: PeerCheck, message: string, extra: Record<string, unknown> = {}): never =>
  fail("AttestationFailed", `peer rejected (${check}): ${message}`, { check, ...extra });

/** The platform names its checks from the quote's point of view; map them onto the peer's. */
const PLATFORM_CHECKS: Record<string, PeerCheck> = {
  format: "quote-format",
  chain: "quote-signature",
  signature: "quote-signature",
  reportData: "key-binding",
  signer: "signer",
  svn: "svn",
  measurement: "measurement",
  debug: "debug",
};

function parseChain(chainDer: readonly Uint8Array[], rootDer: Uint8Array): X509Certificate[] {
  if (chainDer.length === 0) reject("chain", "the peer presented no certificate");
  // TLS stacks may append the trust anchor itself; it adds nothing to verify.
  const withoutRoot = chainDer.filter((der) => Buffer.compare(der, rootDer) !== 0);
  if (withoutRoot.length === 0) reject("chain", "the peer presented only the vendor root");
  if (withoutRoot.length > MAX_CHAIN_LENGTH) reject("chain", `chain longer than ${MAX_CHAIN_LENGTH}`);
  return withoutRoot.map((der, i) => {
    try {
      return new X509Certificate(Buffer.from(der));
    } catch {
      return reject("chain", `certificate ${i} of the chain is not valid X.509`);
    }
  });
}

function checkChain(chain: X509Certificate[], root: X509Certificate): void {
  const leaf = chain[0]!;
  if (leaf.ca) reject("chain", "the leaf certificate is a CA certificate");
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    const issuer = chain[i + 1] ?? root;
    const what = i === 0 ? "leaf" : `certificate ${i}`;
    if (!issuer.ca) reject("chain", `the issuer of the ${what} is not a CA certificate`);
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
      reject(
        "chain",
        chain[i + 1]
          ? `the ${what} is not issued by the next certificate in the chain`
          : `the ${what} does not chain to this fabric's vendor root (foreign platform or ordinary CA?)`,
      );
    }
  }
}

/** Node 22+ has `validFromDate`; Node 20 only the OpenSSL text form, which Date parses. */
function validityOf(cert: X509Certificate): { from: Date; to: Date } {
  const c = cert as X509Certificate & { validFromDate?: Date; validToDate?: Date };
  return { from: c.validFromDate ?? new Date(cert.validFrom), to: c.validToDate ?? new Date(cert.validTo) };
}

function checkValidity(certs: X509Certificate[], now: Date): void {
  for (const [i, cert] of certs.entries()) {
    const { from, to } = validityOf(cert);
    const what = i === 0 ? "leaf" : `chain certificate ${i}`;
    if (now < from) {
      reject("validity", `the ${what} is not valid until ${from.toISOString()}`, { reason: "not-yet-valid" });
    }
    if (now > to) {
      reject("validity", `the ${what} expired at ${to.toISOString()}`, { reason: "expired" });
    }
  }
}

const QUOTE_OID_DER = encodeOid(RA_TLS_QUOTE_OID);

function quoteOf(leafDer: Uint8Array): Uint8Array {
  let ext: ReturnType<typeof findExtension>;
  try {
    ext = findExtension(leafDer, QUOTE_OID_DER);
  } catch {
    return reject("quote-format", "the leaf's extensions cannot be parsed");
  }
  if (!ext) return reject("quote-missing", `the leaf has no quote extension (${RA_TLS_QUOTE_OID})`);
  return ext.value;
}

function rethrowPlatform(e: unknown): never {
  if (isHsmPoolError(e, "AttestationFailed")) {
    const platformCheck = String(e.details?.check ?? "");
    const check = PLATFORM_CHECKS[platformCheck] ?? "quote-signature";
    reject(check, e.message.replace(/^attestation rejected: /, ""), { ...e.details, check });
  }
  throw e;
}

/** A verifier bound to one policy and vendor root, parsed once (the shells run it on every handshake). */
export type PeerVerifier = (certChainDer: readonly Uint8Array[], now: Date) => VerifiedPeer;

/** Verified chains a verifier remembers (a pool has a handful of peers; bounded against churn). */
export const EVIDENCE_CACHE_ENTRIES = 256;

/** A chain this verifier admitted, and the window in which every certificate of it (and the root) is valid. */
interface CachedEvidence {
  peer: VerifiedPeer;
  fromMs: number;
  toMs: number;
}

/** One key for the exact bytes of a presented chain: any changed byte is another chain. */
function chainKey(certChainDer: readonly Uint8Array[]): string {
  const h = createHash("sha256");
  for (const der of certChainDer) {
    h.update(
      Buffer.from([der.length >>> 24, (der.length >>> 16) & 255, (der.length >>> 8) & 255, der.length & 255]),
    );
    h.update(der);
  }
  return h.digest("hex");
}

/**
 * Evidence cache: a reconnecting peer presents the chain it presented before, so the
 * chain, quote and policy checks (pure functions of the chain bytes, the vendor root and
 * this verifier's fixed policy) are answered from memory — but only while `now` is inside
 * the validity of every certificate involved (the quote's platform certificate is the
 * chain's, so its window is covered too). Outside it the entry is dropped and the full
 * check runs again, which refuses an expired chain as it always did. A changed policy
 * (an SVN floor raised, a measurement revoked) keys another cache, empty at first.
 */
export function createPeerVerifier(policy: Policy, vendorRoot: Uint8Array | string): PeerVerifier {
  const { verifyFully, cache } = verifierStateFor(policy, vendorRoot);
  return (certChainDer, now) => {
    const key = chainKey(certChainDer);
    const t = now.getTime();
    const hit = cache.get(key);
    if (hit !== undefined) {
      if (t >= hit.fromMs && t <= hit.toMs) return { ...hit.peer };
      cache.delete(key);
    }
    const { peer, fromMs, toMs } = verifyFully(certChainDer, now);
    if (cache.size >= EVIDENCE_CACHE_ENTRIES) {
      const oldest = cache.keys().next();
      if (!oldest.done) cache.delete(oldest.value);
    }
    cache.set(key, { peer, fromMs, toMs });
    return { ...peer };
  };
}

/** The full verifier of one (policy, vendor root) pair and the evidence it admitted. */
interface VerifierState {
  verifyFully: (certChainDer: readonly Uint8Array[], now: Date) => CachedEvidence;
  cache: Map<string, CachedEvidence>;
}

/**
 * Shared by every verifier made with the same (policy, vendor root): a verdict depends
 * only on the chain bytes, the root, the policy and the time, so a reconnect over new
 * channel credentials (same policy) still finds what the last one checked, and the root
 * and policy are parsed once instead of on every channel. The key is the policy's
 * content (parsed anew on each call), never the caller's object: a policy edited in
 * place is another key.
 */
const verifierStates = new Map<string, VerifierState>();
const MAX_POLICIES = 16;

function verifierStateFor(policy: Policy, vendorRoot: Uint8Array | string): VerifierState {
  const anchor = trustAnchor(vendorRoot);
  const parsedPolicy = parsePolicy(policy);
  const key = createHash("sha256").update(JSON.stringify(parsedPolicy)).update(anchor.der).digest("hex");
  let state = verifierStates.get(key);
  if (state === undefined) {
    if (verifierStates.size >= MAX_POLICIES) {
      const oldest = verifierStates.keys().next();
      if (!oldest.done) verifierStates.delete(oldest.value);
    }
    state = { verifyFully: createUncachedPeerVerifier(parsedPolicy, anchor), cache: new Map() };
    verifierStates.set(key, state);
  }
  return state;
}

function createUncachedPeerVerifier(
  parsedPolicy: Policy,
  anchor: TrustAnchor,
): (certChainDer: readonly Uint8Array[], now: Date) => CachedEvidence {
  const root = new X509Certificate(Buffer.from(anchor.der));
  return (certChainDer, now) => {
    const chain = parseChain(certChainDer, anchor.der);
    checkChain(chain, root);
    checkValidity([...chain, root], now);

    const leaf = chain[0]!;
    const leafDer = new Uint8Array(leaf.raw);
    const quote = quoteOf(leafDer);
    let decoded: ReturnType<typeof decodeQuote>;
    try {
      decoded = decodeQuote(quote);
    } catch (e) {
      return rethrowPlatform(e);
    }
    const leafIssuerDer = chain[1]?.raw;
    const quotingPlatformDer = decoded.chainDer[0];
    if (!leafIssuerDer || !quotingPlatformDer || Buffer.compare(leafIssuerDer, quotingPlatformDer) !== 0) {
      reject("platform-mismatch", "the quote was made on another platform than the one that issued the leaf");
    }
    const spkiDer = new Uint8Array(leaf.publicKey.export({ type: "spki", format: "der" }));
    const expectedReportData = reportDataForSpki(spkiDer);
    // Checked before the policy on purpose: a quote that is not about this key says
    // nothing about this peer, whatever enclave it describes.
    if (Buffer.compare(decoded.reportData, expectedReportData) !== 0) {
      reject("key-binding", "the quote's report data is not SHA-256 of this certificate's public key");
    }
    let verified: ReturnType<typeof verifyQuote>;
    try {
      verified = verifyQuote(quote, anchor.der, parsedPolicy, { expectedReportData, now });
    } catch (e) {
      return rethrowPlatform(e);
    }
    const windows = [...chain, root].map(validityOf);
    return {
      peer: {
        mrenclave: verified.mrenclave,
        mrsigner: verified.mrsigner,
        productId: verified.productId,
        svn: verified.svn,
        debug: verified.debug,
        serverId: verified.serverId,
        rackId: verified.rackId,
        certFingerprint: sha256Hex(leafDer),
      },
      fromMs: Math.max(...windows.map((w) => w.from.getTime())),
      toMs: Math.min(...windows.map((w) => w.to.getTime())),
    };
  };
}

/**
 * Verifies a peer's certificate chain (leaf first, DER) against the vendor root and
 * `policy`; returns who the peer is, or throws AttestationFailed naming the check
 * (BadParameter for a malformed policy or vendor root).
 */
export function verifyPeer(
  certChainDer: readonly Uint8Array[],
  policy: Policy,
  opts: VerifyPeerOptions,
): VerifiedPeer {
  return createPeerVerifier(policy, opts.vendorRootCertDer)(certChainDer, opts.now ?? new Date());
}
