import { resolve } from "node:path";
import { fail } from "@hsmpool/errors";
import {
  type BundleInspection,
  inspectBundle,
  loadOrCreateSigningKey,
  readSigningKey,
  signBundle,
} from "@hsmpool/platform";
import { nodeRuntimeClosure } from "@hsmpool/wire";
import type { Command } from "commander";

/** Default project signing key, relative to the current directory (`.hsmpool/` is gitignored). */
export const DEFAULT_SIGNING_KEY = ".hsmpool/dev-signing-key.pem";

function parseU16(flag: string, value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n > 0xffff) {
    fail("BadParameter", `${flag} must be a whole number from 0 to 65535, got "${value}"`, { flag });
  }
  return n;
}

function describeInspection(dir: string, r: BundleInspection): string {
  const lines = [
    `bundle ${dir}`,
    `  measured MRENCLAVE  ${r.measurement.mrenclave} (${r.measurement.files.length} files)`,
  ];
  const s = r.sigstruct;
  if (!s) {
    lines.push(`  SIGSTRUCT           none (${r.sigstructError})`);
  } else {
    lines.push(
      `  signed MRENCLAVE    ${s.mrenclave}`,
      `  MRSIGNER            ${s.mrsigner}`,
      `  product id ${s.productId}, svn ${s.svn}, debug ${s.debug ? "yes" : "no"}`,
      `  signature           ${r.signatureValid ? "valid" : "INVALID"}`,
      `  measurement         ${r.measurementMatches ? "matches" : "DOES NOT MATCH (bundle changed after signing)"}`,
      `  launchable          ${r.signatureValid && r.measurementMatches ? "yes" : "no"}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

const BUNDLE_ONLY_HELP =
  "measure the directory alone, not with the node runtime closure (this installation's packages/node, its dependencies and proto/) that a node bundle is measured with";

/** The node bundle's runtime closure, or none with --bundle-only (docs/enclave-measurement.md). */
const runtimeOf = (opts: { bundleOnly?: boolean }) => (opts.bundleOnly ? undefined : nodeRuntimeClosure());

/** `hsmpool bundle sign|show`: code bundles, their measurement and SIGSTRUCT (owned by @hsmpool/platform). */
export function registerBundleCommands(program: Command): void {
  const bundle = program
    .command("bundle")
    .description("sign and inspect enclave code bundles (MRENCLAVE measurement + SIGSTRUCT)");

  registerBundleSignCommand(bundle);
  registerBundleShowCommand(bundle);
}

interface SignOptions {
  key?: string;
  svn: string;
  productId: string;
  debug: boolean;
  bundleOnly?: boolean;
}

function registerBundleSignCommand(bundle: Command): void {
  bundle
    .command("sign")
    .description("measure <dir> and write its SIGSTRUCT (sigstruct.bin) signed with the project signing key")
    .argument("<dir>", "bundle directory")
    .option(
      "--key <pem>",
      `PEM private key (EC, Ed25519 or RSA); default ${DEFAULT_SIGNING_KEY}, generated on first use`,
    )
    .option("--svn <n>", "security version number (0-65535)", "1")
    .option("--product-id <n>", "product id (0-65535)", "1")
    .option("--debug", "mark the enclave as a debug enclave (verifiers refuse it unless allowDebug)", false)
    .option("--bundle-only", BUNDLE_ONLY_HELP)
    .action(async (dir: string, opts: SignOptions) => {
      const svn = parseU16("--svn", opts.svn);
      const productId = parseU16("--product-id", opts.productId);
      let key: Awaited<ReturnType<typeof readSigningKey>>;
      if (opts.key !== undefined) {
        key = await readSigningKey(opts.key);
      } else {
        const loaded = await loadOrCreateSigningKey(resolve(DEFAULT_SIGNING_KEY));
        if (loaded.created) {
          process.stderr.write(
            `hsmpool: generated a development signing key in ${DEFAULT_SIGNING_KEY} (keep it out of git)\n`,
          );
        }
        key = loaded.key;
      }
      const s = await signBundle(dir, key, { svn, productId, debug: opts.debug }, runtimeOf(opts));
      process.stdout.write(
        `signed ${dir}\n  MRENCLAVE  ${s.mrenclave}\n  MRSIGNER   ${s.mrsigner}\n` +
          `  product id ${s.productId}, svn ${s.svn}, debug ${s.debug ? "yes" : "no"}\n`,
      );
    });
}

function registerBundleShowCommand(bundle: Command): void {
  bundle
    .command("show")
    .description("print a bundle's measurement, signer, svn, debug flag and whether its signature verifies")
    .argument("<dir>", "bundle directory")
    .option("--json", "print as JSON")
    .option("--bundle-only", BUNDLE_ONLY_HELP)
    .action(async (dir: string, opts: { json?: boolean; bundleOnly?: boolean }) => {
      const r = await inspectBundle(dir, runtimeOf(opts));
      if (!opts.json) {
        process.stdout.write(describeInspection(dir, r));
        return;
      }
      const s = r.sigstruct;
      const json = {
        dir,
        measuredMrenclave: r.measurement.mrenclave,
        fileCount: r.measurement.files.length,
        sigstruct: s && {
          mrenclave: s.mrenclave,
          mrsigner: s.mrsigner,
          productId: s.productId,
          svn: s.svn,
          debug: s.debug,
        },
        sigstructError: r.sigstructError,
        signatureValid: r.signatureValid,
        measurementMatches: r.measurementMatches,
      };
      process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    });
}
