/** Test fixtures shared by this package's tests (excluded from the build). */
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { isHsmPoolError } from "@hsmpool/errors";

const made: string[] = [];

export async function tempDir(prefix = "hsmpool-platform-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

export async function writeBundle(dir: string, files: Record<string, string | Uint8Array>): Promise<string> {
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), content);
  }
  return dir;
}

export function ecSigningKey(): KeyObject {
  return generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
}

/** Runs `fn` and returns the HsmPoolError it throws; fails the test if it returns or throws anything else. */
export async function caught(fn: () => unknown): Promise<import("@hsmpool/errors").HsmPoolError> {
  try {
    await fn();
  } catch (e) {
    if (isHsmPoolError(e)) return e;
    throw new Error(`expected an HsmPoolError, got ${String(e)}`);
  }
  throw new Error("expected an HsmPoolError, but the call succeeded");
}

export function caughtSync(fn: () => unknown): import("@hsmpool/errors").HsmPoolError {
  try {
    fn();
  } catch (e) {
    if (isHsmPoolError(e)) return e;
    throw new Error(`expected an HsmPoolError, got ${String(e)}`);
  }
  throw new Error("expected an HsmPoolError, but the call succeeded");
}

/**
 * A small world for attestation and sealing tests: two fabrics, two signers and
 * bundles that differ in code, SVN, product id and debug flag.
 */
export async function buildWorld() {
  const { initFabric, openFabric, signBundle, launchEnclave } = await import("./index.js");
  const base = await tempDir();
  await initFabric(join(base, "fabric-a"), { racks: 2, serversPerRack: 1 });
  await initFabric(join(base, "fabric-b"), { racks: 1, serversPerRack: 1 });
  const fabricA = await openFabric(join(base, "fabric-a"));
  const fabricB = await openFabric(join(base, "fabric-b"));
  const signer = ecSigningKey();
  const foreignSigner = ecSigningKey();
  const bundle = async (
    name: string,
    key: KeyObject,
    fields: { productId: number; svn: number; debug: boolean },
  ) => {
    const dir = await writeBundle(join(base, name), {
      "main.js": `// ${name}\n`,
      "lib/util.js": "export {}\n",
    });
    return { dir, sigstruct: await signBundle(dir, key, fields) };
  };
  const app = await bundle("app", signer, { productId: 1, svn: 2, debug: false });
  const appNext = await bundle("app-next", signer, { productId: 1, svn: 3, debug: false });
  const appOld = await bundle("app-old", signer, { productId: 1, svn: 1, debug: false });
  const otherProduct = await bundle("other-product", signer, { productId: 2, svn: 2, debug: false });
  const debugApp = await bundle("app-debug", signer, { productId: 1, svn: 2, debug: true });
  const foreign = await bundle("foreign", foreignSigner, { productId: 1, svn: 2, debug: false });
  const s1 = fabricA.server("r1-s1");
  const s2 = fabricA.server("r2-s1");
  return {
    fabricA,
    fabricB,
    signer,
    foreignSigner,
    bundles: { app, appNext, appOld, otherProduct, debugApp, foreign },
    enclaves: {
      app: await launchEnclave(s1, app.dir),
      appOnOtherServer: await launchEnclave(s2, app.dir),
      appNext: await launchEnclave(s1, appNext.dir),
      appOld: await launchEnclave(s1, appOld.dir),
      otherProduct: await launchEnclave(s1, otherProduct.dir),
      debugApp: await launchEnclave(s1, debugApp.dir),
      foreign: await launchEnclave(s1, foreign.dir),
      appOnFabricB: await launchEnclave(fabricB.server("r1-s1"), app.dir),
    },
  };
}
