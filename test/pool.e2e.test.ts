/**
 * Process e2e: a real pool on loopback — `hsmpool up` starts the HFC, which
 * launches three real node processes (packages/node) — exercised through the CLI
 * and the SDK: operations, bad input, SIGKILL of a secondary and of the primary
 * under a write load, a leak scan, and `hsmpool down`. Waits are conditions with
 * deadlines; afterAll kills anything left.
 */
import {
  constants,
  createPublicKey,
  type JsonWebKey,
  publicEncrypt,
  randomBytes,
  verify as verifyLocally,
} from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type KeyBundle, PoolClient } from "@hsmpool/client";
import { type HsmPoolError, isHsmPoolError } from "@hsmpool/errors";
import { FabricControllerClient, type PoolStatus, readHfcInfo } from "@hsmpool/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  allFiles,
  type CliResult,
  cli,
  encodingsOf,
  ensureSignedNodeBundle,
  type PoolDirs,
  recordedPids,
  removeDirs,
  stopEverything,
  tempPoolDirs,
  transcript,
  waitFor,
} from "./support/pool-harness.js";

let dirs: PoolDirs;
let up: CliResult;
let client: PoolClient;
let hfc: FabricControllerClient;
/** Secrets the test itself handed to the pool; they must never show up in a file. */
const secrets: Uint8Array[] = [];

const run = (...args: string[]) => cli([...args, "--run-dir", dirs.runDir]);
const publicKey = (k: KeyBundle) => createPublicKey({ key: k.publicJwk as JsonWebKey, format: "jwk" });

async function rejection(p: Promise<unknown>): Promise<HsmPoolError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!isHsmPoolError(e))
    throw new Error(`expected an HsmPoolError, got ${e === undefined ? "success" : String(e)}`);
  return e;
}

async function logsTail(): Promise<string> {
  const parts: string[] = [];
  for (const f of ["hfc.log", "nodes/n1/node.log", "nodes/n2/node.log", "nodes/n3/node.log"]) {
    const text = await readFile(join(dirs.runDir, f), "utf8").catch(() => "");
    parts.push(`--- ${f}\n${text.split("\n").slice(-15).join("\n")}`);
  }
  return parts.join("\n");
}

function healthy(s: PoolStatus): boolean {
  return s.state === "healthy" && s.members.every((m) => m.health === "up" && m.ownership === "synced");
}

beforeAll(async () => {
  ensureSignedNodeBundle();
  dirs = await tempPoolDirs("hsmpool-e2e-pool-");
  up = await cli(
    ["up", "--run-dir", dirs.runDir, "--fabric-dir", dirs.fabricDir, "--timeout-ms", "120000", "--json"],
    {
      timeoutMs: 180_000,
    },
  );
  if (up.code !== 0) throw new Error(`hsmpool up failed (${up.code}):\n${up.stderr}\n${await logsTail()}`);
  client = await PoolClient.connect({ runDir: dirs.runDir });
  const info = await readHfcInfo(dirs.runDir);
  hfc = new FabricControllerClient(info?.controlAddress ?? "");
}, 200_000);

afterAll(async () => {
  client?.close();
  hfc?.close();
  if (dirs) {
    await stopEverything(dirs);
    await removeDirs(dirs);
  }
}, 120_000);

describe("a pool of real processes", () => {
  it("hsmpool up reaches three healthy members in three racks, with a primary and ownership synced everywhere", async () => {
    const s = JSON.parse(up.stdout) as Record<string, unknown> & { members: Record<string, unknown>[] };
    expect(Object.keys(s).sort()).toEqual([
      "healing",
      "healingPaused",
      "lostServers",
      "members",
      "metricsUrl",
      "poolId",
      "primary",
      "state",
      "term",
      "upgrade",
    ]);
    expect(s.state).toBe("healthy");
    expect(s.primary).toMatch(/^n[123]$/);
    expect(s.members).toHaveLength(3);
    for (const m of s.members) {
      expect(Object.keys(m).sort()).toEqual(
        [
          "dataAddress",
          "health",
          "healthDetail",
          "id",
          "measurement",
          "metricsUrl",
          "ownership",
          "peerAddress",
          "pid",
          "rack",
          "role",
          "server",
          "term",
        ].sort(),
      );
      expect(m).toMatchObject({ health: "up", ownership: "synced" });
      expect(m.measurement).toMatch(/^[0-9a-f]{64}$/);
      expect(m.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      expect(() => process.kill(m.pid as number, 0)).not.toThrow();
    }
    expect(new Set(s.members.map((m) => m.rack)).size).toBe(3);
    expect(new Set(s.members.map((m) => m.measurement)).size).toBe(1);
    expect(s.members.filter((m) => m.role === "primary").map((m) => m.id)).toEqual([s.primary]);
    expect(up.stderr).toMatch(/HFC started/);

    const status = await run("status", "--json");
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ poolId: s.poolId, state: "healthy" });
    const watched = await run("status", "--watch", "--json", "--max-updates", "1");
    expect(JSON.parse(watched.stdout.trim())).toMatchObject({ poolId: s.poolId });
    const table = await run("status");
    expect(table.stdout).toMatch(new RegExp(`pool ${s.poolId as string}\\s+healthy`));
    const log = await run("logs", "n1", "--lines", "1000");
    expect(log.stdout).toMatch(/"msg":"ready"/);
  }, 180_000);

  it("every key operation round-trips, and signatures verify with node:crypto from the public JWK", async () => {
    const message = randomBytes(200);
    const ec = await client.createKey({ name: "e2e-ec", kty: "EC", crv: "P-256" });
    expect(ec).toMatchObject({ name: "e2e-ec", version: 1, kty: "EC", crv: "P-256" });
    const es = await client.sign({ name: "e2e-ec", alg: "ES256", data: message });
    expect(
      verifyLocally("sha256", message, { key: publicKey(ec), dsaEncoding: "ieee-p1363" }, es.signature),
    ).toBe(true);
    expect(
      await client.verify({ name: "e2e-ec", alg: "ES256", data: message, signature: es.signature }),
    ).toBe(true);
    const bent = Uint8Array.from(es.signature);
    bent[5] = (bent[5] as number) ^ 1;
    expect(await client.verify({ name: "e2e-ec", alg: "ES256", data: message, signature: bent })).toBe(false);

    const rsa = await client.createKey({ name: "e2e-rsa", kty: "RSA", size: 2048 });
    const rs = await client.sign({ name: "e2e-rsa", alg: "RS256", data: message });
    expect(verifyLocally("sha256", message, publicKey(rsa), rs.signature)).toBe(true);
    const ps = await client.sign({ name: "e2e-rsa", alg: "PS256", data: message });
    expect(
      verifyLocally(
        "sha256",
        message,
        {
          key: publicKey(rsa),
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: constants.RSA_PSS_SALTLEN_AUTO,
        },
        ps.signature,
      ),
    ).toBe(true);
    // Encrypted here with the public JWK, decrypted inside the pool's HSM.
    const secret = randomBytes(32);
    secrets.push(secret);
    const local = publicEncrypt(
      { key: publicKey(rsa), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      secret,
    );
    expect(
      Buffer.from(await client.decrypt({ name: "e2e-rsa", alg: "RSA-OAEP-256", ciphertext: local })),
    ).toEqual(secret);
    const viaPool = await client.encrypt({ name: "e2e-rsa", alg: "RSA-OAEP-256", plaintext: secret });
    expect(
      Buffer.from(
        await client.decrypt({ name: "e2e-rsa", alg: "RSA-OAEP-256", ciphertext: viaPool.ciphertext }),
      ),
    ).toEqual(secret);

    const aes = await client.createKey({ name: "e2e-aes", kty: "oct", size: 256 });
    expect(aes.publicJwk).toBeNull();
    const plaintext = randomBytes(64);
    secrets.push(plaintext);
    const aad = randomBytes(16);
    const gcm = await client.encrypt({ name: "e2e-aes", alg: "A256GCM", plaintext, aad });
    expect(gcm.iv.length).toBe(12);
    expect(gcm.tag.length).toBe(16);
    expect(Buffer.from(gcm.ciphertext)).not.toEqual(plaintext);
    expect(Buffer.from(await client.decrypt({ name: "e2e-aes", alg: "A256GCM", ...gcm, aad }))).toEqual(
      plaintext,
    );
    const badTag = Uint8Array.from(gcm.tag);
    badTag[0] = (badTag[0] as number) ^ 1;
    await rejection(client.decrypt({ name: "e2e-aes", alg: "A256GCM", ...gcm, tag: badTag, aad }));

    const dataKey = randomBytes(32);
    secrets.push(dataKey);
    const wrapped = await client.wrapKey({ name: "e2e-aes", alg: "A256KW", key: dataKey });
    expect(
      Buffer.from(await client.unwrapKey({ name: "e2e-aes", alg: "A256KW", wrapped: wrapped.wrapped })),
    ).toEqual(dataKey);
    const rsaWrapped = await client.wrapKey({ name: "e2e-rsa", alg: "RSA-OAEP-256", key: dataKey });
    expect(
      Buffer.from(
        await client.unwrapKey({ name: "e2e-rsa", alg: "RSA-OAEP-256", wrapped: rsaWrapped.wrapped }),
      ),
    ).toEqual(dataKey);

    expect(await client.getKey("e2e-rsa")).toMatchObject({
      name: "e2e-rsa",
      kty: "RSA",
      size: 2048,
      version: 1,
    });
    await client.createKey({ name: "e2e-gone", kty: "EC" });
    expect((await client.listKeys()).map((k) => k.name)).toEqual(
      expect.arrayContaining(["e2e-ec", "e2e-rsa", "e2e-aes", "e2e-gone"]),
    );
    await client.deleteKey("e2e-gone");
    expect((await rejection(client.getKey("e2e-gone"))).code).toBe("KeyNotFound");
    expect((await client.listKeys()).map((k) => k.name)).not.toContain("e2e-gone");
  }, 180_000);

  it("the CLI round-trips keys, signatures and ciphertexts", async () => {
    const created = await run("keys", "create", "cli-ec", "--kty", "EC", "--crv", "P-256", "--json");
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: "cli-ec", kty: "EC" });
    const sig = await run("sign", "cli-ec", "--alg", "ES256", "--text", "hello pool");
    expect(sig.code).toBe(0);
    const signature = sig.stdout.trim();
    expect(
      await run("verify", "cli-ec", "--alg", "ES256", "--text", "hello pool", "--signature", signature),
    ).toMatchObject({
      code: 0,
      stdout: "valid\n",
    });
    expect(
      await run("verify", "cli-ec", "--alg", "ES256", "--text", "hello poOl", "--signature", signature),
    ).toMatchObject({
      code: 1,
      stdout: "invalid\n",
    });
    const jwk = JSON.parse((await run("keys", "get", "cli-ec", "--jwk")).stdout) as JsonWebKey;
    expect(jwk).not.toHaveProperty("d");
    expect(
      verifyLocally(
        "sha256",
        Buffer.from("hello pool"),
        { key: createPublicKey({ key: jwk, format: "jwk" }), dsaEncoding: "ieee-p1363" },
        Buffer.from(signature, "base64"),
      ),
    ).toBe(true);

    expect((await run("keys", "create", "cli-aes", "--kty", "oct", "--size", "256")).stdout).toMatch(
      /created cli-aes v1: oct 256/,
    );
    const marker = `cli-plaintext-${randomBytes(8).toString("hex")}`;
    secrets.push(Buffer.from(marker));
    const enc = await run("encrypt", "cli-aes", "--alg", "A256GCM", "--text", marker);
    expect(enc.code).toBe(0);
    expect(enc.stdout).not.toContain(marker);
    const encFile = join(dirs.root, "enc.json");
    await writeFile(encFile, enc.stdout);
    expect(
      await run("decrypt", "cli-aes", "--alg", "A256GCM", "--input", encFile, "--as-text"),
    ).toMatchObject({
      code: 0,
      stdout: `${marker}\n`,
    });
    const list = await run("keys", "list");
    expect(list.stdout).toMatch(/^cli-ec v1: EC P-256/m);
    expect(await run("keys", "delete", "cli-ec")).toMatchObject({ code: 0, stdout: "deleted cli-ec\n" });
    const gone = await run("keys", "get", "cli-ec");
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^hsmpool: .*\[KeyNotFound\]\n$/);
  }, 180_000);

  it("bad input gets a clear error and changes nothing", async () => {
    await client.createKey({ name: "e2e-verify-only", kty: "RSA", size: 2048, ops: ["sign", "verify"] });
    const before = await client.listKeys();
    const cases: [string, () => Promise<unknown>, string[]][] = [
      ["bad key name", () => client.createKey({ name: "bad name!", kty: "EC" }), ["BadParameter"]],
      ["bad RSA size", () => client.createKey({ name: "e2e-x1", kty: "RSA", size: 1000 }), ["BadParameter"]],
      ["bad AES size", () => client.createKey({ name: "e2e-x2", kty: "oct", size: 100 }), ["BadParameter"]],
      [
        "unknown curve",
        () => client.createKey({ name: "e2e-x3", kty: "EC", crv: "P-999" }),
        ["BadParameter"],
      ],
      ["unknown key type", () => client.createKey({ name: "e2e-x4", kty: "DSA" }), ["BadParameter"]],
      [
        "unknown operation",
        () => client.createKey({ name: "e2e-x5", kty: "EC", ops: ["fly"] }),
        ["BadParameter"],
      ],
      [
        "unknown algorithm",
        () => client.sign({ name: "e2e-ec", alg: "ES999", data: new Uint8Array([1]) }),
        ["BadParameter"],
      ],
      [
        "algorithm of another key type",
        () => client.sign({ name: "e2e-ec", alg: "RS256", data: new Uint8Array([1]) }),
        ["BadParameter", "OperationNotAllowed"],
      ],
      [
        "operation the key does not allow",
        () =>
          client.encrypt({ name: "e2e-verify-only", alg: "RSA-OAEP-256", plaintext: new Uint8Array([1]) }),
        ["OperationNotAllowed", "Forbidden"],
      ],
      [
        "missing key",
        () => client.sign({ name: "e2e-nope", alg: "ES256", data: new Uint8Array([1]) }),
        ["KeyNotFound"],
      ],
      [
        "empty message",
        () => client.sign({ name: "e2e-ec", alg: "ES256", data: new Uint8Array() }),
        ["BadParameter"],
      ],
      ["empty name", () => client.getKey(""), ["BadParameter"]],
    ];
    for (const [what, call, codes] of cases) {
      const e = await rejection(call());
      expect({ what, code: codes.includes(e.code) ? "expected" : e.code }).toEqual({
        what,
        code: "expected",
      });
      expect(e.message.length).toBeGreaterThan(10);
      expect(e.message).not.toMatch(/internal error/i);
    }
    expect(await client.listKeys()).toEqual(before);
    const cliBad = await run("keys", "create", "bad name!", "--kty", "EC");
    expect(cliBad.code).toBe(1);
    expect(cliBad.stderr).toMatch(/^hsmpool: .*\[BadParameter\]\n$/);
    expect(await client.listKeys()).toEqual(before);
  }, 180_000);

  it("after kill -9 of a secondary, writes and reads go on; the restarted node rejoins", async () => {
    const start = await hfc.status();
    const victim = start.members.find((m) => m.role === "secondary");
    if (!victim) throw new Error("no secondary");
    // The HFC would restart it in place at once; paused, it stays down until restarted by hand.
    await hfc.setHealing(true);
    const killed = await run("kill", victim.id);
    expect(killed.stdout).toBe(`sent SIGKILL to ${victim.id} (pid ${victim.pid})\n`);
    await waitFor("the killed secondary to show as down", async () => {
      const s = await hfc.status();
      return s.members.find((m) => m.id === victim.id)?.health === "down" && s.state === "degraded"
        ? s
        : undefined;
    });
    for (let i = 0; i < 5; i++) {
      const k = await client.createKey({ name: `during-secondary-loss-${i}`, kty: "EC" });
      const sig = await client.sign({ name: k.name, alg: "ES256", data: Buffer.from("x") });
      expect(
        verifyLocally(
          "sha256",
          Buffer.from("x"),
          { key: publicKey(k), dsaEncoding: "ieee-p1363" },
          sig.signature,
        ),
      ).toBe(true);
    }
    await hfc.restart(victim.id);
    await waitFor(
      "the pool to be healthy again",
      async () => ((s) => (healthy(s) ? s : undefined))(await hfc.status()),
      90_000,
    );
    await hfc.setHealing(false);
    const names = (await client.listKeys()).map((k) => k.name);
    for (let i = 0; i < 5; i++) expect(names).toContain(`during-secondary-loss-${i}`);
  }, 180_000);

  it("after kill -9 of the primary, survivors elect a new one and every acknowledged create survives", async () => {
    const acked: string[] = [];
    const failures: unknown[] = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; i < 400 && !stop; i++) {
        const name = `load-${i}`;
        try {
          await client.createKey({ name, kty: "EC" });
          acked.push(name);
        } catch (e) {
          failures.push(e);
        }
      }
    })();
    await waitFor("writes before the kill", () => (acked.length >= 5 ? true : undefined));
    const old = await hfc.status();
    const killed = await run("kill", "primary");
    expect(killed.stdout).toMatch(new RegExp(`^sent SIGKILL to ${old.primary} `));
    const ackedAtKill = acked.length;
    const after = await waitFor("a new primary", async () => {
      const s = await hfc.status();
      return s.primary !== "" && s.primary !== old.primary ? s : undefined;
    });
    expect(after.term).toBeGreaterThan(old.term);
    await waitFor(
      "writes acknowledged after the failover",
      () => (acked.length >= ackedAtKill + 5 ? true : undefined),
      60_000,
    );
    stop = true;
    await writer;
    expect(failures).toEqual([]);
    const present = new Set((await client.listKeys()).map((k) => k.name));
    expect(acked.filter((n) => !present.has(n))).toEqual([]);
    const ec = await client.getKey("e2e-ec");
    const sig = await client.sign({ name: "e2e-ec", alg: "ES256", data: Buffer.from("after failover") });
    expect(
      verifyLocally(
        "sha256",
        Buffer.from("after failover"),
        { key: publicKey(ec), dsaEncoding: "ieee-p1363" },
        sig.signature,
      ),
    ).toBe(true);
    expect(sig.servedBy).not.toBe(old.primary);
  }, 180_000);

  it("no private key, no plaintext and no wrapped key the test sent appears in the run dir, the logs or CLI output", async () => {
    const files = await allFiles(dirs.runDir);
    expect(files.some((f) => f.endsWith("node.log"))).toBe(true);
    expect(files.some((f) => f.includes(`${join("nodes", "n1", "state")}`))).toBe(true);
    const needles = secrets.flatMap(encodingsOf);
    for (const file of files) {
      const bytes = await readFile(file);
      expect({ file, pem: /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(bytes.toString("latin1")) }).toEqual({
        file,
        pem: false,
      });
      for (const needle of needles) {
        expect({ file, leaked: bytes.includes(needle) }).toEqual({ file, leaked: false });
      }
    }
    for (const output of transcript) expect(output).not.toMatch(/PRIVATE KEY/);
  }, 180_000);

  it("hsmpool down stops the HFC and every node and removes hfc.json", async () => {
    const pids = await recordedPids(dirs.runDir);
    expect(pids.length).toBeGreaterThanOrEqual(3);
    const down = await run("down");
    expect(down.code).toBe(0);
    expect(down.stdout).toMatch(/^pool pool-[0-9a-f]+ stopped\n$/);
    expect(await readHfcInfo(dirs.runDir)).toBeUndefined();
    await waitFor("every process to exit", () =>
      pids.every((pid) => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      })
        ? true
        : undefined,
    );
    const status = await run("status");
    expect(status.stderr).toMatch(/no pool is running/);
  }, 180_000);
});
