/**
 * key-pairs.ts: generated pairs work, and nothing at runtime generates a pair any other
 * way. (That they never deadlock an export: hsm keygen-deadlock.test.ts.)
 */
import { createPublicKey, sign, verify } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { generateIsolatedKeyPair, generateIsolatedKeyPairSync } from "./key-pairs.js";

const PACKAGES = fileURLToPath(new URL("../../", import.meta.url));

describe("isolated key pairs", () => {
  test.each([
    ["P-256", { type: "ec", namedCurve: "prime256v1" }],
    ["P-384", { type: "ec", namedCurve: "secp384r1" }],
    ["RSA-2048", { type: "rsa", modulusLength: 2048 }],
  ] as const)("%s: the private key signs what its public key verifies", async (_name, spec) => {
    for (const pair of [await generateIsolatedKeyPair(spec), generateIsolatedKeyPairSync(spec)]) {
      expect(pair.privateKey.type).toBe("private");
      expect(pair.publicKey.type).toBe("public");
      const data = Buffer.from("isolated");
      const sig = sign("sha256", data, pair.privateKey);
      expect(verify("sha256", data, pair.publicKey, sig)).toBe(true);
      expect(verify("sha256", Buffer.from("other"), pair.publicKey, sig)).toBe(false);
      expect(createPublicKey(pair.privateKey).export({ format: "jwk" })).toEqual(
        pair.publicKey.export({ format: "jwk" }),
      );
      if (spec.type === "rsa") expect(pair.privateKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
      else expect(pair.privateKey.asymmetricKeyDetails?.namedCurve).toBe(spec.namedCurve);
    }
  });
});

/** Runtime sources (not tests, test support or benches) that may still call node's generators. */
const ALLOWED = new Map([
  ["platform/src/key-pairs.ts", "the one place that does, safely"],
  // The customer's CLI makes its security-domain keys once and exits; the package does
  // not depend on @hsmpool/platform (customer side).
  ["security-domain/src/customer-keys.ts", "customer side, one-off"],
]);

function runtimeSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "testing" || e.name === "bench" ? [] : runtimeSources(path);
    return e.name.endsWith(".ts") && !/\.test\.ts$|test-support\.ts$|\.d\.ts$/.test(e.name) ? [path] : [];
  });
}

test("no runtime code generates a key pair with node:crypto's KeyObjects directly", () => {
  const offenders = readdirSync(PACKAGES)
    .flatMap((pkg) => {
      try {
        return runtimeSources(join(PACKAGES, pkg, "src"));
      } catch {
        return [];
      }
    })
    .map((path) => relative(PACKAGES, path))
    .filter((rel) => !ALLOWED.has(rel))
    .filter((rel) => /\bgenerateKeyPair(Sync)?\b/.test(readFileSync(join(PACKAGES, rel), "utf8")));
  expect(offenders).toEqual([]);
});
