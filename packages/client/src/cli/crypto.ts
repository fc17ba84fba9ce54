/** `hsmpool sign|verify|encrypt|decrypt|wrap-key|unwrap-key`: cryptographic operations with pool keys. */
import { readFile, writeFile } from "node:fs/promises";
import { fail } from "@hsmpool/errors";
import type { Command } from "commander";
import { out, RUN_DIR_HELP, resolveRunDir, withPool } from "./context.js";
import { requestExitCode } from "./exit-code.js";
import {
  type ByteInputFlags,
  decodeBase64,
  encodeBase64,
  parseWholeNumber,
  readByteInput,
} from "./inputs.js";

const INPUT_HELP = {
  data: "input as base64",
  text: "input as a UTF-8 string",
  file: "input from a file (raw bytes)",
};

function withByteInput(cmd: Command): Command {
  return cmd
    .option("--data <base64>", INPUT_HELP.data)
    .option("--text <string>", INPUT_HELP.text)
    .option("--file <path>", INPUT_HELP.file);
}

function versionOf(value: string | undefined): number {
  return value === undefined ? 0 : parseWholeNumber("--version", value, 1, 2 ** 31);
}

const optionalB64 = (flag: string, v: string | undefined) =>
  v === undefined ? undefined : decodeBase64(flag, v);

interface Ciphertext {
  ciphertext: Uint8Array;
  iv?: Uint8Array;
  tag?: Uint8Array;
}

/** `--input <file|->`: the JSON `hsmpool encrypt` printed. */
async function readEncryptOutput(path: string): Promise<Ciphertext> {
  const text =
    path === "-"
      ? await new Promise<string>((resolve, reject) => {
          let s = "";
          process.stdin.setEncoding("utf8");
          process.stdin.on("data", (c) => {
            s += c;
          });
          process.stdin.on("end", () => resolve(s));
          process.stdin.on("error", reject);
        })
      : await readFile(path, "utf8").catch((e: NodeJS.ErrnoException) =>
          fail("BadParameter", `cannot read --input ${path}: ${e.code ?? e.message}`),
        );
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return fail("BadParameter", `--input ${path} is not the JSON that \`hsmpool encrypt\` prints`);
  }
  const d = doc as Record<string, unknown>;
  if (typeof d?.ciphertext !== "string") fail("BadParameter", `--input ${path} has no "ciphertext"`);
  const field = (k: string) =>
    typeof d[k] === "string" && d[k] !== "" ? decodeBase64(k, d[k] as string) : undefined;
  const iv = field("iv");
  const tag = field("tag");
  return {
    ciphertext: decodeBase64("ciphertext", d.ciphertext as string),
    ...(iv ? { iv } : {}),
    ...(tag ? { tag } : {}),
  };
}

export function registerCryptoCommands(program: Command): void {
  registerSignCommand(program);
  registerVerifyCommand(program);
  registerEncryptCommand(program);
  registerDecryptCommand(program);
  registerWrapKeyCommand(program);
  registerUnwrapKeyCommand(program);
  registerRngCommand(program);
}

function registerRngCommand(program: Command): void {
  program
    .command("rng")
    .description("random bytes from a pool member's HSM, printed as base64")
    .requiredOption("--count <n>", "how many bytes, 1 to 128")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (opts: { count: string; runDir?: string }) => {
      const count = parseWholeNumber("--count", opts.count, 1, 128);
      out(encodeBase64(await withPool(resolveRunDir(opts.runDir), (c) => c.getRandomBytes(count))));
    });
}

function registerSignCommand(program: Command): void {
  withByteInput(
    program
      .command("sign")
      .description(
        "sign a message with a pool key (the HSM hashes it with the algorithm's hash); prints the signature as base64",
      )
      .argument("<key>", "key name")
      .requiredOption(
        "--alg <alg>",
        "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES256K ES384 ES512 HS256 HS384 HS512",
      ),
  )
    .option("--version <n>", "key version (default: latest)")
    .option("--json", "print { signature, version, servedBy }")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(
      async (
        name: string,
        opts: ByteInputFlags & { alg: string; version?: string; json?: boolean; runDir?: string },
      ) => {
        const data = await readByteInput(opts, "message to sign");
        const version = versionOf(opts.version);
        const r = await withPool(resolveRunDir(opts.runDir), (c) =>
          c.sign({ name, version, alg: opts.alg, data }),
        );
        const signature = encodeBase64(r.signature);
        out(opts.json ? JSON.stringify({ signature, version: r.version, servedBy: r.servedBy }) : signature);
      },
    );
}

function registerVerifyCommand(program: Command): void {
  withByteInput(
    program
      .command("verify")
      .description("check a signature with a pool key; prints valid or invalid (exit status 1 when invalid)")
      .argument("<key>", "key name")
      .requiredOption("--alg <alg>", "the algorithm the signature was made with")
      .requiredOption("--signature <base64>", "the signature"),
  )
    .option("--version <n>", "key version (default: latest)")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(
      async (
        name: string,
        opts: ByteInputFlags & { alg: string; signature: string; version?: string; runDir?: string },
      ) => {
        const data = await readByteInput(opts, "signed message");
        const signature = decodeBase64("--signature", opts.signature);
        const version = versionOf(opts.version);
        const valid = await withPool(resolveRunDir(opts.runDir), (c) =>
          c.verify({ name, version, alg: opts.alg, data, signature }),
        );
        out(valid ? "valid" : "invalid");
        if (!valid) requestExitCode(1);
      },
    );
}

function registerEncryptCommand(program: Command): void {
  withByteInput(
    program
      .command("encrypt")
      .description(
        "encrypt with a pool key; prints one JSON line { ciphertext, iv, tag, version } (base64 fields)",
      )
      .argument("<key>", "key name")
      .requiredOption(
        "--alg <alg>",
        "RSA-OAEP RSA-OAEP-256 RSA1_5 A128GCM ... A256GCM A128CBC ... A256CBCPAD",
      ),
  )
    .option("--iv <base64>", "CBC only: the IV (GCM IVs are always made by the HSM)")
    .option("--aad <base64>", "GCM only: additional authenticated data")
    .option("--version <n>", "key version (default: latest)")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(
      async (
        name: string,
        opts: ByteInputFlags & { alg: string; iv?: string; aad?: string; version?: string; runDir?: string },
      ) => {
        const plaintext = await readByteInput(opts, "plaintext");
        const iv = optionalB64("--iv", opts.iv);
        const aad = optionalB64("--aad", opts.aad);
        const version = versionOf(opts.version);
        const r = await withPool(resolveRunDir(opts.runDir), (c) =>
          c.encrypt({
            name,
            version,
            alg: opts.alg,
            plaintext,
            ...(iv ? { iv } : {}),
            ...(aad ? { aad } : {}),
          }),
        );
        out(
          JSON.stringify({
            ciphertext: encodeBase64(r.ciphertext),
            iv: encodeBase64(r.iv),
            tag: encodeBase64(r.tag),
            version: r.version,
          }),
        );
      },
    );
}

function registerDecryptCommand(program: Command): void {
  program
    .command("decrypt")
    .description("decrypt with a pool key; prints the plaintext as base64 (or --as-text, or --out <file>)")
    .argument("<key>", "key name")
    .requiredOption("--alg <alg>", "the algorithm the ciphertext was made with")
    .option("--ciphertext <base64>", "the ciphertext")
    .option("--iv <base64>", "the IV (CBC, GCM)")
    .option("--tag <base64>", "GCM: the authentication tag")
    .option(
      "--input <file>",
      "the JSON line `hsmpool encrypt` printed (- for stdin), instead of --ciphertext/--iv/--tag",
    )
    .option("--aad <base64>", "GCM only: additional authenticated data")
    .option("--as-text", "print the plaintext as UTF-8 text")
    .option("--out <file>", "write the raw plaintext to a file instead of printing it")
    .option("--version <n>", "key version (default: latest)")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(
      async (
        name: string,
        opts: {
          alg: string;
          ciphertext?: string;
          iv?: string;
          tag?: string;
          input?: string;
          aad?: string;
          asText?: boolean;
          out?: string;
          version?: string;
          runDir?: string;
        },
      ) => {
        if ((opts.input === undefined) === (opts.ciphertext === undefined)) {
          fail(
            "BadParameter",
            "give the ciphertext with exactly one of --ciphertext <base64> or --input <file>",
          );
        }
        const ct: Ciphertext =
          opts.input !== undefined
            ? await readEncryptOutput(opts.input)
            : {
                ciphertext: decodeBase64("--ciphertext", opts.ciphertext as string),
                ...(opts.iv !== undefined ? { iv: decodeBase64("--iv", opts.iv) } : {}),
                ...(opts.tag !== undefined ? { tag: decodeBase64("--tag", opts.tag) } : {}),
              };
        const aad = optionalB64("--aad", opts.aad);
        const version = versionOf(opts.version);
        const plaintext = await withPool(resolveRunDir(opts.runDir), (c) =>
          c.decrypt({ name, version, alg: opts.alg, ...ct, ...(aad ? { aad } : {}) }),
        );
        if (opts.out !== undefined) {
          await writeFile(opts.out, plaintext, { mode: 0o600 });
          out(`wrote ${plaintext.length} bytes to ${opts.out}`);
        } else out(opts.asText ? Buffer.from(plaintext).toString("utf8") : encodeBase64(plaintext));
      },
    );
}

function registerWrapKeyCommand(program: Command): void {
  withByteInput(
    program
      .command("wrap-key")
      .description("wrap (encrypt) key bytes with a pool key; prints the wrapped key as base64")
      .argument("<key>", "name of the wrapping key")
      .requiredOption("--alg <alg>", "A128KW A192KW A256KW RSA-OAEP RSA-OAEP-256"),
  )
    .option("--version <n>", "key version (default: latest)")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(
      async (name: string, opts: ByteInputFlags & { alg: string; version?: string; runDir?: string }) => {
        const key = await readByteInput(opts, "key to wrap");
        const version = versionOf(opts.version);
        const r = await withPool(resolveRunDir(opts.runDir), (c) =>
          c.wrapKey({ name, version, alg: opts.alg, key }),
        );
        out(encodeBase64(r.wrapped));
      },
    );
}

function registerUnwrapKeyCommand(program: Command): void {
  program
    .command("unwrap-key")
    .description("unwrap a wrapped key with a pool key; prints the key bytes as base64 (or --out <file>)")
    .argument("<key>", "name of the wrapping key")
    .requiredOption("--alg <alg>", "the algorithm it was wrapped with")
    .requiredOption("--wrapped <base64>", "the wrapped key")
    .option("--out <file>", "write the raw key bytes to a file (mode 0600) instead of printing them")
    .option("--version <n>", "key version (default: latest)")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(
      async (
        name: string,
        opts: { alg: string; wrapped: string; out?: string; version?: string; runDir?: string },
      ) => {
        const wrapped = decodeBase64("--wrapped", opts.wrapped);
        const version = versionOf(opts.version);
        const key = await withPool(resolveRunDir(opts.runDir), (c) =>
          c.unwrapKey({ name, version, alg: opts.alg, wrapped }),
        );
        if (opts.out !== undefined) {
          await writeFile(opts.out, key, { mode: 0o600 });
          out(`wrote ${key.length} bytes to ${opts.out}`);
        } else out(encodeBase64(key));
      },
    );
}
