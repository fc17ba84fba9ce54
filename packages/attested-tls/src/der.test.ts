/** The minimal DER extension reader, checked against @peculiar/x509 and against hostile bytes. */
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { DerError, encodeOid, findExtension } from "./der.js";
import { RA_TLS_QUOTE_OID } from "./quote-binding.js";

const cryptoProvider = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];
const EC = { name: "ECDSA", namedCurve: "P-256" } as const;
let keys: webcrypto.CryptoKeyPair;

beforeAll(async () => {
  keys = (await webcrypto.subtle.generateKey(EC, false, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
});

async function certWith(extensions: x509.Extension[]): Promise<Uint8Array> {
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    { name: "CN=der test", keys, signingAlgorithm: { name: "ECDSA", hash: "SHA-256" }, extensions },
    cryptoProvider,
  );
  return new Uint8Array(cert.rawData);
}

const oidArb = fc
  .tuple(
    fc.integer({ min: 0, max: 2 }),
    fc.integer({ min: 0, max: 39 }),
    fc.array(fc.nat(), { maxLength: 8 }),
  )
  .map(([a, b, rest]) => [a, b, ...rest].join("."));

describe("encodeOid", () => {
  it("matches the DER of well-known OIDs", () => {
    expect(Buffer.from(encodeOid("2.5.29.19")).toString("hex")).toBe("551d13");
    expect(Buffer.from(encodeOid("1.2.840.10045.2.1")).toString("hex")).toBe("2a8648ce3d0201");
  });
});

describe("findExtension", () => {
  it("finds exactly what @peculiar/x509 finds, for any extension value and criticality", async () => {
    await fc.assert(
      fc.asyncProperty(
        oidArb,
        fc.boolean(),
        fc.uint8Array({ maxLength: 2000 }),
        fc.boolean(),
        async (oid, critical, value, withBasicConstraints) => {
          fc.pre(oid !== "2.5.29.19");
          const exts = [new x509.Extension(oid, critical, value)];
          if (withBasicConstraints) exts.unshift(new x509.BasicConstraintsExtension(false));
          const der = await certWith(exts);
          const theirs = new x509.X509Certificate(der).getExtension(oid)!;
          const ours = findExtension(der, encodeOid(oid));
          expect(ours).not.toBeNull();
          expect(ours!.critical).toBe(theirs.critical);
          expect(Buffer.compare(ours!.value, Buffer.from(theirs.value))).toBe(0);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("returns null for a certificate without the extension", async () => {
    const der = await certWith([new x509.BasicConstraintsExtension(false)]);
    expect(findExtension(der, encodeOid(RA_TLS_QUOTE_OID))).toBeNull();
  });

  it("only ever returns or throws DerError on truncated or corrupted certificates", async () => {
    const der = await certWith([new x509.Extension(RA_TLS_QUOTE_OID, false, new Uint8Array(300).fill(9))]);
    fc.assert(
      fc.property(fc.nat(der.length), fc.nat(der.length - 1), fc.nat(255), (cut, index, byte) => {
        const bad = new Uint8Array(der.subarray(0, cut));
        if (index < bad.length) bad[index] = byte;
        try {
          const ext = findExtension(bad, encodeOid(RA_TLS_QUOTE_OID));
          if (ext) expect(ext.value.length).toBeLessThanOrEqual(bad.length);
        } catch (e) {
          expect(e).toBeInstanceOf(DerError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
