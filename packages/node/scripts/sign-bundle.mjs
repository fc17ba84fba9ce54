#!/usr/bin/env node
// Signs the node's enclave bundle (packages/node/dist) after a build, so the platform
// will launch it: run by the root `prepare`/`build` scripts after `tsc -b`.
//
//  1. Prunes dist/ to exactly what the current sources compile to: *.js and *.d.ts
//     with a matching src/*.ts. Stale outputs of deleted sources, source maps and
//     build-info files are removed, so the measurement (MRENCLAVE) depends on the
//     code only and is the same on every machine for the same sources.
//  2. Measures the bundle with its runtime closure (packages/node's package.json + dist/, every package it
//     reaches through dependencies, proto/: docs/enclave-measurement.md), as the node's launch does, and
//     signs with the development key .hsmpool/dev-signing-key.pem (created on first
//     use, owner-only, gitignored) at product id 1, SVN 1, non-debug — unless the
//     bundle already carries a valid SIGSTRUCT for its current measurement from that
//     key with those fields (then nothing is written).
//
// Usage: node packages/node/scripts/sign-bundle.mjs [--quiet]
import { existsSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { inspectBundle, loadOrCreateSigningKey, mrsignerOf, signBundle } from "@hsmpool/platform";
import { nodeRuntimeClosure } from "@hsmpool/wire";

export const PRODUCT_ID = 1;
export const SVN = 1;

const here = dirname(fileURLToPath(import.meta.url));
const packageDir = resolve(here, "..");
const repoRoot = resolve(packageDir, "../..");
const dist = join(packageDir, "dist");
const src = join(packageDir, "src");
const quiet = process.argv.includes("--quiet");
const say = (line) => {
  if (!quiet) process.stderr.write(`sign-bundle: ${line}\n`);
};

async function prune() {
  let removed = 0;
  for (const entry of await readdir(dist, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const rel = relative(dist, path);
    if (rel === "sigstruct.bin") continue;
    const stem = rel.endsWith(".d.ts") ? rel.slice(0, -5) : rel.endsWith(".js") ? rel.slice(0, -3) : null;
    if (stem !== null && existsSync(join(src, `${stem}.ts`)) && !stem.endsWith(".test")) continue;
    await rm(path);
    removed++;
  }
  if (removed > 0) say(`removed ${removed} file(s) that are not build outputs of the current sources`);
}

async function main() {
  if (!existsSync(join(dist, "main.js"))) {
    process.stderr.write("sign-bundle: packages/node/dist/main.js is missing; build first (npx tsc -b)\n");
    process.exit(1);
  }
  await prune();
  const keyPath = join(repoRoot, ".hsmpool", "dev-signing-key.pem");
  const { key, created } = await loadOrCreateSigningKey(keyPath);
  if (created)
    say(`generated a development signing key in ${relative(repoRoot, keyPath)} (keep it out of git)`);
  const runtime = nodeRuntimeClosure(packageDir);
  const inspection = await inspectBundle(dist, runtime);
  const s = inspection.sigstruct;
  if (
    s &&
    inspection.signatureValid &&
    inspection.measurementMatches &&
    s.mrsigner === mrsignerOf(key) &&
    s.productId === PRODUCT_ID &&
    s.svn === SVN &&
    !s.debug
  ) {
    say(
      `bundle already signed (MRENCLAVE ${s.mrenclave}, ${inspection.measurement.files.length} files measured)`,
    );
    return;
  }
  const signed = await signBundle(dist, key, { productId: PRODUCT_ID, svn: SVN, debug: false }, runtime);
  say(
    `signed ${relative(repoRoot, dist)} with its runtime closure: MRENCLAVE ${signed.mrenclave}, MRSIGNER ${signed.mrsigner}, svn ${SVN}`,
  );
}

await main();
