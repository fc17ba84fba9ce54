/**
 * Key generation followed at once by the public JWK (what every create does) must never
 * deadlock the thread (platform key-pairs.ts). A deadlocked thread cannot be
 * interrupted from inside, so each loop runs in a child process (the built dist, as pool
 * members run it) with a small young generation, so that scavenges fall inside exports
 * often: with generateKeyPairSync's KeyObjects either loop froze within seconds (4 of 4
 * runs). The child's deadline only tells a frozen child from a slow one; it is far above
 * what the loop takes on a loaded machine.
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { expect, test } from "vitest";

const DIST = fileURLToPath(new URL("../dist/", import.meta.url));
const KEYS = 6000;
const TRANSFER_KEYS = 300;
const SYNC_KEYS = 3000;
const FROZEN_AFTER_MS = 150_000;

const asyncScript = `
const { generateMaterial, loadKey, publicJwk } = await import(${JSON.stringify(pathToFileURL(`${DIST}key-material.js`).href)});
const { generateTransferKeyPair, describeTransferPublicKey } = await import(${JSON.stringify(pathToFileURL(`${DIST}transfer-key.js`).href)});
for (let i = 0; i < ${KEYS}; i++) {
  const material = await generateMaterial({ kty: "EC", crv: "P-256" });
  const jwk = publicJwk(loadKey({ id: "k" + i, kty: "EC", crv: "P-256", ops: ["sign"] }, material));
  if (jwk.crv !== "P-256" || typeof jwk.x !== "string") throw new Error("bad jwk");
}
for (let i = 0; i < ${TRANSFER_KEYS}; i++) describeTransferPublicKey((await generateTransferKeyPair()).publicKey);
process.stdout.write("done");
`;

/** The sync generator (a node's TLS identity, the signing key): the variant that froze fastest. */
const PLATFORM = pathToFileURL(createRequire(import.meta.url).resolve("@hsmpool/platform")).href;
const syncScript = `
const { generateIsolatedKeyPairSync } = await import(${JSON.stringify(PLATFORM)});
for (let i = 0; i < ${SYNC_KEYS}; i++) generateIsolatedKeyPairSync({ type: "ec", namedCurve: "prime256v1" }).publicKey.export({ format: "jwk" });
process.stdout.write("done");
`;

function runChild(script: string): Promise<{ code: number | null; out: string; frozen: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--max-semi-space-size=1", "--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
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
      resolve({ code, out, frozen });
    });
  });
}

test.each([
  [`${KEYS} P-256 keys generated on the thread pool (and ${TRANSFER_KEYS} transfer keys)`, asyncScript],
  [`${SYNC_KEYS} P-256 pairs generated on the calling thread`, syncScript],
])(
  "%s and exported as JWK back to back never freeze the thread",
  async (_name, script) => {
    const result = await runChild(script);
    expect(result.frozen, "the key-generation loop froze (deadlocked thread)").toBe(false);
    expect(result).toMatchObject({ code: 0, out: "done" });
  },
  FROZEN_AFTER_MS + 30_000,
);
