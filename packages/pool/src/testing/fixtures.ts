/** Test helpers: real P-384 signers, certificates, Genesis commands, log entries, error matchers. */
import { type ErrorCode, isHsmPoolError } from "@hsmpool/errors";
import type { Entry } from "@hsmpool/raft";
import { p384 } from "@noble/curves/nist.js";
import { expect } from "vitest";
import {
  type CertificateRole,
  certificateSigningBytes,
  encodeCommand,
  type GenesisCommand,
  keyFingerprint,
  type P384PublicJwk,
  type PoolCertificate,
  type PoolCommand,
  publicKeyFingerprint,
} from "../index.js";
import { base64UrlEncode } from "../jwk.js";

export interface TestSigner {
  secretKey: Uint8Array;
  publicKey: P384PublicJwk;
}

export function newSigner(): TestSigner {
  const secretKey = p384.utils.randomSecretKey();
  return { secretKey, publicKey: jwkOf(p384.getPublicKey(secretKey, false)) };
}

export function jwkOf(uncompressed: Uint8Array): P384PublicJwk {
  return {
    kty: "EC",
    crv: "P-384",
    x: base64UrlEncode(uncompressed.subarray(1, 49)),
    y: base64UrlEncode(uncompressed.subarray(49, 97)),
  };
}

export function sign(signer: TestSigner, data: Uint8Array): Uint8Array {
  return p384.sign(data, signer.secretKey);
}

export function issue(
  issuer: TestSigner,
  fields: {
    role: CertificateRole;
    poolId: string;
    subject: string;
    partitionId: string;
    publicKey: P384PublicJwk;
  },
): PoolCertificate {
  const unsigned = { ...fields, issuerFingerprint: publicKeyFingerprint(issuer.publicKey) };
  return { ...unsigned, signature: sign(issuer, certificateSigningBytes(unsigned)) };
}

export function ownerRootCert(root: TestSigner, poolId: string, subject = "n1"): PoolCertificate {
  return issue(root, {
    role: "ownerRoot",
    poolId,
    subject,
    partitionId: "dev-1/p0",
    publicKey: root.publicKey,
  });
}

export function genesisCommand(
  poolId = "pool-1",
  proposer = "n1",
  root: TestSigner = newSigner(),
  at = 1_700_000_000_000,
): GenesisCommand {
  return {
    kind: "genesis",
    poolId,
    ownerRootCert: ownerRootCert(root, poolId, proposer),
    dekFingerprint: keyFingerprint(`dek-of-${proposer}`),
    poolKeyFingerprint: keyFingerprint(`poolkey-of-${proposer}`),
    proposer,
    at,
  };
}

/** Hands out consecutive Raft entries (term 1) for commands, empty entries or raw bytes. */
export class EntryFeed {
  private index = 0;

  next(payload: PoolCommand | Uint8Array | null): Entry {
    this.index += 1;
    const data =
      payload === null ? new Uint8Array(0) : payload instanceof Uint8Array ? payload : encodeCommand(payload);
    return { term: 1, index: this.index, type: "normal", data };
  }

  /** The index the next entry will get (for out-of-band entries such as conf changes). */
  peek(): number {
    return this.index + 1;
  }

  skip(): number {
    this.index += 1;
    return this.index;
  }
}

/** Runs `fn` and returns the HsmPoolError it threw (failing the test if it threw nothing or something else). */
export function thrown(
  fn: () => unknown,
  code?: ErrorCode,
): { code: ErrorCode; message: string; details?: unknown } {
  try {
    fn();
  } catch (e) {
    if (!isHsmPoolError(e)) throw new Error(`expected HsmPoolError, got ${String(e)}`);
    if (code) expect(e.code, e.message).toBe(code);
    return { code: e.code, message: e.message, details: e.details };
  }
  throw new Error(`expected an HsmPoolError${code ? ` ${code}` : ""}, but nothing was thrown`);
}
