import "reflect-metadata";
import { X509Certificate } from "node:crypto";
import { copyFile, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadServerSecrets } from "./fabric.js";
import { initFabric, launchEnclave, openFabric, signBundle } from "./index.js";
import { caught, ecSigningKey, removeTempDirs, tempDir, writeBundle } from "./test-support.js";

afterAll(removeTempDirs);

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await allFiles(p)));
    else out.push(p);
  }
  return out;
}

describe("fabric init and open", () => {
  it("creates 3 racks x 2 servers by default and opens to the same inventory", async () => {
    const dir = join(await tempDir(), "fabric");
    const info = await initFabric(dir);
    expect(info.racks.map((r) => r.id)).toEqual(["rack-1", "rack-2", "rack-3"]);
    expect(info.racks.map((r) => r.servers.map((s) => s.id))).toEqual([
      ["r1-s1", "r1-s2"],
      ["r2-s1", "r2-s2"],
      ["r3-s1", "r3-s2"],
    ]);
    const fabric = await openFabric(dir);
    expect(fabric.info).toEqual(info);
    expect(fabric.servers().map((s) => `${s.rackId}/${s.id}`)).toEqual([
      "rack-1/r1-s1",
      "rack-1/r1-s2",
      "rack-2/r2-s1",
      "rack-2/r2-s2",
      "rack-3/r3-s1",
      "rack-3/r3-s2",
    ]);
    expect((await stat(fabric.server("r2-s2").hsmDir)).isDirectory()).toBe(true);
    expect(JSON.parse(await readFile(join(dir, "fabric.json"), "utf8"))).toMatchObject(info);
  });

  it("honours --racks and --servers-per-rack", async () => {
    const info = await initFabric(join(await tempDir(), "f"), { racks: 2, serversPerRack: 3 });
    expect(info.racks).toHaveLength(2);
    expect(info.racks[1]!.servers.map((s) => s.id)).toEqual(["r2-s1", "r2-s2", "r2-s3"]);
  });

  it("refuses bad counts, an initialised or non-empty dir, and opening a missing dir or a non-fabric", async () => {
    const base = await tempDir();
    expect((await caught(() => initFabric(join(base, "x"), { racks: 0 }))).details?.field).toBe("racks");
    expect((await caught(() => initFabric(join(base, "x"), { serversPerRack: 1.5 }))).code).toBe(
      "BadParameter",
    );
    await initFabric(join(base, "f"), { racks: 1, serversPerRack: 1 });
    const again = await caught(() => initFabric(join(base, "f")));
    expect(again.code).toBe("Conflict");
    expect(again.message).toMatch(/already initialised/);
    await mkdir(join(base, "other"));
    await writeFile(join(base, "other", "note"), "x");
    expect((await caught(() => initFabric(join(base, "other")))).code).toBe("Conflict");
    expect((await caught(() => openFabric(join(base, "missing")))).code).toBe("NotFound");
    expect((await caught(() => openFabric(join(base, "other")))).code).toBe("NotInitialized");
    await writeFile(join(base, "other", "fabric.json"), "{not json");
    expect((await caught(() => openFabric(join(base, "other")))).code).toBe("IntegrityError");
  });
});

describe("fabric PKI and secrets at rest", () => {
  let dir: string;
  beforeAll(async () => {
    dir = join(await tempDir(), "fabric");
    await initFabric(dir, { racks: 2, serversPerRack: 1 });
  });

  it("issues each platform cert as a pathLen-0 CA under the vendor root with CN=server, OU=rack", async () => {
    const fabric = await openFabric(dir);
    const root = new X509Certificate(fabric.vendorRootCertPem);
    expect(root.ca).toBe(true);
    expect(root.checkIssued(root)).toBe(true);
    for (const server of fabric.servers()) {
      const node = new X509Certificate(server.platformCertDer);
      expect(node.checkIssued(root)).toBe(true);
      expect(node.verify(root.publicKey)).toBe(true);
      expect(node.subject.split("\n")).toEqual(
        expect.arrayContaining([`CN=${server.id}`, `OU=${server.rackId}`]),
      );
      const cert = new x509.X509Certificate(server.platformCertDer);
      const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
      expect(bc).toMatchObject({ ca: true, pathLength: 0, critical: true });
      const ku = cert.getExtension(x509.KeyUsagesExtension)!;
      expect(ku.usages & x509.KeyUsageFlags.keyCertSign).toBeTruthy();
      expect(ku.usages & x509.KeyUsageFlags.digitalSignature).toBeTruthy();
      expect(node.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    }
  });

  it("leak check: no file holds a PEM private key or the platform private key bytes, and the fuse is owner-only", async () => {
    const fabric = await openFabric(dir);
    const secrets: Buffer[] = [];
    for (const server of fabric.servers()) {
      const { platformKey } = await loadServerSecrets(server);
      secrets.push(platformKey.export({ type: "pkcs8", format: "der" }));
      secrets.push(platformKey.export({ type: "sec1", format: "der" }));
      const jwk = platformKey.export({ format: "jwk" });
      secrets.push(Buffer.from(jwk.d!, "base64url"));
      expect(Buffer.from(jwk.d!, "base64url")).toHaveLength(32);
      expect((await stat(join(server.dir, "cpu-fuse.bin"))).mode & 0o077).toBe(0);
    }
    const files = await allFiles(dir);
    // fabric.json + vendor-root.crt + 4 files per server: everything was scanned.
    expect(files).toHaveLength(2 + 4 * fabric.servers().length);
    for (const file of files) {
      const content = await readFile(file);
      expect(content.toString("latin1"), file).not.toMatch(/PRIVATE KEY/);
      for (const secret of secrets) expect(content.includes(secret), file).toBe(false);
    }
  });

  it("a platform key file copied from another server does not open (bound to the fuse and the cert)", async () => {
    const own = join(await tempDir(), "fabric");
    await initFabric(own, { racks: 2, serversPerRack: 1 });
    const [a, b] = (await openFabric(own)).servers();
    await copyFile(join(a!.dir, "platform-key.sealed"), join(b!.dir, "platform-key.sealed"));
    expect((await caught(() => loadServerSecrets(b!))).code).toBe("IntegrityError");
    const bundle = await writeBundle(await tempDir(), { "main.js": "x" });
    await signBundle(bundle, ecSigningKey(), { productId: 1, svn: 1, debug: false });
    expect((await caught(() => launchEnclave(b!, bundle))).code).toBe("IntegrityError");
    await launchEnclave(a!, bundle);
  });

  it("opening refuses a platform cert replaced behind fabric.json's back", async () => {
    const copy = join(await tempDir(), "fabric");
    await initFabric(copy, { racks: 1, serversPerRack: 2 });
    await copyFile(
      join(copy, "racks/rack-1/r1-s1/platform.crt"),
      join(copy, "racks/rack-1/r1-s2/platform.crt"),
    );
    expect((await caught(() => openFabric(copy))).code).toBe("IntegrityError");
  });

  it("launchEnclave refuses a hand-made server handle", async () => {
    const fabric = await openFabric(dir);
    const fake = { ...fabric.server("r1-s1") };
    const bundle = await writeBundle(await tempDir(), { "main.js": "x" });
    await signBundle(bundle, ecSigningKey(), { productId: 1, svn: 1, debug: false });
    expect((await caught(() => launchEnclave(fake, bundle))).code).toBe("BadParameter");
  });
});
