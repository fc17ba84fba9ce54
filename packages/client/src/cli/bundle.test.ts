import { generateKeyPairSync } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isHsmPoolError } from "@hsmpool/errors";
import { verifyBundle } from "@hsmpool/platform";
import { nodeRuntimeClosure } from "@hsmpool/wire";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "./testing/run-cli.js";

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function bundleDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "hsmpool-cli-bundle-"));
  dirs.push(d);
  await mkdir(join(d, "app", "lib"), { recursive: true });
  await writeFile(join(d, "app", "main.js"), "console.log('hi')\n");
  await writeFile(join(d, "app", "lib", "x.js"), "export {}\n");
  return d;
}

async function inDir<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const before = process.cwd();
  process.chdir(dir);
  try {
    return await fn();
  } finally {
    process.chdir(before);
  }
}

const run = runCli;

describe("hsmpool bundle", () => {
  it("sign with the default key generates .hsmpool/dev-signing-key.pem once, with a one-line notice", async () => {
    const base = await bundleDir();
    const first = await inDir(base, () =>
      run("bundle", "sign", "app", "--svn", "4", "--product-id", "9", "--bundle-only"),
    );
    expect(first.code).toBe(0);
    expect(first.stderr).toBe(
      "hsmpool: generated a development signing key in .hsmpool/dev-signing-key.pem (keep it out of git)\n",
    );
    const keyPath = join(base, ".hsmpool", "dev-signing-key.pem");
    expect((await stat(keyPath)).mode & 0o077).toBe(0);
    const keyPem = await readFile(keyPath, "utf8");
    expect(first.stdout).not.toContain("PRIVATE KEY");

    const second = await inDir(base, () => run("bundle", "sign", "app", "--debug", "--bundle-only"));
    expect(second.code).toBe(0);
    expect(second.stderr).toBe("");
    expect(await readFile(keyPath, "utf8")).toBe(keyPem);
    const mrsigner = (s: string) => /MRSIGNER {3}([0-9a-f]{64})/.exec(s)?.[1];
    expect(mrsigner(second.stdout)).toBe(mrsigner(first.stdout));

    const { sigstruct } = await verifyBundle(join(base, "app"));
    expect(sigstruct).toMatchObject({ svn: 1, productId: 1, debug: true, mrsigner: mrsigner(first.stdout) });
  });

  it("by default a bundle is measured with the node runtime closure; --bundle-only measures the directory alone", async () => {
    const base = await bundleDir();
    const app = join(base, "app");
    const keyPath = join(base, "k.pem");
    await writeFile(
      keyPath,
      generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }),
    );
    expect((await run("bundle", "sign", app, "--key", keyPath)).code).toBe(0);
    const closure = await verifyBundle(app, nodeRuntimeClosure());
    const alone = await verifyBundle(app).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isHsmPoolError(alone, "LaunchRefused") && alone.details?.check).toBe("measurement");
    const show = JSON.parse((await run("bundle", "show", app, "--json")).stdout);
    expect(show).toMatchObject({ measurementMatches: true, measuredMrenclave: closure.mrenclave });
    expect(show.fileCount).toBeGreaterThan(100);
    const shownAlone = JSON.parse((await run("bundle", "show", app, "--json", "--bundle-only")).stdout);
    expect(shownAlone).toMatchObject({ measurementMatches: false, fileCount: 2 });
  });

  it("sign --key uses the given PEM; show reports the signer and flags a bundle changed after signing", async () => {
    const base = await bundleDir();
    await inDir(base, () => run("bundle", "sign", "app", "--bundle-only"));
    const keyPath = join(base, "project-key.pem");
    await writeFile(keyPath, await readFile(join(base, ".hsmpool", "dev-signing-key.pem")));
    const app = join(base, "app");
    const signed = await run("bundle", "sign", app, "--key", keyPath, "--svn", "7", "--bundle-only");
    expect(signed.code).toBe(0);

    const show = await run("bundle", "show", app, "--json", "--bundle-only");
    expect(show.code).toBe(0);
    const j = JSON.parse(show.stdout);
    expect(j).toMatchObject({ signatureValid: true, measurementMatches: true, fileCount: 2 });
    expect(j.sigstruct).toMatchObject({ svn: 7, productId: 1, debug: false });
    expect(j.sigstruct.mrenclave).toBe(j.measuredMrenclave);

    await writeFile(join(app, "main.js"), "console.log('evil')\n");
    const text = await run("bundle", "show", app, "--bundle-only");
    expect(text.stdout).toMatch(/measurement +DOES NOT MATCH/);
    expect(text.stdout).toMatch(/launchable +no/);
  });

  it("user mistakes exit non-zero with one line: bad svn, missing key file, missing bundle", async () => {
    const base = await bundleDir();
    const app = join(base, "app");
    const badSvn = await run("bundle", "sign", app, "--svn", "70000", "--key", join(base, "k.pem"));
    expect(badSvn.code).toBe(1);
    expect(badSvn.stderr).toBe(
      'hsmpool: --svn must be a whole number from 0 to 65535, got "70000" [BadParameter]\n',
    );
    const noKey = await run("bundle", "sign", app, "--key", join(base, "k.pem"));
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(
      /^hsmpool: signing key file .*k\.pem does not exist or cannot be read \[NotFound\]\n$/,
    );
    await expect(stat(join(app, "sigstruct.bin"))).rejects.toThrow();
    const noBundle = await run("bundle", "show", join(base, "nope"));
    expect(noBundle.code).toBe(1);
    expect(noBundle.stderr).toMatch(/^hsmpool: bundle directory .* does not exist \[NotFound\]\n$/);
  });
});
