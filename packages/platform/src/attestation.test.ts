import "reflect-metadata";
import { createHash, randomBytes, webcrypto, X509Certificate } from "node:crypto";
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import * as x509 from "@peculiar/x509";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadServerSecrets } from "./fabric.js";
import { decodeQuote, type Policy, verifyQuote } from "./index.js";
import { signQuote } from "./quote.js";
import { buildWorld, caughtSync, removeTempDirs } from "./test-support.js";

afterAll(removeTempDirs);

let world: Awaited<ReturnType<typeof buildWorld>>;
let policy: Policy;
const reportData = new Uint8Array(64).fill(0x5a);

beforeAll(async () => {
  world = await buildWorld();
  policy = { allowedSigners: [{ mrsigner: world.bundles.app.sigstruct.mrsigner }] };
});

const checkOf = (fn: () => unknown) => {
  const e = caughtSync(fn);
  expect(e.code).toBe("AttestationFailed");
  return e.details?.check;
};

describe("quotes and the verifier", () => {
  it("verifies a good quote and returns the enclave's identity, report data and nonce", () => {
    const nonce = randomBytes(32);
    const quote = world.enclaves.app.getQuote(reportData, { nonce });
    const id = verifyQuote(quote, world.fabricA.vendorRootCertDer, policy, {
      expectedReportData: reportData,
      nonce,
    });
    expect(id).toEqual({ ...world.enclaves.app.identity, reportData, nonce: new Uint8Array(nonce) });
    expect(id).toMatchObject({ serverId: "r1-s1", rackId: "rack-1", svn: 2, productId: 1, debug: false });
    expect(id.mrenclave).toBe(world.bundles.app.sigstruct.mrenclave);
    // PEM anchor works the same.
    expect(verifyQuote(quote, world.fabricA.vendorRootCertPem, policy).serverId).toBe("r1-s1");
  });

  it("refuses a foreign signer", () => {
    const quote = world.enclaves.foreign.getQuote(reportData);
    expect(checkOf(() => verifyQuote(quote, world.fabricA.vendorRootCertDer, policy))).toBe("signer");
  });

  it("refuses a debug enclave by default and accepts it when allowDebug", () => {
    const quote = world.enclaves.debugApp.getQuote(reportData);
    expect(checkOf(() => verifyQuote(quote, world.fabricA.vendorRootCertDer, policy))).toBe("debug");
    expect(verifyQuote(quote, world.fabricA.vendorRootCertDer, { ...policy, allowDebug: true }).debug).toBe(
      true,
    );
  });

  it("refuses an SVN below minSvn and accepts one at it", () => {
    const min3 = { allowedSigners: [{ mrsigner: policy.allowedSigners[0]!.mrsigner, minSvn: 3 }] };
    expect(
      checkOf(() =>
        verifyQuote(world.enclaves.app.getQuote(reportData), world.fabricA.vendorRootCertDer, min3),
      ),
    ).toBe("svn");
    expect(
      verifyQuote(world.enclaves.appNext.getQuote(reportData), world.fabricA.vendorRootCertDer, min3).svn,
    ).toBe(3);
  });

  it("refuses a measurement outside allowedMeasurements", () => {
    const only = { ...policy, allowedMeasurements: [world.bundles.appNext.sigstruct.mrenclave] };
    const quote = world.enclaves.app.getQuote(reportData);
    expect(checkOf(() => verifyQuote(quote, world.fabricA.vendorRootCertDer, only))).toBe("measurement");
  });

  it("refuses a quote made for other report data (another key)", () => {
    const quote = world.enclaves.app.getQuote(reportData);
    const other = new Uint8Array(64).fill(0x5b);
    expect(
      checkOf(() =>
        verifyQuote(quote, world.fabricA.vendorRootCertDer, policy, { expectedReportData: other }),
      ),
    ).toBe("reportData");
  });

  it("refuses a nonce mismatch, including a quote that carries no nonce", () => {
    const quote = world.enclaves.app.getQuote(reportData, { nonce: Uint8Array.of(1, 2, 3) });
    const opts = (nonce: Uint8Array) => ({ nonce });
    expect(
      checkOf(() =>
        verifyQuote(quote, world.fabricA.vendorRootCertDer, policy, opts(Uint8Array.of(1, 2, 4))),
      ),
    ).toBe("nonce");
    const bare = world.enclaves.app.getQuote(reportData);
    expect(
      checkOf(() => verifyQuote(bare, world.fabricA.vendorRootCertDer, policy, opts(Uint8Array.of(1)))),
    ).toBe("nonce");
  });

  it("refuses a quote from a platform whose cert another fabric's vendor root issued", () => {
    const quote = world.enclaves.appOnFabricB.getQuote(reportData);
    expect(checkOf(() => verifyQuote(quote, world.fabricA.vendorRootCertDer, policy))).toBe("chain");
    expect(verifyQuote(quote, world.fabricB.vendorRootCertDer, policy).serverId).toBe("r1-s1");
  });

  it("refuses a quote signed by another platform key but carrying this fabric's platform cert", async () => {
    const { platformKey: foreignKey } = await loadServerSecrets(world.fabricB.server("r1-s1"));
    const honest = decodeQuote(world.enclaves.app.getQuote(reportData));
    const forged = signQuote(honest, [world.fabricA.server("r1-s1").platformCertDer], foreignKey);
    expect(checkOf(() => verifyQuote(forged, world.fabricA.vendorRootCertDer, policy))).toBe("signature");
  });

  it("refuses outside the certificates' validity window (injected clock)", () => {
    const quote = world.enclaves.app.getQuote(reportData);
    const later = new Date(Date.now() + 30 * 365 * 24 * 3600 * 1000);
    expect(checkOf(() => verifyQuote(quote, world.fabricA.vendorRootCertDer, policy, { now: later }))).toBe(
      "chain",
    );
    const before = new Date(Date.now() - 24 * 3600 * 1000);
    expect(checkOf(() => verifyQuote(quote, world.fabricA.vendorRootCertDer, policy, { now: before }))).toBe(
      "chain",
    );
  });

  it("rejects wrong-size report data, oversized nonces and bad verifier inputs with BadParameter", () => {
    const e = world.enclaves.app;
    expect(caughtSync(() => e.getQuote(new Uint8Array(63))).code).toBe("BadParameter");
    expect(caughtSync(() => e.getQuote(reportData, { nonce: new Uint8Array(65) })).code).toBe("BadParameter");
    const quote = e.getQuote(reportData);
    expect(caughtSync(() => verifyQuote(quote, new Uint8Array(10), policy)).code).toBe("BadParameter");
    expect(
      caughtSync(() => verifyQuote(quote, world.fabricA.vendorRootCertDer, { allowedSigners: [] })).code,
    ).toBe("BadParameter");
    expect(
      caughtSync(() =>
        verifyQuote(quote, world.fabricA.vendorRootCertDer, policy, {
          expectedReportData: new Uint8Array(32),
        }),
      ).code,
    ).toBe("BadParameter");
  });

  it("property: any flipped byte or truncation of a quote fails with a format, chain or signature check", () => {
    const quote = world.enclaves.app.getQuote(reportData, { nonce: Uint8Array.of(9, 9) });
    const root = world.fabricA.vendorRootCertDer;
    verifyQuote(quote, root, policy);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.record({ at: fc.nat(quote.length - 1), mask: fc.integer({ min: 1, max: 255 }) }),
          fc.record({ at: fc.nat(quote.length - 1), mask: fc.constant(0) }),
        ),
        ({ at, mask }) => {
          const bad = mask === 0 ? quote.slice(0, at) : quote.slice();
          if (mask !== 0) bad[at]! ^= mask;
          expect(["format", "chain", "signature"]).toContain(checkOf(() => verifyQuote(bad, root, policy)));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe("quoting issuer (RA-TLS leaf certificates)", () => {
  async function issueLeaf() {
    const issuer = await world.enclaves.app.quotingIssuer();
    const alg = { name: "ECDSA", namedCurve: "P-256" } as const;
    const leafKeys = (await webcrypto.subtle.generateKey(alg, true, [
      "sign",
      "verify",
    ])) as webcrypto.CryptoKeyPair;
    const platform = new x509.X509Certificate(issuer.chainDer[0]!);
    const crypto = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];
    const leaf = await x509.X509CertificateGenerator.create(
      {
        serialNumber: "01",
        subject: "CN=localhost",
        issuer: platform.subject,
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 3_600_000),
        signingKey: issuer.signingKey,
        publicKey: leafKeys.publicKey,
        signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
        extensions: [
          new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "localhost" }]),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature),
        ],
      },
      crypto,
    );
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", leafKeys.privateKey));
    return { issuer, leaf, leafKeyPem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") };
  }

  it("hands out a non-extractable key whose leaf certs chain to the vendor root", async () => {
    const { issuer, leaf } = await issueLeaf();
    expect(issuer.signingKey.extractable).toBe(false);
    await expect(webcrypto.subtle.exportKey("pkcs8", issuer.signingKey)).rejects.toThrow();
    const platform = new X509Certificate(issuer.chainDer[0]!);
    const node = new X509Certificate(leaf.toString("pem"));
    expect(node.checkIssued(platform)).toBe(true);
    expect(node.verify(platform.publicKey)).toBe(true);
    expect(platform.checkIssued(new X509Certificate(world.fabricA.vendorRootCertPem))).toBe(true);
    expect(createHash("sha256").update(issuer.chainDer[0]!).digest("hex")).toBe(
      world.fabricA.info.racks[0]!.servers[0]!.platformCertFingerprint,
    );
  });

  it("passes Node's TLS chain verification with only the vendor root as CA (and fails with another fabric's root)", async () => {
    const { issuer, leaf, leafKeyPem } = await issueLeaf();
    const chainPem = leaf.toString("pem") + "\n" + new X509Certificate(issuer.chainDer[0]!).toString();
    const server = tls.createServer({ key: leafKeyPem, cert: chainPem }, (s) => s.end("ok"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const connect = (ca: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ host: "127.0.0.1", port, servername: "localhost", ca }, () => {
          socket.on("data", (d) => resolve(String(d)));
        });
        socket.on("error", reject);
      });
    try {
      expect(await connect(world.fabricA.vendorRootCertPem)).toBe("ok");
      await expect(connect(world.fabricB.vendorRootCertPem)).rejects.toThrow();
    } finally {
      server.close();
    }
  });
});
