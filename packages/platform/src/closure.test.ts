/**
 * The runtime closure in measurement: which files count, resolution as Node does it (so
 * hoisting does not matter), and that an edit to a dependency refuses the launch.
 */
import { appendFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { measureBundle, signBundle, verifyBundle } from "./bundle.js";
import { runtimeClosureFiles } from "./closure.js";
import { caught, ecSigningKey } from "./test-support.js";

const made: string[] = [];
afterAll(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));

async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
}

const pkg = (name: string, version: string, deps: Record<string, string> = {}, extra: object = {}) =>
  JSON.stringify({ name, version, dependencies: deps, ...extra });

/**
 * An app (a local package with dist/) depending on a hoisted package, a workspace package linked
 * into node_modules, and a package that needs another version of the hoisted one (nested).
 * `hoistB` swaps which b is hoisted and which nested (npm may lay it out either way).
 */
async function tree(opts: { hoistB?: boolean } = {}): Promise<{ root: string; app: string; bundle: string }> {
  const root = await mkdtemp(join(tmpdir(), "hsmpool-closure-"));
  made.push(root);
  const b1 = opts.hoistB ? "node_modules/a/node_modules/b" : "node_modules/b";
  const b2 = opts.hoistB ? "node_modules/b" : "node_modules/c/node_modules/b";
  await writeTree(root, {
    "packages/app/package.json": pkg("app", "1.0.0", { a: "^1", c: "^3", local: "0.1.0" }),
    "packages/app/dist/main.js": "import 'a';\n",
    "packages/app/dist/main.d.ts": "export {};\n",
    "packages/app/src/main.ts": "import 'a';\n",
    "packages/app/tsconfig.json": "{}\n",
    "packages/local/package.json": pkg("local", "0.1.0", {}),
    "packages/local/dist/index.js": "export const x = 1;\n",
    "packages/local/dist/.tsbuildinfo": "{}\n",
    "packages/local/src/index.ts": "export const x = 1;\n",
    "node_modules/a/package.json": pkg("a", "1.2.0", { b: "^1" }),
    "node_modules/a/index.js": "module.exports = require('b');\n",
    "node_modules/a/index.d.ts": "export {};\n",
    "node_modules/a/index.js.map": "{}\n",
    "node_modules/a/README.md": "# a\n",
    "node_modules/a/LICENSE": "MIT\n",
    "node_modules/a/test/fixture.pem": "-----BEGIN-----\n",
    [`${b1}/package.json`]: pkg("b", "1.0.0"),
    [`${b1}/index.js`]: "module.exports = 1;\n",
    "node_modules/c/package.json": pkg("c", "3.0.0", { b: "^2" }, { optionalDependencies: { gone: "1" } }),
    "node_modules/c/index.js": "module.exports = require('b');\n",
    [`${b2}/package.json`]: pkg("b", "2.0.0"),
    [`${b2}/index.js`]: "module.exports = 2;\n",
    "node_modules/unrelated/package.json": pkg("unrelated", "9.0.0"),
    "node_modules/unrelated/index.js": "module.exports = 9;\n",
    "proto/pool.proto": 'syntax = "proto3";\n',
  });
  await symlink("../packages/local", join(root, "node_modules/local"));
  return { root, app: join(root, "packages/app"), bundle: join(root, "packages/app/dist") };
}

const runtimeOf = (t: { root: string; app: string }) => ({
  packageDir: t.app,
  dataDirs: { proto: join(t.root, "proto") },
});

describe("runtime closure", () => {
  it("lists the running package, every package its dependencies reach and the data dirs, by name@version", async () => {
    const t = await tree();
    const paths = runtimeClosureFiles(runtimeOf(t))
      .map((f) => f.path)
      .sort();
    expect(paths).toEqual([
      "data/proto/pool.proto",
      "pkg/a@1.2.0/LICENSE",
      "pkg/a@1.2.0/index.js",
      "pkg/a@1.2.0/package.json",
      "pkg/app@1.0.0/dist/main.js",
      "pkg/app@1.0.0/package.json",
      "pkg/b@1.0.0/index.js",
      "pkg/b@1.0.0/package.json",
      "pkg/b@2.0.0/index.js",
      "pkg/b@2.0.0/package.json",
      "pkg/c@3.0.0/index.js",
      "pkg/c@3.0.0/package.json",
      "pkg/local@0.1.0/dist/index.js",
      "pkg/local@0.1.0/package.json",
    ]);
  });

  it("is the same wherever the tree is and however npm hoisted it", async () => {
    const one = await tree();
    const two = await tree();
    const hoisted = await tree({ hoistB: true });
    const m = async (t: { root: string; app: string; bundle: string }) =>
      (await measureBundle(t.bundle, runtimeOf(t))).mrenclave;
    expect(await m(two)).toBe(await m(one));
    expect(await m(hoisted)).toBe(await m(one));
  });

  it("one changed byte in any measured dependency file changes MRENCLAVE and refuses the launch; docs, types and maps do not count", async () => {
    const t = await tree();
    const privateKey = ecSigningKey();
    await signBundle(t.bundle, privateKey, { productId: 1, svn: 1, debug: false }, runtimeOf(t));
    const signed = (await verifyBundle(t.bundle, runtimeOf(t))).mrenclave;
    // The bundle alone measures differently: the closure is part of the identity.
    expect((await measureBundle(t.bundle)).mrenclave).not.toBe(signed);
    for (const ignored of [
      "node_modules/a/README.md",
      "node_modules/a/index.d.ts",
      "node_modules/a/index.js.map",
    ]) {
      await appendFile(join(t.root, ignored), " ");
    }
    await appendFile(join(t.root, "node_modules/unrelated/index.js"), " ");
    expect((await verifyBundle(t.bundle, runtimeOf(t))).mrenclave).toBe(signed);

    for (const edited of [
      "node_modules/c/node_modules/b/index.js",
      "node_modules/b/index.js",
      "packages/local/dist/index.js",
      "packages/app/package.json",
      "node_modules/a/LICENSE",
      "proto/pool.proto",
    ]) {
      const t2 = await tree();
      await signBundle(t2.bundle, privateKey, { productId: 1, svn: 1, debug: false }, runtimeOf(t2));
      await appendFile(join(t2.root, edited), " ");
      const e = await caught(() => verifyBundle(t2.bundle, runtimeOf(t2)));
      expect([edited, e.code, e.details?.check]).toEqual([edited, "LaunchRefused", "measurement"]);
    }
  });

  it("refuses a missing dependency and a symlink inside a package; skips a missing optional one", async () => {
    const t = await tree();
    await rm(join(t.root, "node_modules/b"), { recursive: true });
    expect((await caught(() => measureBundle(t.bundle, runtimeOf(t)))).message).toMatch(
      /^b, a dependency of a, is not installed/,
    );
    const s = await tree();
    await symlink("/etc/hostname", join(s.root, "node_modules/a/link.js"));
    expect((await caught(() => measureBundle(s.bundle, runtimeOf(s)))).code).toBe("BadParameter");
  });

  it("refuses what Node would load instead of the measured package: a same-named file, a directory without package.json", async () => {
    const plain = await tree();
    const before = (await measureBundle(plain.bundle, runtimeOf(plain))).mrenclave;
    for (const [path, why] of [
      ["node_modules/b.js", /node_modules\/b has a \.js file beside it/],
      ["packages/app/node_modules/a/index.js", /packages\/app\/node_modules\/a has no package\.json/],
      ["packages/app/node_modules/c", /packages\/app\/node_modules\/c is a file/],
    ] as const) {
      const t = await tree();
      await writeTree(t.root, { [path]: "module.exports = 'not measured';\n" });
      const e = await caught(() => measureBundle(t.bundle, runtimeOf(t)));
      expect([path, e.code, e.message]).toEqual([path, "BadParameter", expect.stringMatching(why)]);
    }
    expect((await measureBundle(plain.bundle, runtimeOf(plain))).mrenclave).toBe(before);
  });
});
