import "reflect-metadata";
import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { inspect } from "node:util";
import { decodeQuote } from "@hsmpool/platform";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AttestedIdentity, createAttestedIdentity, tlsPrivateKeyPem } from "./attested-identity.js";
import { RA_TLS_QUOTE_OID } from "./quote-binding.js";
import { buildWorld, caught, removeTempDirs, type World } from "./test-support.js";

let world: World;
let id: AttestedIdentity;
const NOW = new Date("2030-01-02T03:04:05Z");
const VALIDITY_MS = 6 * 3600_000;

beforeAll(async () => {
  world = await buildWorld();
  id = await createAttestedIdentity(world.goodA, { now: NOW, validityMs: VALIDITY_MS });
});
afterAll(removeTempDirs);

describe("createAttestedIdentity", () => {
  it("binds the quote to the certificate key: report data = SHA-256(SPKI) || 32 zero bytes", () => {
    const leaf = new X509Certificate(Buffer.from(id.certChainDer[0]!));
    const spki = leaf.publicKey.export({ type: "spki", format: "der" });
    const quoteExt = new x509.X509Certificate(id.certChainDer[0]!).getExtension(RA_TLS_QUOTE_OID)!;
    expect(quoteExt.critical).toBe(false);
    const quote = decodeQuote(new Uint8Array(quoteExt.value));
    const expected = Buffer.concat([createHash("sha256").update(spki).digest(), Buffer.alloc(32)]);
    expect(Buffer.compare(Buffer.from(quote.reportData), expected)).toBe(0);
    expect(Buffer.from(quote.mrenclave).toString("hex")).toBe(world.goodA.identity.mrenclave);
  });

  it("issues a short-lived client+server leaf under this server's platform certificate", () => {
    const [leafDer, platformDer] = id.certChainDer;
    expect(id.certChainDer).toHaveLength(2);
    const platform = new X509Certificate(Buffer.from(platformDer!));
    expect(
      Buffer.compare(
        platform.raw,
        Buffer.from(world.fabric.server(world.goodA.identity.serverId).platformCertDer),
      ),
    ).toBe(0);
    const leaf = new X509Certificate(Buffer.from(leafDer!));
    expect(leaf.checkIssued(platform) && leaf.verify(platform.publicKey)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.keyUsage).toEqual(expect.arrayContaining(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]));
    expect(leaf.subjectAltName).toContain("IP Address:127.0.0.1");
    expect(leaf.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(id.notAfter.getTime() - NOW.getTime()).toBe(VALIDITY_MS);
    expect(new Date(leaf.validTo).getTime()).toBe(id.notAfter.getTime());
    expect(id.certFingerprint).toBe(createHash("sha256").update(leafDer!).digest("hex"));
  });

  it("keeps the private key off the identity object: not in JSON, inspect output or its keys", () => {
    const d = createPrivateKey(tlsPrivateKeyPem(id)).export({ format: "jwk" }).d!;
    for (const text of [JSON.stringify(id), inspect(id, { depth: 10, showHidden: true })]) {
      expect(text).not.toContain("PRIVATE KEY");
      expect(text).not.toContain(d);
    }
  });

  it("makes a fresh key for every identity", async () => {
    const again = await createAttestedIdentity(world.goodA, { now: NOW });
    expect(tlsPrivateKeyPem(again)).not.toBe(tlsPrivateKeyPem(id));
    expect(again.certFingerprint).not.toBe(id.certFingerprint);
  });

  it.each([
    ["zero validity", { validityMs: 0 }],
    ["a validity longer than 30 days", { validityMs: 31 * 86_400_000 }],
    ["an invalid clock", { now: new Date(Number.NaN) }],
  ])("refuses %s with BadParameter", async (_what, opts) => {
    expect((await caught(() => createAttestedIdentity(world.goodA, opts))).code).toBe("BadParameter");
  });

  it("has no TLS key for an object it did not make", async () => {
    const copy = { ...id };
    expect((await caught(() => tlsPrivateKeyPem(copy))).code).toBe("BadParameter");
  });
});
