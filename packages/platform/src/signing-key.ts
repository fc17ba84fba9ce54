/**
 * The project's code-signing key file: loaded from PEM, or (for the development
 * default) generated on first use. The file is a developer secret outside any
 * fabric directory; it is written owner-only and never overwritten.
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { fail } from "@hsmpool/errors";
import { generateIsolatedKeyPairSync } from "./key-pairs.js";

export async function readSigningKey(path: string): Promise<KeyObject> {
  const pem = await readFile(path, "utf8").catch(() =>
    fail("NotFound", `signing key file ${path} does not exist or cannot be read`, { path }),
  );
  try {
    return createPrivateKey(pem);
  } catch {
    return fail("BadParameter", `${path} is not a PEM private key`, { path });
  }
}

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

/** Reads the key at `path`, creating an ECDSA P-256 key there first if there is none. */
export async function loadOrCreateSigningKey(path: string): Promise<{ key: KeyObject; created: boolean }> {
  if (await exists(path)) return { key: await readSigningKey(path), created: false };
  const { privateKey } = generateIsolatedKeyPairSync({ type: "ec", namedCurve: "P-256" });
  await mkdir(dirname(path), { recursive: true });
  try {
    // "wx": never clobber an existing key (and lose the MRSIGNER everything trusts), even in a race.
    await writeFile(path, privateKey.export({ type: "pkcs8", format: "pem" }), { flag: "wx", mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST")
      return { key: await readSigningKey(path), created: false };
    return fail("BadParameter", `cannot create signing key ${path}: ${(e as Error).message}`, { path });
  }
  return { key: privateKey, created: true };
}
