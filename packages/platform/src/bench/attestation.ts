/**
 * Platform benchmark: quote issue+verify and seal+unseal throughput, each next to
 * its bare primitive (ECDSA P-256 sign+verify; AES-256-GCM with a fixed key)
 * measured in the same run, so the ratio shows what the formats, chain checks and
 * key derivation cost. Run: `npm run bench -- platform`.
 */
import {
  createCipheriv,
  createDecipheriv,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
} from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initFabric, launchEnclave, openFabric, signBundle, verifyQuote } from "../index.js";

const DURATION_MS = 2_000;

function opsPerSecond(fn: () => void): number {
  for (let i = 0; i < 50; i++) fn();
  let ops = 0;
  const start = performance.now();
  while (performance.now() - start < DURATION_MS) {
    fn();
    ops++;
  }
  return ops / ((performance.now() - start) / 1000);
}

const report = (name: string, ops: number, baselineName: string, baseline: number) =>
  console.log(
    `${name.padEnd(28)} ${ops.toFixed(0).padStart(8)} ops/s   ${baselineName} ${baseline.toFixed(0)} ops/s   ratio ${(ops / baseline).toFixed(2)}`,
  );

const base = await mkdtemp(join(tmpdir(), "hsmpool-bench-platform-"));
try {
  const fabricDir = join(base, "fabric");
  await initFabric(fabricDir, { racks: 1, serversPerRack: 1 });
  const fabric = await openFabric(fabricDir);
  const bundle = join(base, "bundle");
  await mkdir(bundle);
  await writeFile(join(bundle, "main.js"), "console.log('bench')\n");
  const sig = await signBundle(bundle, generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey, {
    productId: 1,
    svn: 1,
    debug: false,
  });
  const enclave = await launchEnclave(fabric.server("r1-s1"), bundle);
  const policy = { allowedSigners: [{ mrsigner: sig.mrsigner }] };
  const reportData = randomBytes(64);

  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const message = randomBytes(800);
  const ecdsa = opsPerSecond(() => {
    const s = sign("sha256", message, { key: ec.privateKey, dsaEncoding: "ieee-p1363" });
    if (!verify("sha256", message, { key: ec.publicKey, dsaEncoding: "ieee-p1363" }, s))
      throw new Error("bad");
  });
  const quote = opsPerSecond(() => {
    verifyQuote(enclave.getQuote(reportData), fabric.vendorRootCertDer, policy, {
      expectedReportData: reportData,
    });
  });
  report("quote issue + verify", quote, "ECDSA sign+verify", ecdsa);

  const plaintext = randomBytes(1024);
  const key = randomBytes(32);
  const gcm = opsPerSecond(() => {
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", key, iv);
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    const d = createDecipheriv("aes-256-gcm", key, iv);
    d.setAuthTag(c.getAuthTag());
    Buffer.concat([d.update(ct), d.final()]);
  });
  const seal = opsPerSecond(() => {
    enclave.unseal(enclave.seal(plaintext, { policy: "mrenclave" }));
  });
  report("seal + unseal 1 KiB", seal, "AES-GCM enc+dec", gcm);
} finally {
  await rm(base, { recursive: true, force: true });
}
