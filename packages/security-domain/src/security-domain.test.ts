import { generateKeyPairSync, randomBytes } from "node:crypto";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { type CustomerKeyPair, createCustomerKeyPair } from "./customer-keys.js";
import {
  createSecurityDomain,
  openPayload,
  parseSecurityDomain,
  type SecurityDomainFile,
} from "./document.js";
import { backupDomainId, deriveDomainKeys, openBackup, sealBackup } from "./domain-keys.js";
import { decodePayload, encodePayload } from "./payload.js";
import { openUpload, recoverDomainKey, restoreBlob } from "./recovery.js";

const secret = randomBytes(32);
const escrow = randomBytes(120);
let customers: CustomerKeyPair[];
let sd: SecurityDomainFile;
let sdText: string;
const exchange = generateKeyPairSync("rsa", { modulusLength: 2048 });
const exchangePem = exchange.publicKey.export({ type: "spki", format: "pem" }).toString();
const keys = deriveDomainKeys(secret);
const initialBackup = sealBackup(keys, Buffer.from("initial state"));

function payload(): Buffer {
  return encodePayload({ secret, escrowedKeys: { dek: escrow }, bindings: { tenant: "t1" }, initialBackup });
}

beforeAll(async () => {
  customers = await Promise.all(["a", "b", "c", "d"].map((n) => createCustomerKeyPair(`sd-officer-${n}`)));
  sd = await createSecurityDomain({
    sdId: keys.sdId,
    poolId: "pool-1",
    createdAt: "2026-12-07T00:00:00.000Z",
    certificates: customers.slice(0, 3).map((c) => c.certificatePem),
    quorum: 2,
    payload: payload(),
  });
  sdText = JSON.stringify(sd);
}, 60_000);

const priv = (i: number) => customers[i]?.privateKeyPem as string;

/** Every encoding a scanner should catch a secret in. */
function spellings(bytes: Uint8Array): string[] {
  const b = Buffer.from(bytes);
  return [b.toString("hex"), b.toString("base64"), b.toString("base64url"), b.toString("latin1")];
}

describe("security domain file", () => {
  it("round-trips: a quorum of private keys opens the payload it was made with", async () => {
    const parsed = parseSecurityDomain(sdText);
    expect(parsed.shares.map((s) => s.alg)).toEqual(["RSA-OAEP-256", "RSA-OAEP-256", "RSA-OAEP-256"]);
    const k = await recoverDomainKey(parsed, [priv(0), priv(2)]);
    const p = decodePayload(openPayload(parsed, k));
    expect(Buffer.from(p.secret).equals(secret)).toBe(true);
    expect(Buffer.from(p.escrowedKeys.dek as Uint8Array).equals(escrow)).toBe(true);
    expect(p.bindings).toEqual({ tenant: "t1" });
  });

  it("holds none of its secrets, raw, hex or base64", () => {
    for (const s of [secret, escrow, keys.backupKey, keys.escrowKey])
      for (const spelled of spellings(s)) expect(sdText.includes(spelled)).toBe(false);
    expect(sdText).not.toMatch(/PRIVATE KEY|"(d|k)"\s*:/);
  });

  it("labels each share with its certificate's thumbprint", () => {
    expect(new Set(sd.shares.map((s) => s["x5t#S256"])).size).toBe(3);
    for (const s of sd.shares) expect(s["x5t#S256"]).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("refuses fewer shares than the quorum and says how many are needed", async () => {
    await expect(recoverDomainKey(sd, [priv(1)])).rejects.toThrow(/needs 2 of its 3 shares; 1 given/);
    await expect(recoverDomainKey(sd, [priv(1), priv(1)])).rejects.toThrow(
      /needs 2 of its 3 shares; 1 given/,
    );
  });

  it("refuses a key of another security domain", async () => {
    await expect(recoverDomainKey(sd, [priv(0), priv(3)])).rejects.toThrow(/holds no share/);
  });

  it("refuses shares from another security domain under the same keys", async () => {
    const other = await createSecurityDomain({
      sdId: sd.sdId,
      poolId: sd.poolId,
      createdAt: sd.createdAt,
      certificates: customers.slice(0, 3).map((c) => c.certificatePem),
      quorum: 2,
      payload: payload(),
    });
    const mixed = { ...sd, shares: [other.shares[0], sd.shares[1], sd.shares[2]] };
    await expect(recoverDomainKey(parseSecurityDomain(mixed), [priv(0), priv(1)])).rejects.toThrow(
      /does not open/,
    );
  });

  it("refuses 2 or 11 certificates, a quorum out of range, and RSA below 2048 bits", async () => {
    const certs = customers.map((c) => c.certificatePem);
    const base = { sdId: "x", poolId: "p", createdAt: "t", payload: Buffer.from("p") };
    await expect(
      createSecurityDomain({ ...base, certificates: certs.slice(0, 2), quorum: 2 }),
    ).rejects.toThrow(/3 to 10 RSA certificates, not 2/);
    await expect(
      createSecurityDomain({ ...base, certificates: certs.slice(0, 3), quorum: 4 }),
    ).rejects.toThrow(/quorum/);
    const small = await createCustomerKeyPair("small", 1024);
    await expect(
      createSecurityDomain({
        ...base,
        certificates: [...certs.slice(0, 2), small.certificatePem],
        quorum: 2,
      }),
    ).rejects.toThrow(/RSA-1024/);
  });

  it("refuses the file with any byte flipped", async () => {
    const bytes = Buffer.from(sdText);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: bytes.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        async (at, x) => {
          const flipped = Buffer.from(bytes);
          flipped[at] = (flipped[at] as number) ^ x;
          await expect(
            (async () =>
              openPayload(
                parseSecurityDomain(flipped.toString("latin1")),
                await recoverDomainKey(parseSecurityDomain(flipped.toString("latin1")), [priv(0), priv(1)]),
              ))(),
          ).rejects.toThrow();
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("upload blob (disaster recovery)", () => {
  it("re-wraps the domain key to the exchange key; the TEE opens the same payload", async () => {
    const blob = await restoreBlob({
      securityDomain: sdText,
      privateKeys: [priv(1), priv(2)],
      exchangeKey: exchangePem,
    });
    const text = JSON.stringify(blob);
    for (const s of [secret, escrow, keys.backupKey])
      for (const spelled of spellings(s)) expect(text.includes(spelled)).toBe(false);
    const opened = openUpload(text, exchange.privateKey);
    expect(opened.sdId).toBe(sd.sdId);
    expect(Buffer.from(decodePayload(opened.payload).secret).equals(secret)).toBe(true);
  });

  it("refuses a blob for another exchange key, and any flipped byte", async () => {
    const blob = JSON.stringify(
      await restoreBlob({ securityDomain: sd, privateKeys: [priv(0), priv(1)], exchangeKey: exchangePem }),
    );
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
    expect(() => openUpload(blob, other.privateKey)).toThrow(/another exchange key/);
    const bytes = Buffer.from(blob);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: bytes.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (at, x) => {
          const flipped = Buffer.from(bytes);
          flipped[at] = (flipped[at] as number) ^ x;
          expect(() => openUpload(flipped.toString("latin1"), exchange.privateKey)).toThrow();
        },
      ),
      { numRuns: 300 },
    );
  });

  it("refuses too few shares before anything is wrapped", async () => {
    await expect(
      restoreBlob({ securityDomain: sd, privateKeys: [priv(0)], exchangeKey: exchangePem }),
    ).rejects.toThrow(/needs 2/);
  });
});

describe("SD-bound backups", () => {
  it("open only under the same security domain, and refuse any flipped byte", () => {
    const blob = sealBackup(keys, Buffer.from("state"));
    expect(openBackup(keys, blob).toString()).toBe("state");
    expect(backupDomainId(blob)).toBe(keys.sdId);
    expect(() => openBackup(deriveDomainKeys(randomBytes(32)), blob)).toThrow(/another security domain/);
    for (let at = 0; at < blob.length; at++) {
      const flipped = Buffer.from(blob);
      flipped[at] = (flipped[at] as number) ^ 0x01;
      expect(() => openBackup(keys, flipped)).toThrow();
    }
  });
});
