/**
 * HSM operation throughput against the same raw node:crypto operation, measured in
 * the same run: sequential awaits (one operation in flight) on both sides, warm-up
 * first, then alternating rounds so background load hits both sides alike.
 * Goal: ratio >= 0.90 for ES256 and RS256 sign (the HSM adds little over OpenSSL).
 */
import {
  constants,
  createCipheriv,
  createPublicKey,
  generateKeyPairSync,
  generateKeySync,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  sign,
  verify,
} from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HsmDevice } from "../index.js";

const WARMUP_MS = 150;
const ROUNDS = 4;
const ROUND_MS = 200;
const GOAL_RATIO = 0.9;

type Op = () => Promise<unknown>;

/** Runs `op` back to back for `budgetMs`; returns the number of completed operations and elapsed ms. */
async function runFor(op: Op, budgetMs: number): Promise<{ count: number; elapsedMs: number }> {
  const start = performance.now();
  let count = 0;
  let now = start;
  while (now - start < budgetMs) {
    for (let i = 0; i < 8; i++) await op();
    count += 8;
    now = performance.now();
  }
  return { count, elapsedMs: now - start };
}

async function compare(hsmOp: Op, rawOp: Op): Promise<{ hsm: number; raw: number }> {
  await runFor(hsmOp, WARMUP_MS);
  await runFor(rawOp, WARMUP_MS);
  const total = { hsm: { count: 0, elapsedMs: 0 }, raw: { count: 0, elapsedMs: 0 } };
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which side goes first so drift in machine load does not favour one side.
    const order = round % 2 === 0 ? (["hsm", "raw"] as const) : (["raw", "hsm"] as const);
    for (const side of order) {
      const r = await runFor(side === "hsm" ? hsmOp : rawOp, ROUND_MS);
      total[side].count += r.count;
      total[side].elapsedMs += r.elapsedMs;
    }
  }
  return {
    hsm: (total.hsm.count * 1000) / total.hsm.elapsedMs,
    raw: (total.raw.count * 1000) / total.raw.elapsedMs,
  };
}

function rawKeys() {
  const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { ec, rsa, aes: generateKeySync("aes", { length: 256 }) };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "hsmpool-bench-hsm-"));
  const device = await HsmDevice.create(join(dir, "hsm"), { partitionCount: 1 });
  try {
    const session = await device.partition(0).login(await device.partition(0).initialize());
    const ec = await session.generateKey({ kty: "EC", crv: "P-256", ops: ["sign", "verify"] });
    const rsa = await session.generateKey({ kty: "RSA", size: 2048, ops: ["sign", "decrypt"] });
    const aes = await session.generateKey({ kty: "oct", size: 256, ops: ["encrypt", "wrapKey"] });
    const raw = rawKeys();
    const message = randomBytes(64);
    const cek = randomBytes(32);
    const esSignature = await session.sign(ec, "ES256", message);
    const rawEsSignature = sign("sha256", message, { key: raw.ec.privateKey, dsaEncoding: "ieee-p1363" });
    const oaep = (key: KeyObject) => ({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" });
    const rsaJwk = await session.getPublicJwk(rsa);
    const hsmCiphertext = publicEncrypt(oaep(createPublicKey({ key: rsaJwk, format: "jwk" })), cek);
    const rawCiphertext = publicEncrypt(oaep(raw.rsa.publicKey), cek);
    const pss = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST };

    const cases: { name: string; hsm: Op; raw: Op; goal?: boolean }[] = [
      {
        name: "ES256 sign",
        goal: true,
        hsm: () => session.sign(ec, "ES256", message),
        raw: async () => sign("sha256", message, { key: raw.ec.privateKey, dsaEncoding: "ieee-p1363" }),
      },
      {
        name: "RS256 sign",
        goal: true,
        hsm: () => session.sign(rsa, "RS256", message),
        raw: async () => sign("sha256", message, raw.rsa.privateKey),
      },
      {
        name: "PS256 sign",
        hsm: () => session.sign(rsa, "PS256", message),
        raw: async () => sign("sha256", message, { key: raw.rsa.privateKey, ...pss }),
      },
      {
        name: "ES256 verify",
        hsm: () => session.verify(ec, "ES256", message, esSignature),
        raw: async () =>
          verify("sha256", message, { key: raw.ec.publicKey, dsaEncoding: "ieee-p1363" }, rawEsSignature),
      },
      {
        name: "A256GCM encrypt (64 B)",
        hsm: () => session.encrypt(aes, "A256GCM", message),
        raw: async () => {
          const iv = randomBytes(12);
          const cipher = createCipheriv("aes-256-gcm", raw.aes, iv);
          return [Buffer.concat([cipher.update(message), cipher.final()]), iv, cipher.getAuthTag()];
        },
      },
      {
        name: "RSA-OAEP-256 decrypt",
        hsm: () => session.decrypt(rsa, "RSA-OAEP-256", hsmCiphertext),
        raw: async () => privateDecrypt(oaep(raw.rsa.privateKey), rawCiphertext),
      },
      {
        name: "A256KW wrap (32 B)",
        hsm: () => session.wrapKey(aes, "A256KW", cek),
        raw: async () => {
          const cipher = createCipheriv("id-aes256-wrap", raw.aes, Buffer.from("a6a6a6a6a6a6a6a6", "hex"));
          return Buffer.concat([cipher.update(cek), cipher.final()]);
        },
      },
    ];

    console.log("operation               HSM ops/s   node:crypto ops/s   ratio (HSM / node)");
    const misses: string[] = [];
    for (const c of cases) {
      const { hsm, raw: baseline } = await compare(c.hsm, c.raw);
      const ratio = hsm / baseline;
      const mark = c.goal
        ? ratio >= GOAL_RATIO
          ? `  goal >= ${GOAL_RATIO}: met`
          : `  goal >= ${GOAL_RATIO}: MISSED`
        : "";
      if (c.goal && ratio < GOAL_RATIO) misses.push(c.name);
      console.log(
        `${c.name.padEnd(22)} ${hsm.toFixed(0).padStart(10)} ${baseline.toFixed(0).padStart(19)} ${ratio.toFixed(3).padStart(10)}${mark}`,
      );
    }
    console.log(misses.length === 0 ? "all goals met" : `goals missed: ${misses.join(", ")}`);
  } finally {
    await device.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
