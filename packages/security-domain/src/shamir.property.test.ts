import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { combineShares, splitSecret } from "./shamir.js";

describe("Shamir shares of a 32-byte key", () => {
  it("any quorum-sized subset recovers the secret; any smaller subset does not", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 3, max: 10 }).chain((n) =>
          fc.record({
            n: fc.constant(n),
            quorum: fc.integer({ min: 2, max: n }),
            order: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
            secret: fc.uint8Array({ minLength: 32, maxLength: 32 }),
          }),
        ),
        async ({ n, quorum, order, secret }) => {
          const shares = await splitSecret(secret, n, quorum);
          const enough = order.slice(0, quorum).map((i) => shares[i] as Uint8Array);
          expect(Buffer.from(await combineShares(enough)).equals(Buffer.from(secret))).toBe(true);
          const tooFew = order.slice(0, quorum - 1).map((i) => shares[i] as Uint8Array);
          if (tooFew.length < 2) await expect(combineShares(tooFew)).rejects.toThrow(/at least 2 shares/);
          else expect(Buffer.from(await combineShares(tooFew)).equals(Buffer.from(secret))).toBe(false);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("refuses share counts and quorums outside the security domain's limits", async () => {
    const s = randomBytes(32);
    await expect(splitSecret(s, 2, 2)).rejects.toThrow(/3 to 10 shares/);
    await expect(splitSecret(s, 11, 2)).rejects.toThrow(/3 to 10 shares/);
    await expect(splitSecret(s, 3, 1)).rejects.toThrow(/quorum/);
    await expect(splitSecret(s, 3, 4)).rejects.toThrow(/quorum/);
  });
});
