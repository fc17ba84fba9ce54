/**
 * `hsmpool demo` (what `npm start` runs): start a pool, create a key, sign and
 * verify, SIGKILL the primary, watch the survivors elect a new one and keep
 * serving while the HFC restarts the killed member in place, stop the pool. Everything it makes lives under its own directory
 * (default .hsmpool/demo), so it never touches a pool started with `hsmpool up`.
 */
import { createPublicKey, randomBytes, verify as verifyLocally } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { fail } from "@hsmpool/errors";
import { FabricControllerClient, readHfcInfo, runPaths } from "@hsmpool/wire";
import type { Command } from "commander";
import { PoolClient } from "../sdk/pool-client.js";
import { out } from "./context.js";
import { parseWholeNumber } from "./inputs.js";
import { keyLine } from "./keys.js";
import { DEFAULT_UP_TIMEOUT_MS, startPool, stopPool, waitForStatus } from "./lifecycle.js";
import { healingLine, isSettledHealthy, statusTable } from "./status-format.js";

const DEFAULT_DEMO_DIR = ".hsmpool/demo";
const indent = (text: string) => text.trimEnd().replace(/^/gm, "      ");

async function runDemo(dir: string, timeoutMs: number): Promise<void> {
  const runDir = join(dir, "run");
  const fabricDir = join(dir, "fabric");
  const t0 = Date.now();
  const step = (n: number, text: string) =>
    out(`\n[${n}/8] ${text}  (+${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  const say = (text: string) => out(`      ${text}`);

  if (await readHfcInfo(runDir).catch(() => undefined)) {
    say(`a previous demo pool is still registered in ${runDir}; stopping it`);
    await stopPool(runDir, say).catch(() => undefined);
  }
  await rm(runPaths(runDir).runDir, { recursive: true, force: true });

  step(
    1,
    "starting a pool: the HFC places three TEE nodes in three racks; then activating it (the security domain is " +
      "made in the TEE and downloaded, Shamir-split across three customer RSA keys, quorum 2)",
  );
  const started = await startPool({ runDir, fabricDir, timeoutMs, onProgress: say });
  out(indent(statusTable(started)));

  let client: PoolClient | undefined;
  try {
    client = await PoolClient.connect({ runDir });
    const hfc = new FabricControllerClient(
      (await readHfcInfo(runDir))?.controlAddress ?? fail("NotFound", "the demo HFC vanished"),
    );
    try {
      step(2, "creating an EC P-256 signing key (committed through the primary by Raft)");
      const name = `demo-${randomBytes(3).toString("hex")}`;
      const key = await client.createKey({ name, kty: "EC", crv: "P-256", ops: ["sign", "verify"] });
      say(`created ${keyLine(key)}`);

      step(3, "signing a message inside the HSM and verifying it");
      const message = new TextEncoder().encode("hello from the hsmpool demo");
      const signed = await client.sign({ name, alg: "ES256", data: message });
      say(
        `signature by ${signed.servedBy}: ${Buffer.from(signed.signature).toString("base64").slice(0, 44)}...`,
      );
      say(
        `pool says: ${(await client.verify({ name, alg: "ES256", data: message, signature: signed.signature })) ? "valid" : "INVALID"}`,
      );
      const jwk = key.publicJwk ?? fail("IntegrityError", "the key has no public JWK");
      const local = verifyLocally(
        "sha256",
        message,
        { key: createPublicKey({ key: jwk, format: "jwk" }), dsaEncoding: "ieee-p1363" },
        signed.signature,
      );
      say(`node:crypto with the public JWK says: ${local ? "valid" : "INVALID"}`);

      step(4, "killing the primary with SIGKILL");
      const before = await hfc.status();
      const killed = await hfc.kill("primary", "SIGKILL");
      say(`killed ${killed.nodeId} (pid ${killed.pid}), primary in term ${before.term}`);

      step(5, "waiting for the pool to elect a primary in a new term");
      const killedAt = Date.now();
      const after = await waitForStatus(
        hfc,
        (s) => s.primary !== "" && s.term > before.term,
        timeoutMs,
        "a new primary",
      );
      say(`primary ${after.primary} in term ${after.term}, ${Date.now() - killedAt} ms after the kill`);
      if (after.primary === killed.nodeId) {
        say(`(${killed.nodeId} was restarted so fast that it won the election again)`);
      }

      step(6, "the pool keeps serving: sign again, create a second key, list keys");
      const again = await client.sign({ name, alg: "ES256", data: message });
      say(`signed again by ${again.servedBy}`);
      const second = await client.createKey({ name: `${name}-after`, kty: "RSA", size: 2048 });
      say(`created ${keyLine(second)}`);
      const names = (await client.listKeys()).map((k) => k.name);
      say(`keys: ${names.join(", ")}`);
      if (!names.includes(name) || !names.includes(second.name))
        fail("Internal", "a key acknowledged before or after the failover is missing");

      step(7, `the HFC heals the pool: ${killed.nodeId} is restarted in place and rejoins from its log`);
      const healed = await waitForStatus(hfc, isSettledHealthy, timeoutMs, "healing back to three members");
      const record = healed.healing.findLast((h) => h.memberId === killed.nodeId);
      if (record) say(healingLine(record));
      out(indent(statusTable(healed)));
    } finally {
      hfc.close();
    }
  } finally {
    client?.close();
    step(8, "stopping the pool");
    const stopped = await stopPool(runDir, say);
    say(
      `pool ${stopped.poolId ?? ""} stopped; its logs stay in ${runDir} (\`hsmpool logs n1 --run-dir ${runDir}\`)`,
    );
  }
}

export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description(
      "a guided run (what `npm start` does): start a pool, create a key, sign and verify, kill the primary, " +
        "watch a new one take over while service continues and the HFC heals the pool, stop the pool",
    )
    .option(
      "--dir <dir>",
      "where the demo keeps its fabric and run directory (replaced on each run)",
      DEFAULT_DEMO_DIR,
    )
    .option("--timeout-ms <n>", "how long to wait for each step", String(DEFAULT_UP_TIMEOUT_MS))
    .action(async (opts: { dir: string; timeoutMs: string }) => {
      await runDemo(opts.dir, parseWholeNumber("--timeout-ms", opts.timeoutMs, 1000, 3_600_000));
    });
}
