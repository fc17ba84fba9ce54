/** `hsmpool keys create|get|list|delete` (+ lifecycle and transfer subcommands): key management on the running pool. */
import { fail } from "@hsmpool/errors";
import type { Command } from "commander";
import type { KeyBundle } from "../sdk/types.js";
import { out, RUN_DIR_HELP, resolveRunDir, withPool } from "./context.js";
import { parseWholeNumber } from "./inputs.js";
import { registerKeyLifecycleCommands } from "./key-lifecycle.js";
import { registerKeyTransferCommands } from "./key-transfer.js";

function shapeOf(k: KeyBundle): string {
  if (k.kty === "EC") return `EC ${k.crv}`;
  return `${k.kty} ${k.size}`;
}

export function keyLine(k: KeyBundle): string {
  const state = k.attributes.enabled ? "" : ", disabled";
  return `${k.name} v${k.version}: ${shapeOf(k)}, ops ${k.ops.join(",")}${state}`;
}

/** ISO-8601 date or Unix milliseconds. */
export function parseTime(flag: string, value: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    fail("BadParameter", `${flag} must be an ISO-8601 date or Unix milliseconds, got "${value}"`, { flag });
  }
  return ms;
}

export function collectTag(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf("=");
  if (eq <= 0) fail("BadParameter", `--tag must look like name=value, got "${value}"`, { flag: "--tag" });
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

export function parseOps(value: string): string[] {
  const ops = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (ops.length === 0)
    fail("BadParameter", "--ops must list at least one operation (e.g. sign,verify)", { flag: "--ops" });
  return ops;
}

export function registerKeyCommands(program: Command): void {
  const keys = program.command("keys").description("create, inspect and delete keys in the running pool");

  registerKeysCreateCommand(keys);
  registerKeysGetCommand(keys);
  registerKeysListCommand(keys);
  registerKeysDeleteCommand(keys);
  registerKeyLifecycleCommands(keys);
  registerKeyTransferCommands(keys);
}

function registerKeysCreateCommand(keys: Command): void {
  keys
    .command("create")
    .description(
      "create a key (or a new version of an existing name) in the pool's HSMs; writes commit through the primary",
    )
    .argument("<name>", "key name: 1-127 letters, digits and dashes")
    .requiredOption("--kty <type>", "EC, RSA or oct (AES)")
    .option("--size <bits>", "RSA: 2048 (default), 3072, 4096; oct: 128, 192, 256 (default)")
    .option("--crv <curve>", "EC: P-256 (default), P-256K, P-384, P-521")
    .option("--curve <curve>", "same as --crv")
    .option("--ops <list>", "allowed operations, comma separated (default: all the key type supports)")
    .option("--disabled", "create the key disabled")
    .option("--not-before <time>", "not usable before (ISO-8601 or Unix ms)")
    .option("--expires <time>", "not usable after (ISO-8601 or Unix ms)")
    .option("--tag <name=value>", "a tag (repeatable)", collectTag, {})
    .option("--json", "print the key as JSON")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(
      async (
        name: string,
        opts: {
          kty: string;
          size?: string;
          crv?: string;
          curve?: string;
          ops?: string;
          disabled?: boolean;
          notBefore?: string;
          expires?: string;
          tag: Record<string, string>;
          json?: boolean;
          runDir?: string;
        },
      ) => {
        if (opts.crv !== undefined && opts.curve !== undefined && opts.crv !== opts.curve) {
          fail("BadParameter", `--crv ${opts.crv} and --curve ${opts.curve} disagree; give one of them`);
        }
        const crv = opts.crv ?? opts.curve;
        const request = {
          name,
          kty: opts.kty,
          ...(opts.size !== undefined ? { size: parseWholeNumber("--size", opts.size, 1, 16384) } : {}),
          ...(crv !== undefined ? { crv } : {}),
          ...(opts.ops !== undefined ? { ops: parseOps(opts.ops) } : {}),
          ...(opts.disabled ? { disabled: true } : {}),
          ...(opts.notBefore !== undefined ? { notBeforeMs: parseTime("--not-before", opts.notBefore) } : {}),
          ...(opts.expires !== undefined ? { expiresMs: parseTime("--expires", opts.expires) } : {}),
          tags: opts.tag,
        };
        const key = await withPool(resolveRunDir(opts.runDir), (c) => c.createKey(request));
        out(opts.json ? JSON.stringify(key) : `created ${keyLine(key)}`);
      },
    );
}

function registerKeysGetCommand(keys: Command): void {
  keys
    .command("get")
    .description(
      "show a key's public view: type, operations, attributes, public JWK (never private material)",
    )
    .argument("<name>", "key name")
    .option("--version <n>", "key version (default: latest)")
    .option("--json", "print the key as JSON")
    .option("--jwk", "print only the public JWK")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(
      async (name: string, opts: { version?: string; json?: boolean; jwk?: boolean; runDir?: string }) => {
        const version =
          opts.version === undefined ? 0 : parseWholeNumber("--version", opts.version, 1, 2 ** 31);
        const key = await withPool(resolveRunDir(opts.runDir), (c) => c.getKey(name, version));
        if (opts.jwk) {
          if (!key.publicJwk)
            fail("BadParameter", `key ${name} is a symmetric (${key.kty}) key: it has no public JWK`);
          out(JSON.stringify(key.publicJwk));
        } else if (opts.json) out(JSON.stringify(key));
        else out(`${keyLine(key)}${key.publicJwk ? `\npublic JWK: ${JSON.stringify(key.publicJwk)}` : ""}`);
      },
    );
}

function registerKeysListCommand(keys: Command): void {
  keys
    .command("list")
    .description("list the keys (latest version of each)")
    .option("--json", "print the keys as a JSON array")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (opts: { json?: boolean; runDir?: string }) => {
      const list = await withPool(resolveRunDir(opts.runDir), (c) => c.listKeys());
      if (opts.json) out(JSON.stringify(list));
      else out(list.length === 0 ? "no keys" : list.map(keyLine).join("\n"));
    });
}

function registerKeysDeleteCommand(keys: Command): void {
  keys
    .command("delete")
    .description("soft-delete a key with all its versions (recoverable until purged; see `keys deleted`)")
    .argument("<name>", "key name")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (name: string, opts: { runDir?: string }) => {
      await withPool(resolveRunDir(opts.runDir), (c) => c.deleteKey(name));
      out(`deleted ${name}`);
    });
}
