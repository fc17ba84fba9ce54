/**
 * `hsmpool sd download|status|init-recovery|restore-blob|upload`: the security domain.
 * restore-blob runs offline, on the customer's side (no pool needed).
 */
import { readFile, writeFile } from "node:fs/promises";
import { fail } from "@hsmpool/errors";
import { restoreBlob } from "@hsmpool/security-domain";
import type { Command } from "commander";
import { out, RUN_DIR_HELP, resolveRunDir, withPool } from "./context.js";
import { parseWholeNumber } from "./inputs.js";

const collect = (value: string, previous: string[]) => [...previous, value];

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    return fail(
      "BadParameter",
      `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    );
  }
}

export function registerSecurityDomainCommands(program: Command): void {
  const sd = program
    .command("sd")
    .description("the security domain: activation, and disaster recovery into a blank pool");
  registerSdDownloadCommand(sd);
  registerSdStatusCommand(sd);
  registerSdInitRecoveryCommand(sd);
  registerSdRestoreBlobCommand(sd);
  registerSdUploadCommand(sd);
}

function registerSdDownloadCommand(sd: Command): void {
  sd.command("download")
    .description(
      "activate the pool: it makes its security domain inside the TEE, Shamir-splits the key across your 3-10 RSA " +
        "certificates (quorum of them needed to recover) and returns it; allowed once",
    )
    .requiredOption(
      "--cert <file>",
      "PEM certificate of an RSA key (>= 2048 bits); repeat 3-10 times",
      collect,
      [],
    )
    .requiredOption("--quorum <n>", "how many of the keys a recovery needs (2..number of certificates)")
    .requiredOption("--out <file>", "where to write the security domain (JSON)")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (opts: { cert: string[]; quorum: string; out: string; runDir?: string }) => {
      const quorum = parseWholeNumber("--quorum", opts.quorum, 2, 10);
      if (opts.cert.length < 3 || opts.cert.length > 10)
        fail("BadParameter", `sd download needs 3 to 10 --cert files, not ${opts.cert.length}`);
      if (quorum > opts.cert.length)
        fail("BadParameter", `--quorum ${quorum} is more than the ${opts.cert.length} certificates given`);
      const certificates = await Promise.all(opts.cert.map((c) => readText(c, "certificate")));
      const r = await withPool(resolveRunDir(opts.runDir), (c) =>
        c.downloadSecurityDomain({ certificates, quorum }),
      );
      await writeFile(opts.out, r.securityDomainJson, { mode: 0o600 });
      out(
        `security domain ${r.sdId} written to ${opts.out} (quorum ${quorum} of ${opts.cert.length}); the pool is active`,
      );
    });
}

function registerSdStatusCommand(sd: Command): void {
  sd.command("status")
    .description("provisioned, recovery or active, and the security domain's id and quorum")
    .option("--json", "print JSON")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (opts: { json?: boolean; runDir?: string }) => {
      const s = await withPool(resolveRunDir(opts.runDir), (c) => c.securityDomainStatus());
      if (opts.json) out(JSON.stringify(s));
      else
        out(
          s.state === "active"
            ? `active: security domain ${s.sdId}, quorum ${s.quorum} of ${s.shareCount}`
            : s.state,
        );
    });
}

function registerSdInitRecoveryCommand(sd: Command): void {
  sd.command("init-recovery")
    .description(
      "recovery mode: get the pool's exchange key (made in its primary's TEE, with the attestation quote)",
    )
    .requiredOption(
      "--out <file>",
      "where to write the exchange public key (PEM); the quote goes to <file>.quote",
    )
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (opts: { out: string; runDir?: string }) => {
      const r = await withPool(resolveRunDir(opts.runDir), (c) => c.initRecovery());
      await writeFile(opts.out, r.exchangeKeyPem);
      await writeFile(`${opts.out}.quote`, Buffer.from(r.quote).toString("base64"));
      out(`exchange key of ${r.nodeId} written to ${opts.out} (attestation quote in ${opts.out}.quote)`);
    });
}

function registerSdRestoreBlobCommand(sd: Command): void {
  sd.command("restore-blob")
    .description(
      "offline, on your side: decrypt a quorum of the security domain's shares with your private keys and wrap " +
        "the result to the recovering pool's exchange key",
    )
    .requiredOption("--sd <file>", "the security domain (from sd download)")
    .requiredOption("--key <file>", "PEM private key of one share; repeat for a quorum", collect, [])
    .requiredOption("--exchange-key <file>", "the exchange key from sd init-recovery")
    .requiredOption("--out <file>", "where to write the upload blob")
    .action(async (opts: { sd: string; key: string[]; exchangeKey: string; out: string }) => {
      const blob = await restoreBlob({
        securityDomain: await readText(opts.sd, "security domain"),
        privateKeys: await Promise.all(opts.key.map((k) => readText(k, "private key"))),
        exchangeKey: await readText(opts.exchangeKey, "exchange key"),
      });
      await writeFile(opts.out, JSON.stringify(blob), { mode: 0o600 });
      out(`upload blob for security domain ${blob.sdId} written to ${opts.out}`);
    });
}

function registerSdUploadCommand(sd: Command): void {
  sd.command("upload")
    .description(
      "recovery mode: give the pool the old pool's identity from the upload blob (then restore a backup)",
    )
    .argument("<file>", "the upload blob from sd restore-blob")
    .option("--run-dir <dir>", RUN_DIR_HELP)
    .action(async (file: string, opts: { runDir?: string }) => {
      const blob = await readText(file, "upload blob");
      const r = await withPool(resolveRunDir(opts.runDir), (c) => c.uploadSecurityDomain(blob));
      out(`security domain ${r.sdId} uploaded: the pool holds the old identity and is active`);
    });
}
