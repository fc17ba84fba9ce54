/**
 * verifyPeer on its own (no sockets): one test per failed check, the order that
 * matters, and properties over corrupted certificates and quotes.
 */
import { createHash, X509Certificate } from "node:crypto";
import { isHsmPoolError } from "@hsmpool/errors";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AttestedIdentity, createAttestedIdentity, issueAttestedLeaf } from "./attested-identity.js";
import { reportDataForSpki } from "./quote-binding.js";
import {
  buildWorld,
  customLeaf,
  expiredIdentity,
  forgedIdentity,
  GOOD_FIELDS,
  ordinaryCa,
  quoteOfCert,
  removeTempDirs,
  type World,
} from "./test-support.js";
import { createPeerVerifier, verifyPeer } from "./verify-peer.js";

let world: World;
let idA: AttestedIdentity;
let root: Uint8Array;

beforeAll(async () => {
  world = await buildWorld();
  idA = await createAttestedIdentity(world.goodA);
  root = world.fabric.vendorRootCertDer;
});
afterAll(removeTempDirs);

function checkOf(chain: readonly Uint8Array[], now?: Date, rootDer: Uint8Array | string = root): string {
  try {
    verifyPeer(chain, world.policy, { vendorRootCertDer: rootDer, ...(now ? { now } : {}) });
  } catch (e) {
    if (isHsmPoolError(e, "AttestationFailed")) return String(e.details?.check);
    throw e;
  }
  return "accepted";
}

const pemToDer = (pem: string): Uint8Array[] =>
  (pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map(
    (p) => new Uint8Array(new X509Certificate(p).raw),
  );

describe("verifyPeer accepts a genuine enclave", () => {
  it("returns the quoted identity and the leaf fingerprint", () => {
    const peer = verifyPeer(idA.certChainDer, world.policy, { vendorRootCertDer: root });
    expect(peer).toEqual({
      ...world.goodA.identity,
      certFingerprint: createHash("sha256").update(idA.certChainDer[0]!).digest("hex"),
    });
  });

  it("accepts the chain with the vendor root appended, as Node's peer certificate lists it", () => {
    expect(checkOf([...idA.certChainDer, root])).toBe("accepted");
    expect(checkOf(idA.certChainDer, undefined, world.fabric.vendorRootCertPem)).toBe("accepted");
  });
});

describe("verifyPeer names the failed check", () => {
  it("chain: no certificate at all", () => {
    expect(checkOf([])).toBe("chain");
  });

  it("chain: a leaf without its platform certificate", () => {
    expect(checkOf([idA.certChainDer[0]!])).toBe("chain");
  });

  it("chain: an enclave on a platform of another fabric", async () => {
    expect(checkOf((await createAttestedIdentity(world.foreign)).certChainDer)).toBe("chain");
  });

  it("chain: an ordinary CA-issued TLS certificate", async () => {
    expect(checkOf(pemToDer((await ordinaryCa()).leaf.certChainPem))).toBe("chain");
  });

  it("chain: bytes that are not a certificate", () => {
    expect(checkOf([new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])])).toBe("chain");
  });

  it("validity: an expired certificate", async () => {
    expect(checkOf((await expiredIdentity(world.goodA)).certChainDer)).toBe("validity");
  });

  it("validity: judged by the injected clock, before and after the window", () => {
    expect(checkOf(idA.certChainDer, new Date(idA.notAfter.getTime() + 1000))).toBe("validity");
    expect(checkOf(idA.certChainDer, new Date(idA.notBefore.getTime() - 1000))).toBe("validity");
    expect(checkOf(idA.certChainDer, new Date(idA.notAfter.getTime() - 1000))).toBe("accepted");
  });

  it("quote-missing: a genuine platform certificate without a quote", async () => {
    expect(checkOf(await customLeaf(world.goodA, null))).toBe("quote-missing");
  });

  it("quote-format: a quote extension holding garbage", async () => {
    expect(checkOf(await customLeaf(world.goodA, () => new Uint8Array(80).fill(7)))).toBe("quote-format");
  });

  it("platform-mismatch: a quote made on another server than the one that issued the leaf", async () => {
    const chain = await customLeaf(world.goodA, (spki) => world.goodB.getQuote(reportDataForSpki(spki)));
    expect(checkOf(chain)).toBe("platform-mismatch");
  });

  it("key-binding: another node's quote copied into a certificate for a fresh key", async () => {
    const victim = await createAttestedIdentity(world.goodB);
    expect(checkOf((await forgedIdentity(victim, world.goodB)).chainDer)).toBe("key-binding");
  });

  it("key-binding is checked before the policy: a copied quote is not about this peer at all", async () => {
    const victim = await createAttestedIdentity(world.otherSigner);
    expect(checkOf((await forgedIdentity(victim, world.otherSigner)).chainDer)).toBe("key-binding");
  });

  it("quote-signature: a bound quote whose platform signature was altered", async () => {
    const chain = await customLeaf(world.goodA, (spki) => {
      const quote = world.goodA.getQuote(reportDataForSpki(spki));
      quote[quote.length - 1]! ^= 0x01;
      return quote;
    });
    expect(checkOf(chain)).toBe("quote-signature");
  });

  it.each([
    ["signer", "otherSigner"],
    ["measurement", "tampered"],
    ["svn", "lowSvn"],
    ["debug", "debug"],
  ] as const)("%s: the policy refuses the %s enclave", async (check, enclave) => {
    expect(checkOf((await createAttestedIdentity(world[enclave])).certChainDer)).toBe(check);
  });

  it("a malformed vendor root is a BadParameter, not an attestation verdict", () => {
    expect(() =>
      verifyPeer(idA.certChainDer, world.policy, { vendorRootCertDer: "not a cert" }),
    ).toThrowError(expect.objectContaining({ code: "BadParameter" }));
  });
});

describe("evidence cache (a reconnect does not re-verify a chain already checked)", () => {
  const checkWith = (
    verify: ReturnType<typeof createPeerVerifier>,
    chain: readonly Uint8Array[],
    now: Date,
  ) => {
    try {
      verify(chain, now);
      return "accepted";
    } catch (e) {
      if (isHsmPoolError(e, "AttestationFailed")) return String(e.details?.check);
      throw e;
    }
  };

  it("a cached chain is still refused once any certificate of it has expired, and before it is valid", () => {
    const verify = createPeerVerifier(world.policy, root);
    const inside = new Date(idA.notAfter.getTime() - 60_000);
    const first = verify(idA.certChainDer, inside);
    expect(verify(idA.certChainDer, inside)).toEqual(first);
    expect(checkWith(verify, idA.certChainDer, new Date(idA.notAfter.getTime() + 1000))).toBe("validity");
    expect(checkWith(verify, idA.certChainDer, new Date(idA.notBefore.getTime() - 1000))).toBe("validity");
    expect(checkWith(verify, idA.certChainDer, inside)).toBe("accepted");
  });

  it("a chain admitted (and cached) under one policy is refused under a stricter one (revoked measurement, raised SVN floor)", () => {
    const now = new Date(idA.notAfter.getTime() - 60_000);
    expect(checkWith(createPeerVerifier(world.policy, root), idA.certChainDer, now)).toBe("accepted");
    const revoked = { ...world.policy, allowedMeasurements: ["00".repeat(32)] };
    expect(checkWith(createPeerVerifier(revoked, root), idA.certChainDer, now)).toBe("measurement");
    const floor = {
      ...world.policy,
      allowedSigners: world.policy.allowedSigners.map((r) => ({ ...r, minSvn: GOOD_FIELDS.svn + 1 })),
    };
    expect(checkWith(createPeerVerifier(floor, root), idA.certChainDer, now)).toBe("svn");
    // The original policy still admits it (its own cache, untouched by the others).
    expect(checkWith(createPeerVerifier(world.policy, root), idA.certChainDer, now)).toBe("accepted");
  });

  it("a policy edited in place after a verifier was made keys a new verifier: the revoked measurement is refused", () => {
    const now = new Date(idA.notAfter.getTime() - 60_000);
    const policy = { ...world.policy, allowedMeasurements: [...(world.policy.allowedMeasurements ?? [])] };
    expect(checkWith(createPeerVerifier(policy, root), idA.certChainDer, now)).toBe("accepted");
    policy.allowedMeasurements = ["11".repeat(32)];
    expect(checkWith(createPeerVerifier(policy, root), idA.certChainDer, now)).toBe("measurement");
  });

  it("a chain admitted under one vendor root is refused under another, whichever form the roots come in", async () => {
    const now = new Date(idA.notAfter.getTime() - 60_000);
    const other = await buildWorld();
    expect(checkWith(createPeerVerifier(world.policy, root), idA.certChainDer, now)).toBe("accepted");
    expect(
      checkWith(createPeerVerifier(world.policy, world.fabric.vendorRootCertPem), idA.certChainDer, now),
    ).toBe("accepted");
    for (const otherRoot of [other.fabric.vendorRootCertDer, other.fabric.vendorRootCertPem]) {
      expect(checkWith(createPeerVerifier(world.policy, otherRoot), idA.certChainDer, now)).toBe("chain");
    }
  });

  it("any corrupted byte of a cached chain is checked in full and refused", () => {
    const verify = createPeerVerifier(world.policy, root);
    const now = new Date(idA.notAfter.getTime() - 60_000);
    expect(checkWith(verify, idA.certChainDer, now)).toBe("accepted");
    const leaf = idA.certChainDer[0]!;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: leaf.length - 1 }), fc.integer({ min: 1, max: 255 }), (i, x) => {
        const bad = Uint8Array.from(leaf);
        bad[i] = (bad[i] ?? 0) ^ x;
        expect(checkWith(verify, [bad, ...idA.certChainDer.slice(1)], now)).not.toBe("accepted");
      }),
      { numRuns: 50 },
    );
  });
});

describe("verifyPeer properties", () => {
  it("any single corrupted byte of the leaf certificate is refused with AttestationFailed", () => {
    const leaf = idA.certChainDer[0]!;
    fc.assert(
      fc.property(fc.nat(leaf.length - 1), fc.integer({ min: 1, max: 255 }), (index, xor) => {
        const bad = new Uint8Array(leaf);
        bad[index]! ^= xor;
        expect(checkOf([bad, idA.certChainDer[1]!])).not.toBe("accepted");
      }),
      { numRuns: 300 },
    );
  });

  it("any single corrupted byte of a bound quote is refused, even in a genuinely issued certificate", async () => {
    const issuer = await world.goodA.quotingIssuer();
    const good = quoteOfCert(idA.certChainDer[0]!);
    const spkiDer = new Uint8Array(
      new X509Certificate(Buffer.from(idA.certChainDer[0]!)).publicKey.export({
        type: "spki",
        format: "der",
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 }), async (index, xor) => {
        const quote = new Uint8Array(good);
        quote[index]! ^= xor;
        const leaf = await issueAttestedLeaf({
          issuer,
          spkiDer,
          quote,
          commonName: "corrupted quote",
          notBefore: new Date(Date.now() - 60_000),
          notAfter: new Date(Date.now() + 60_000),
        });
        expect(checkOf([leaf, ...issuer.chainDer])).not.toBe("accepted");
      }),
      { numRuns: 60 },
    );
  });
});
