import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWorld, caughtSync, removeTempDirs } from "./test-support.js";

afterAll(removeTempDirs);

let world: Awaited<ReturnType<typeof buildWorld>>;
beforeAll(async () => {
  world = await buildWorld();
});

const secret = new TextEncoder().encode("partition credentials: hunter2");
const integrityReason = (fn: () => unknown) => {
  const e = caughtSync(fn);
  expect(e.code).toBe("IntegrityError");
  return String(e.details?.reason);
};

describe("sealing", () => {
  it("round-trips under both policies, with and without associated data", () => {
    const { app } = world.enclaves;
    for (const policy of ["mrsigner", "mrenclave"] as const) {
      expect(app.unseal(app.seal(secret, { policy }))).toEqual(secret);
      const aad = Uint8Array.of(1, 2, 3);
      expect(app.unseal(app.seal(secret, { policy, aad }), { aad })).toEqual(secret);
    }
    expect(app.unseal(app.seal(new Uint8Array(0), { policy: "mrenclave" }))).toEqual(new Uint8Array(0));
  });

  it("never puts the plaintext in the blob, and two seals of the same data differ", () => {
    const { app } = world.enclaves;
    const a = app.seal(secret, { policy: "mrenclave" });
    const b = app.seal(secret, { policy: "mrenclave" });
    expect(Buffer.from(a).includes(Buffer.from(secret))).toBe(false);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  it("a blob sealed on one server does not unseal on another, under either policy", () => {
    const { app, appOnOtherServer, appOnFabricB } = world.enclaves;
    expect(app.identity.mrenclave).toBe(appOnOtherServer.identity.mrenclave);
    for (const policy of ["mrsigner", "mrenclave"] as const) {
      const blob = app.seal(secret, { policy });
      expect(integrityReason(() => appOnOtherServer.unseal(blob))).toMatch(/authentication failed/);
      expect(integrityReason(() => appOnFabricB.unseal(blob))).toMatch(/authentication failed/);
    }
  });

  it("an MRENCLAVE blob is refused by other code of the same signer, while an MRSIGNER blob opens for it", () => {
    const { app, appNext } = world.enclaves;
    expect(appNext.identity.mrsigner).toBe(app.identity.mrsigner);
    expect(appNext.identity.mrenclave).not.toBe(app.identity.mrenclave);
    const byCode = app.seal(secret, { policy: "mrenclave" });
    expect(integrityReason(() => appNext.unseal(byCode))).toMatch(/authentication failed/);
    const bySigner = app.seal(secret, { policy: "mrsigner" });
    expect(appNext.unseal(bySigner)).toEqual(secret);
  });

  it("an MRSIGNER blob is refused by an older SVN, another product or another signer", () => {
    const { app, appOld, otherProduct, foreign } = world.enclaves;
    const blob = app.seal(secret, { policy: "mrsigner" });
    expect(integrityReason(() => appOld.unseal(blob))).toMatch(/SVN 2, above this enclave's SVN 1/);
    expect(integrityReason(() => otherProduct.unseal(blob))).toMatch(/authentication failed/);
    expect(integrityReason(() => foreign.unseal(blob))).toMatch(/authentication failed/);
    expect(app.unseal(appOld.seal(secret, { policy: "mrsigner" }))).toEqual(secret);
  });

  it("refuses other associated data", () => {
    const { app } = world.enclaves;
    const blob = app.seal(secret, { policy: "mrenclave", aad: Uint8Array.of(1) });
    expect(integrityReason(() => app.unseal(blob, { aad: Uint8Array.of(2) }))).toMatch(
      /authentication failed/,
    );
    expect(integrityReason(() => app.unseal(blob))).toMatch(/authentication failed/);
  });

  it("rejects an unknown policy with BadParameter", () => {
    const e = caughtSync(() => world.enclaves.app.seal(secret, { policy: "mrsomething" as "mrsigner" }));
    expect(e.code).toBe("BadParameter");
  });

  it("property: any flipped byte or truncation of a sealed blob is an IntegrityError", () => {
    const { app } = world.enclaves;
    for (const policy of ["mrsigner", "mrenclave"] as const) {
      const blob = app.seal(secret, { policy });
      fc.assert(
        fc.property(fc.nat(blob.length - 1), fc.integer({ min: 0, max: 255 }), (at, mask) => {
          const bad = mask === 0 ? blob.slice(0, at) : blob.slice();
          if (mask !== 0) bad[at]! ^= mask;
          integrityReason(() => app.unseal(bad));
        }),
        { numRuns: 500 },
      );
    }
  });
});
