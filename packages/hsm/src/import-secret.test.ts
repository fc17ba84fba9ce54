/**
 * importSecretKey: raw AES bytes enter a partition under a chosen id, so a key exported
 * wrapped under them on one device imports on another (the security domain's escrow).
 */
import { randomBytes } from "node:crypto";
import { afterAll, expect, test } from "vitest";
import { deviceWithSession, removeTempDirs } from "./testing/fixtures.js";

afterAll(removeTempDirs);

const ESCROW_ID = "5d41402abc4b2a76b9719d911017c592";

test("a key wrapped under imported AES bytes imports on another device with the same id and public key", async () => {
  const a = await deviceWithSession(1, 0);
  const b = await deviceWithSession(1, 0);
  const bytes = randomBytes(32);
  const spec = { kty: "oct", size: 256, ops: ["wrapKey", "unwrapKey"] } as const;
  const escrowA = await a.session.importSecretKey(ESCROW_ID, spec, bytes);
  const owner = await a.session.generateKey({ kty: "EC", crv: "P-384", ops: ["sign", "verify"] });
  const blob = await a.session.exportWrapped(owner, escrowA);
  await b.session.importSecretKey(ESCROW_ID, spec, bytes);
  const imported = await b.session.importWrapped(blob, ESCROW_ID);
  expect(imported.id).toBe(owner.id);
  expect(await b.session.getPublicJwk(imported)).toEqual(await a.session.getPublicJwk(owner));
  // Other bytes under the same id cannot open the blob.
  const c = await deviceWithSession(1, 0);
  await c.session.importSecretKey(ESCROW_ID, spec, randomBytes(32));
  await expect(c.session.importWrapped(blob, ESCROW_ID)).rejects.toMatchObject({ code: "IntegrityError" });
});

test("refuses non-AES specs and material of the wrong length", async () => {
  const a = await deviceWithSession(1, 0);
  await expect(
    a.session.importSecretKey(
      "00000000000000000000000000000001",
      { kty: "oct", size: 256, ops: ["wrapKey"] },
      randomBytes(16),
    ),
  ).rejects.toThrow(/32 bytes/);
  await expect(
    a.session.importSecretKey(
      "00000000000000000000000000000002",
      { kty: "EC", crv: "P-256", ops: ["sign"] },
      randomBytes(32),
    ),
  ).rejects.toThrow(/AES/);
});
