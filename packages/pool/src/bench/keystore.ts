/**
 * Pool benchmark: the log codec and the key store, each next to a baseline measured in
 * the same run (the SHA-256 the checksum needs; decoding alone; hashing the snapshot), so the ratios show what validation, state updates and canonical snapshots
 * cost. Run: `npm run bench -- pool`.
 */
import { p384 } from "@noble/curves/nist.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { certificateSigningBytes, keyFingerprint, publicKeyFingerprint } from "../certificate.js";
import { type CreateKeyCommand, decodeCommand, encodeCommand, type GenesisCommand } from "../commands.js";
import { base64UrlEncode } from "../jwk.js";
import { KeyStore } from "../keystore.js";

const DURATION_MS = 1_500;

function opsPerSecond(fn: () => void): number {
  for (let i = 0; i < 100; i++) fn();
  let ops = 0;
  const start = performance.now();
  while (performance.now() - start < DURATION_MS) {
    fn();
    ops++;
  }
  return ops / ((performance.now() - start) / 1000);
}

function msOnce(fn: () => void): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

const report = (name: string, value: string, baselineName: string, baseline: string, ratio: number) =>
  console.log(
    `${name.padEnd(30)} ${value.padStart(12)}   ${baselineName} ${baseline}   ratio ${ratio.toFixed(2)}`,
  );

function genesis(): GenesisCommand {
  const secretKey = p384.utils.randomSecretKey();
  const pub = p384.getPublicKey(secretKey, false);
  const publicKey = {
    kty: "EC",
    crv: "P-384",
    x: base64UrlEncode(pub.subarray(1, 49)),
    y: base64UrlEncode(pub.subarray(49)),
  } as const;
  const unsigned = {
    role: "ownerRoot" as const,
    poolId: "bench",
    subject: "n1",
    partitionId: "dev/p0",
    publicKey,
    issuerFingerprint: publicKeyFingerprint(publicKey),
  };
  return {
    kind: "genesis",
    poolId: "bench",
    ownerRootCert: { ...unsigned, signature: p384.sign(certificateSigningBytes(unsigned), secretKey) },
    dekFingerprint: keyFingerprint("dek"),
    poolKeyFingerprint: keyFingerprint("pool"),
    proposer: "n1",
    at: 1,
  };
}

function create(i: number): CreateKeyCommand {
  return {
    kind: "createKey",
    requestId: `req-${i}`,
    name: `key-${i % 5000}`,
    shape: { kty: "RSA", size: 2048 },
    ops: ["sign", "verify"],
    attributes: { enabled: true, notBeforeMs: null, expiresMs: null, tags: { team: "bench" } },
    wrappedMaterial: new Uint8Array(1300).fill(i % 256),
    publicJwk: { kty: "RSA", n: "x".repeat(342), e: "AQAB" },
    at: 1_700_000_000_000 + i,
  };
}

const entry = encodeCommand(create(1));
const hashOps = opsPerSecond(() => sha256(entry));
const decodeOps = opsPerSecond(() => decodeCommand(entry));
report(
  "decodeCommand (createKey)",
  `${decodeOps.toFixed(0)} ops/s`,
  "sha256 of entry",
  `${hashOps.toFixed(0)} ops/s`,
  decodeOps / hashOps,
);

const store = new KeyStore({ maxRememberedRequests: 1024 });
let index = 0;
store.apply({ term: 1, index: ++index, type: "normal", data: encodeCommand(genesis()) });
const entries = Array.from({ length: 20_000 }, (_, i) => encodeCommand(create(i)));
let next = 0;
const applyOps = opsPerSecond(() => {
  store.apply({
    term: 1,
    index: ++index,
    type: "normal",
    data: entries[next++ % entries.length] as Uint8Array,
  });
});
report(
  "KeyStore.apply (createKey)",
  `${applyOps.toFixed(0)} ops/s`,
  "decodeCommand",
  `${decodeOps.toFixed(0)} ops/s`,
  applyOps / decodeOps,
);

let bytes: Uint8Array = new Uint8Array(0);
const snapshotMs = msOnce(() => {
  bytes = store.snapshot();
});
const restoreMs = msOnce(() => KeyStore.restore(bytes));
// Baseline: hashing the snapshot twice, the floor for writing and reading a checksummed format.
const hashMs = msOnce(() => {
  sha256(bytes);
  sha256(bytes);
});
report(
  `snapshot+restore (${store.list().length} keys, ${(bytes.length / 1e6).toFixed(1)} MB)`,
  `${(snapshotMs + restoreMs).toFixed(0)} ms`,
  "2x sha256 of snapshot",
  `${hashMs.toFixed(0)} ms`,
  (snapshotMs + restoreMs) / hashMs,
);
