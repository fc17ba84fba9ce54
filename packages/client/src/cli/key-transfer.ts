/**
 * `hsmpool keys backup|restore|import` and the offline `hsmpool byok wrap`: keys in
 * and out of the pool. Backups hold no plaintext material; a BYOK target is wrapped on
 * the customer's side (no pool state) and unwrapped only inside a pool HSM.
 */
import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { fail } from "@hsmpool/errors";
import { makeByokBlob, rsaThumbprint } from "@hsmpool/hsm";
import type { Command } from "commander";
import { out, RUN_DIR_HELP, resolveRunDir, withPool } from "./context.js";
import { parseWholeNumber } from "./inputs.js";
import { keyLine, parseOps } from "./keys.js";

async function readInput(flag: string, path: string): Promise<Buffer> {
  return readFile(path).catch((e: NodeJS.ErrnoException) =>
    fail("BadParameter", `cannot read ${flag} ${path}: ${e.code ?? e.message}`, { flag }),
  );
}

async function writeOutput(flag: string, path: string, data: Uint8Array | string): Promise<void> {
  // Exclusive create: a backup or BYOK blob never silently replaces another file.
  await writeFile(path, data, { flag: "wx", mode: 0o600 }).catch((e: NodeJS.ErrnoException) =>
    fail(
      "BadParameter",
      `cannot write ${flag} ${path}: ${e.code === "EEXIST" ? "the file exists" : (e.code ?? e.message)}`,
      {
        flag,
      },
    ),
  );
}

function parseJsonFile(flag: string, text: Buffer): unknown {
  try {
    return JSON.parse(text.toString("utf8"));
  } catch {
    return fail("BadParameter", `${flag} is not a JSON file`, { flag });
  }
}

export function registerKeyTransferCommands(keys: Command): void {
  registerKeysBackupCommand(keys);
  registerKeysRestoreCommand(keys);
  registerKeysImportCommand(keys);
}

function registerKeysBackupCommand(keys: Command): void {
  keys
    .command("backup")
    .description("write every version of a key to a file only a pool of the same security domain can restore")
    .argument("<name>", "key name")
    .requiredOption("--out <file>", "the backup file to create")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (name: string, opts: { out: string; runDir?: string }) => {
      const blob = await withPool(resolveRunDir(opts.runDir), (c) => c.backupKey(name));
      await writeOutput("--out", opts.out, blob);
      out(`backed up ${name} to ${opts.out} (${blob.length} bytes)`);
    });
}

function registerKeysRestoreCommand(keys: Command): void {
  keys
    .command("restore")
    .description("restore a key backup (refused from another pool, and while the name exists or is deleted)")
    .requiredOption("--in <file>", "a file written by `keys backup`")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (opts: { in: string; runDir?: string }) => {
      const blob = await readInput("--in", opts.in);
      const key = await withPool(resolveRunDir(opts.runDir), (c) => c.restoreKey(blob));
      out(`restored ${keyLine(key)}`);
    });
}

function registerKeysImportCommand(keys: Command): void {
  keys
    .command("import")
    .description(
      "import a key: a private JWK (--jwk), or a BYOK blob (--byok) unwrapped inside the HSM by --kek",
    )
    .argument("<name>", "key name")
    .option("--jwk <file>", "a private key JWK (RSA, EC or oct)")
    .option("--byok <file>", "a .byok blob made by `hsmpool byok wrap` (or a vendor BYOK tool)")
    .option("--kek <name>", "the key-exchange key the BYOK blob was made for")
    .option("--kek-version <n>", "its version (default: latest)")
    .option("--ops <list>", "allowed operations (default: all the key type supports)")
    .option("--json", "print the key as JSON")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(
      async (
        name: string,
        opts: {
          jwk?: string;
          byok?: string;
          kek?: string;
          kekVersion?: string;
          ops?: string;
          json?: boolean;
          runDir?: string;
        },
      ) => {
        if ((opts.jwk === undefined) === (opts.byok === undefined))
          fail("BadParameter", "give exactly one of --jwk or --byok");
        if (opts.byok !== undefined && opts.kek === undefined)
          fail("BadParameter", "--byok needs --kek <key-exchange key name>");
        const ops = opts.ops !== undefined ? { ops: parseOps(opts.ops) } : {};
        const request =
          opts.jwk !== undefined
            ? { name, jwk: parseJsonFile("--jwk", await readInput("--jwk", opts.jwk)) as JsonWebKey, ...ops }
            : {
                name,
                byok: (await readInput("--byok", opts.byok as string)).toString("utf8"),
                kek: {
                  name: opts.kek as string,
                  ...(opts.kekVersion !== undefined
                    ? { version: parseWholeNumber("--kek-version", opts.kekVersion, 1, 2 ** 31) }
                    : {}),
                },
                ...ops,
              };
        const key = await withPool(resolveRunDir(opts.runDir), (c) => c.importKey(request));
        out(opts.json ? JSON.stringify(key) : `imported ${keyLine(key)}`);
      },
    );
}

export function registerByokCommands(program: Command): void {
  const byok = program.command("byok").description("bring your own key: the customer's side, offline");
  registerByokWrapCommand(byok);
}

function registerByokWrapCommand(byok: Command): void {
  byok
    .command("wrap")
    .description(
      "wrap a target key for a pool's key-exchange key with CKM_RSA_AES_KEY_WRAP (offline: uses no pool state)",
    )
    .requiredOption("--kek-jwk <file>", "the KEK's public JWK (from `keys get <kek> --jwk`)")
    .requiredOption("--key <file>", "the target private key (PEM or DER PKCS#8, or a JWK)")
    .requiredOption("--out <file>", "the .byok file to create")
    .option("--kid <id>", "the KEK's id to name in the blob (default: its RFC 7638 thumbprint)")
    .action(async (opts: { kekJwk: string; key: string; out: string; kid?: string }) => {
      const kek = publicKeyOf(parseJsonFile("--kek-jwk", await readInput("--kek-jwk", opts.kekJwk)));
      const target = privateKeyOf(await readInput("--key", opts.key));
      const der =
        target.type === "secret" ? target.export() : target.export({ type: "pkcs8", format: "der" });
      try {
        const blob = makeByokBlob(kek, opts.kid ?? rsaThumbprint(kek), der, "hsmpool byok wrap");
        await writeOutput("--out", opts.out, `${JSON.stringify(blob)}\n`);
      } finally {
        der.fill(0);
      }
      out(`wrapped ${opts.key} for key-exchange key ${opts.kid ?? rsaThumbprint(kek)} into ${opts.out}`);
    });
}

function publicKeyOf(jwk: unknown): KeyObject {
  try {
    const { kid: _kid, key_ops: _ops, ...rest } = jwk as JsonWebKey & { kid?: string };
    const key = createPublicKey({ key: rest, format: "jwk" });
    if (key.asymmetricKeyType !== "rsa") throw new Error("not RSA");
    return key;
  } catch {
    return fail("BadParameter", "--kek-jwk must be the RSA public JWK of a key-exchange key", {
      flag: "--kek-jwk",
    });
  }
}

function privateKeyOf(data: Buffer): KeyObject {
  const text = data.toString("utf8").trim();
  try {
    if (text.startsWith("{")) return createPrivateKey({ key: JSON.parse(text) as JsonWebKey, format: "jwk" });
    if (text.startsWith("-----")) return createPrivateKey(text);
    return createPrivateKey({ key: data, format: "der", type: "pkcs8" });
  } catch {
    return fail("BadParameter", "--key must be a private key (PEM, PKCS#8 DER or JWK)", { flag: "--key" });
  }
}
