/**
 * The unmodified Azure SDK (@azure/keyvault-keys KeyClient + CryptographyClient) against
 * a real pool through `hsmpool endpoint`'s URL, with the pool's own TokenCredential
 * (hsmpoolCredential) and the fabric CA as its TLS trust. Every result is checked with
 * node:crypto where it can be (signatures over the original message, ciphertexts made
 * locally from the public JWK). Last, a kill of the primary while the SDK keeps working:
 * no error may surface to the application.
 */
import {
  constants,
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  publicEncrypt,
  randomBytes,
  verify as verifyLocally,
} from "node:crypto";
import { CryptographyClient, KeyClient, type KeyClientOptions, type KeyVaultKey } from "@azure/keyvault-keys";
import { hsmpoolCredential, type TokenCredential } from "@hsmpool/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cli,
  type PoolDirs,
  removeDirs,
  startPoolWithEndpoint,
  stopEverything,
  waitFor,
} from "./support/pool-harness.js";

let dirs: PoolDirs;
let client: KeyClient;
let credential: TokenCredential;
let options: KeyClientOptions;

/** The SDK's public key bytes as a node:crypto key. */
function publicKeyOf(key: KeyVaultKey) {
  const jwk = key.key ?? {};
  const b64 = (b: Uint8Array | undefined) => Buffer.from(b ?? new Uint8Array()).toString("base64url");
  const plain: JsonWebKey =
    jwk.kty?.startsWith("EC") === true
      ? { kty: "EC", crv: jwk.crv === "P-256K" ? "secp256k1" : jwk.crv, x: b64(jwk.x), y: b64(jwk.y) }
      : { kty: "RSA", n: b64(jwk.n), e: b64(jwk.e) };
  return createPublicKey({ key: plain, format: "jwk" });
}

const crypto = (key: KeyVaultKey) => new CryptographyClient(key, credential, options);
const digest = (hash: string, message: Buffer) => createHash(hash).update(message).digest();

beforeAll(async () => {
  const pool = await startPoolWithEndpoint("hsmpool-e2e-sdk-");
  dirs = pool.dirs;
  const { endpoint, tenantDir: tenant } = pool;
  credential = hsmpoolCredential({ as: "admin", tenant });
  // The fabric CA as the SDK's TLS trust (same effect as NODE_EXTRA_CA_CERTS=<caFile>); the challenge's
  // resource is the pool's URI, not the 127.0.0.1 URL, hence disableChallengeResourceVerification.
  options = {
    disableChallengeResourceVerification: true,
    tlsOptions: { ca: pool.ca },
  };
  client = new KeyClient(endpoint.url, credential, options);
}, 200_000);

afterAll(async () => {
  if (dirs) {
    await stopEverything(dirs);
    await removeDirs(dirs);
  }
}, 120_000);

describe("the unmodified Azure SDK against the pool", () => {
  it("creates EC, RSA and AES keys and reads them back by name, by version and in lists", async () => {
    const ec = await client.createEcKey("sdk-ec", { curve: "P-256" });
    expect(ec.keyType).toBe("EC-HSM");
    expect(ec.key?.crv).toBe("P-256");
    expect(ec.id).toMatch(/\/keys\/sdk-ec\/[^/]+$/);
    const ec384 = await client.createEcKey("sdk-ec384", { curve: "P-384", keyOps: ["sign", "verify"] });
    expect(ec384.keyOperations).toEqual(["sign", "verify"]);
    const rsa = await client.createRsaKey("sdk-rsa", { keySize: 2048, tags: { purpose: "sdk test" } });
    expect(rsa.keyType).toBe("RSA-HSM");
    expect(rsa.properties.tags).toEqual({ purpose: "sdk test" });
    const aes = await client.createOctKey("sdk-aes", { keySize: 256 });
    expect(aes.keyType).toBe("oct-HSM");

    const got = await client.getKey("sdk-rsa");
    expect(Buffer.from(got.key?.n ?? [])).toEqual(Buffer.from(rsa.key?.n ?? []));
    const byVersion = await client.getKey("sdk-ec", { version: ec.properties.version });
    expect(byVersion.id).toBe(ec.id);
    const names: string[] = [];
    for await (const p of client.listPropertiesOfKeys()) names.push(p.name);
    expect(names).toEqual(expect.arrayContaining(["sdk-ec", "sdk-ec384", "sdk-rsa", "sdk-aes"]));
    const versions: string[] = [];
    for await (const p of client.listPropertiesOfKeyVersions("sdk-ec")) versions.push(p.version ?? "");
    expect(versions).toEqual([ec.properties.version]);
  });

  it("lists page by page with maxresults/nextLink (31 keys in pages of at most 10)", async () => {
    for (let i = 0; i < 27; i++) await client.createEcKey(`page-${String(i).padStart(2, "0")}`);
    const pages: number[] = [];
    for await (const page of client.listPropertiesOfKeys().byPage({ maxPageSize: 10 }))
      pages.push(page.length);
    expect(pages.every((n) => n <= 10)).toBe(true);
    expect(pages.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(31);
  }, 120_000);

  it("signs the digest it is given: ES256, ES384, RS256 and PS256 signatures verify locally over the message", async () => {
    const message = randomBytes(100);
    for (const [name, alg, hash] of [
      ["sdk-ec", "ES256", "sha256"],
      ["sdk-ec384", "ES384", "sha384"],
      ["sdk-rsa", "RS256", "sha256"],
      ["sdk-rsa", "PS256", "sha256"],
    ] as const) {
      const key = await client.getKey(name);
      const signed = await crypto(key).sign(alg, digest(hash, message));
      const local = alg.startsWith("ES")
        ? { key: publicKeyOf(key), dsaEncoding: "ieee-p1363" as const }
        : alg.startsWith("PS")
          ? {
              key: publicKeyOf(key),
              padding: constants.RSA_PKCS1_PSS_PADDING,
              saltLength: constants.RSA_PSS_SALTLEN_AUTO,
            }
          : { key: publicKeyOf(key) };
      expect(verifyLocally(hash, message, local, Buffer.from(signed.result)), `${alg} over the message`).toBe(
        true,
      );
      expect((await crypto(key).verify(alg, digest(hash, message), signed.result)).result).toBe(true);
      expect((await crypto(key).verify(alg, digest(hash, randomBytes(8)), signed.result)).result).toBe(false);
    }
  });

  it("decrypts and unwraps what node:crypto encrypted with the public key, and round-trips AES-GCM and AES-KW", async () => {
    const rsa = await client.getKey("sdk-rsa");
    const secret = randomBytes(32);
    for (const [alg, oaepHash] of [
      ["RSA-OAEP", "sha1"],
      ["RSA-OAEP-256", "sha256"],
    ] as const) {
      const local = publicEncrypt(
        { key: publicKeyOf(rsa), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash },
        secret,
      );
      expect(Buffer.from((await crypto(rsa).decrypt({ algorithm: alg, ciphertext: local })).result)).toEqual(
        secret,
      );
      expect(Buffer.from((await crypto(rsa).unwrapKey(alg, local)).result)).toEqual(secret);
    }
    const aes = await client.getKey("sdk-aes");
    const plaintext = randomBytes(48);
    const additionalAuthenticatedData = randomBytes(12);
    const gcm = await crypto(aes).encrypt({ algorithm: "A256GCM", plaintext, additionalAuthenticatedData });
    expect(gcm.iv?.length).toBe(12);
    const back = await crypto(aes).decrypt({
      algorithm: "A256GCM",
      ciphertext: gcm.result,
      iv: gcm.iv as Uint8Array,
      authenticationTag: gcm.authenticationTag as Uint8Array,
      additionalAuthenticatedData,
    });
    expect(Buffer.from(back.result)).toEqual(plaintext);
    const wrapped = await crypto(aes).wrapKey("A256KW", secret);
    expect(wrapped.result.length).toBe(40);
    expect(Buffer.from((await crypto(aes).unwrapKey("A256KW", wrapped.result)).result)).toEqual(secret);
  });

  it("surfaces the service's errors: KeyNotFound 404, BadParameter 400 for a key type the SDK did not check", async () => {
    await expect(client.getKey("no-such-key")).rejects.toMatchObject({
      statusCode: 404,
      code: "KeyNotFound",
    });
    await expect(client.createKey("bad-size", "RSA", { keySize: 1234 })).rejects.toMatchObject({
      statusCode: 400,
      code: "BadParameter",
    });
    const ec = await client.getKey("sdk-ec");
    await expect(crypto(ec).sign("ES384", digest("sha384", randomBytes(8)))).rejects.toMatchObject({
      statusCode: 400,
      code: "BadParameter",
    });
  });

  it("soft-deletes with the SDK's poller, lists and recovers the deleted key, then purges it for good", async () => {
    const created = await client.createEcKey("sdk-ec384-2", { curve: "P-384" });
    const deleted = await (await client.beginDeleteKey("sdk-ec384-2")).pollUntilDone();
    expect(deleted.name).toBe("sdk-ec384-2");
    expect(deleted.properties.recoveryId).toMatch(/\/deletedkeys\/sdk-ec384-2$/);
    await expect(client.getKey("sdk-ec384-2")).rejects.toMatchObject({
      statusCode: 404,
      code: "KeyNotFound",
    });
    const gone = await client.getDeletedKey("sdk-ec384-2");
    expect(gone.properties.scheduledPurgeDate?.getTime()).toBeGreaterThan(
      gone.properties.deletedOn?.getTime() ?? 0,
    );
    const listed: string[] = [];
    for await (const d of client.listDeletedKeys()) listed.push(d.name);
    expect(listed).toContain("sdk-ec384-2");
    const recovered = await (await client.beginRecoverDeletedKey("sdk-ec384-2")).pollUntilDone();
    expect(recovered.id).toBe(created.id);
    expect((await client.getKey("sdk-ec384-2")).key?.x).toEqual(created.key?.x);

    await (await client.beginDeleteKey("sdk-ec384")).pollUntilDone();
    await client.purgeDeletedKey("sdk-ec384");
    await expect(client.getDeletedKey("sdk-ec384")).rejects.toMatchObject({ statusCode: 404 });
    await expect(client.getKey("sdk-ec384")).rejects.toMatchObject({ statusCode: 404, code: "KeyNotFound" });
  }, 120_000);

  it("updates properties, rotates (by hand and by policy round trip) and returns random bytes", async () => {
    const before = await client.createRsaKey("sdk-life", { keySize: 2048 });
    const updated = await client.updateKeyProperties("sdk-life", before.properties.version ?? "", {
      enabled: false,
      tags: { stage: "updated" },
    });
    expect(updated.properties.enabled).toBe(false);
    expect(updated.properties.tags).toEqual({ stage: "updated" });
    const rotated = await client.rotateKey("sdk-life");
    expect(rotated.properties.version).not.toBe(before.properties.version);
    expect(Buffer.from(rotated.key?.n ?? [])).not.toEqual(Buffer.from(before.key?.n ?? []));
    const versions: string[] = [];
    for await (const p of client.listPropertiesOfKeyVersions("sdk-life")) versions.push(p.version ?? "");
    expect(versions.sort()).toEqual([before.properties.version, rotated.properties.version].sort());

    await client.updateKeyRotationPolicy("sdk-life", {
      lifetimeActions: [{ action: "Rotate", timeAfterCreate: "P90D" }],
      expiresIn: "P2Y",
    });
    const policy = await client.getKeyRotationPolicy("sdk-life");
    expect(policy.expiresIn).toBe("P2Y");
    expect(policy.lifetimeActions).toEqual([
      expect.objectContaining({ action: "Rotate", timeAfterCreate: "P90D" }),
    ]);
    await expect(
      client.updateKeyRotationPolicy("sdk-life", {
        lifetimeActions: [{ action: "Rotate", timeAfterCreate: "nonsense" }],
      }),
    ).rejects.toMatchObject({ statusCode: 400 });

    const a = await client.getRandomBytes(32);
    const b = await client.getRandomBytes(32);
    expect(a).toHaveLength(32);
    expect(Buffer.from(a)).not.toEqual(Buffer.from(b));
    await expect(client.getRandomBytes(129)).rejects.toMatchObject({ statusCode: 400 });
  }, 120_000);

  it("backs a key up and restores it after a purge (same public key, still signs); imports a JWK", async () => {
    const original = await client.createEcKey("sdk-backup", { curve: "P-256" });
    const blob = await client.backupKey("sdk-backup");
    expect(blob?.length).toBeGreaterThan(0);
    await (await client.beginDeleteKey("sdk-backup")).pollUntilDone();
    await client.purgeDeletedKey("sdk-backup");
    const restored = await client.restoreKeyBackup(blob as Uint8Array);
    expect(restored.id).toBe(original.id);
    const message = randomBytes(48);
    const signed = await crypto(restored).sign("ES256", digest("sha256", message));
    const signature = Buffer.from(signed.result);
    expect(
      verifyLocally("sha256", message, { key: publicKeyOf(original), dsaEncoding: "ieee-p1363" }, signature),
    ).toBe(true);

    const local = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwk = local.privateKey.export({ format: "jwk" });
    const bytes = (v: string | undefined) => Buffer.from(v ?? "", "base64url");
    const imported = await client.importKey("sdk-imported", {
      kty: "EC",
      crv: "P-256",
      x: bytes(jwk.x),
      y: bytes(jwk.y),
      d: bytes(jwk.d),
      keyOps: ["sign", "verify"],
    });
    expect(Buffer.from(imported.key?.x ?? [])).toEqual(bytes(jwk.x));
    expect(imported.key?.d).toBeUndefined();
    const byImported = await crypto(imported).sign("ES256", digest("sha256", message));
    expect(
      verifyLocally(
        "sha256",
        message,
        { key: local.publicKey, dsaEncoding: "ieee-p1363" },
        Buffer.from(byImported.result),
      ),
    ).toBe(true);
  }, 120_000);

  it("keeps working through a kill of the primary: creates, reads and signatures succeed, no error surfaces", async () => {
    const rsa = await client.getKey("sdk-rsa");
    const errors: unknown[] = [];
    let done = 0;
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop && i < 200; i++) {
        try {
          const message = randomBytes(32);
          if (i % 3 === 0) await client.createEcKey(`failover-${w}-${i}`);
          else if (i % 3 === 1) expect((await client.getKey("sdk-rsa")).name).toBe("sdk-rsa");
          else {
            const signed = await crypto(rsa).sign("RS256", digest("sha256", message));
            expect(verifyLocally("sha256", message, publicKeyOf(rsa), Buffer.from(signed.result))).toBe(true);
          }
          done++;
        } catch (e) {
          errors.push(e);
        }
      }
    };
    const workers = [0, 1, 2].map(worker);
    await waitFor("some SDK calls before the kill", () => (done >= 6 ? true : undefined), 60_000);
    const before = done;
    expect((await cli(["kill", "primary", "--run-dir", dirs.runDir])).code).toBe(0);
    await waitFor("SDK calls after the kill", () => (done >= before + 15 ? true : undefined), 120_000, 200);
    stop = true;
    await Promise.all(workers);
    expect(errors.map(String)).toEqual([]);
  }, 240_000);
});
