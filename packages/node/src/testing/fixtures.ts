/**
 * Test fixtures (excluded from the build): temp dirs, a real fabric with HSM
 * devices, and enclaves launched from a tiny signed bundle for in-process tests.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initFabricWithHsms } from "@hsmpool/hsm";
import { type Enclave, type Fabric, launchEnclave, signBundle } from "@hsmpool/platform";

const made: string[] = [];

export async function tempDir(prefix = "hsmpool-node-test-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

/** A fabric of `racks` racks with one server each, every server with an HSM device. */
export async function makeFabric(root: string, racks = 3): Promise<Fabric> {
  const dir = join(root, "fabric");
  return (await initFabricWithHsms(dir, { racks, serversPerRack: 1 })).fabric;
}

/** An enclave of a throwaway signed bundle on the fabric's first server (for sealing in unit tests). */
export async function launchTestEnclave(root: string, fabric: Fabric, serverIndex = 0): Promise<Enclave> {
  const bundle = join(root, "bundle");
  await mkdir(bundle, { recursive: true });
  await writeFile(join(bundle, "main.js"), "// test bundle\n");
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  await signBundle(bundle, privateKey, { productId: 1, svn: 1, debug: false });
  const server = fabric.servers()[serverIndex];
  if (!server) throw new Error(`fabric has no server ${serverIndex}`);
  return launchEnclave(server, bundle);
}
