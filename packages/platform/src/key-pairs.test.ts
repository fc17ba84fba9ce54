/**
 * key-pairs.ts: generated pairs work, share no lock with their generation job (a JWK
 * export of a job's own key can deadlock Node 20), and nothing at runtime generates a
 * pair any other way.
 */
import { spawn } from "node:child_process";
import { createPublicKey, sign, verify } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, test } from "vitest";
import { generateIsolatedKeyPair, generateIsolatedKeyPairSync } from "./key-pairs.js";

const PACKAGES = fileURLToPath(new URL("../../", import.meta.url));
const DIST = fileURLToPath(new URL("../dist/", import.meta.url));

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

/**
 * The deadlock needs a GC to free the job inside an export of the job's own key. With
 * generateKeyPairSync's KeyObjects and a 1 MiB young generation this loop froze within
 * seconds (measured: 2 of 2 runs never finished in 60 s); with isolated pairs it ends.
 * A frozen thread cannot be interrupted from inside, so the loop runs in a child process.
 */
const KEYS = 3000;
const FROZEN_AFTER_MS = 150_000;
test(
  `${KEYS} pairs generated on the calling thread and exported as JWK back to back never freeze the thread`,
  async () => {
    const script = `
const { generateIsolatedKeyPairSync } = await import(${JSON.stringify(pathToFileURL(join(DIST, "key-pairs.js")).href)});
for (let i = 0; i < ${KEYS}; i++) generateIsolatedKeyPairSync({ type: "ec", namedCurve: "prime256v1" }).publicKey.export({ format: "jwk" });
process.stdout.write("done");`;
    const result = await new Promise<{ out: string; frozen: boolean; code: number | null }>((resolve) => {
      const child = spawn(
        process.execPath,
        ["--max-semi-space-size=1", "--input-type=module", "-e", script],
        {
          stdio: ["ignore", "pipe", "inherit"],
        },
      );
      let out = "";
      child.stdout.on("data", (b: Buffer) => {
        out += b.toString();
      });
      let frozen = false;
      const timer = setTimeout(() => {
        frozen = true;
        child.kill("SIGKILL");
      }, FROZEN_AFTER_MS);
      child.on("exit", (code) => {
        clearTimeout(timer);
        resolve({ out, frozen, code });
      });
    });
    expect(result.frozen, "the generation loop froze (deadlocked thread)").toBe(false);
    expect(result).toMatchObject({ code: 0, out: "done" });
  },
  FROZEN_AFTER_MS + 30_000,
);

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
