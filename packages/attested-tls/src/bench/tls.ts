/**
 * Benchmark: attested TLS vs plain mutual TLS (ordinary self-made CA, same P-256
 * keys) vs insecure gRPC, all on 127.0.0.1 with the same trivial Hello handler so
 * only the transport differs.
 *   - handshakes/s: new channel + first RPC, sequential, in rounds interleaved across
 *     the transports (a reconnect to a peer already verified is answered by the
 *     verifier's evidence cache, as in the pool). Like for like: both TLS transports
 *     negotiate TLS 1.3 with P-256 ECDSA leaves, neither resumes sessions (grpc-js
 *     clients never offer one), and both clients reuse one TLS context across channels
 *     (the attested one per identity, the plain one per credentials object). The
 *     attested chain has one certificate more (leaf -> platform -> vendor root): that
 *     verification is part of what is measured.
 *   - unary round trip p50/p99 on one connected channel (rounds interleaved across
 *     the three transports so machine noise hits them alike)
 * Prints the ratio attested / plain TLS (goal for p50 once connected: <= 1.1).
 */
import "reflect-metadata";
import { generateKeyPairSync, type KeyObject, webcrypto } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { initFabric, launchEnclave, openFabric, signBundle } from "@hsmpool/platform";
import * as x509 from "@peculiar/x509";
import { createAttestedIdentity } from "../attested-identity.js";
import { attestedChannelCredentials } from "../client.js";
import { type PeerGrpcClient, peerProto } from "../peer-proto.js";
import { startAttestedServer } from "../server.js";

const HANDSHAKES = 100;
const WARMUP_CALLS = 200;
// Many short rounds rather than a few long ones: this VM's speed drifts over seconds,
// and a drift during one transport's long round showed up as a difference between them.
const ROUNDS = 10;
const CALLS_PER_ROUND = 200;

const echo: grpc.UntypedServiceImplementation = {
  Hello: (call: grpc.ServerUnaryCall<{ payload: Buffer }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
    cb(null, { nodeId: "bench", payload: call.request.payload }),
};

interface Transport {
  name: string;
  address: string;
  /** A client on a fresh channel (own subchannel pool, so no connection is shared). */
  newClient(): PeerGrpcClient;
  close(): Promise<void>;
}

const FRESH: grpc.ChannelOptions = {
  "grpc.use_local_subchannel_pool": 1,
  "grpc.ssl_target_name_override": "localhost",
};

function hello(client: PeerGrpcClient): Promise<void> {
  return new Promise((resolve, reject) =>
    client.Hello({ nodeId: "bench", payload: Buffer.alloc(32) }, { deadline: Date.now() + 10_000 }, (err) =>
      err ? reject(err) : resolve(),
    ),
  );
}

async function bindGrpc(creds: grpc.ServerCredentials): Promise<{ address: string; close(): Promise<void> }> {
  const server = new grpc.Server();
  server.addService(peerProto().service, echo);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", creds, (e, p) => (e ? reject(e) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

// @peculiar/x509 is typed against the DOM `Crypto`; Node's webcrypto is that object at runtime.
const cryptoProvider = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];
const EC = { name: "ECDSA", namedCurve: "P-256" } as const;
const ECDSA_SHA256 = { name: "ECDSA", hash: "SHA-256" } as const;

/** An ordinary CA and two P-256 leaves (server, client): what a plain mTLS deployment has. */
async function ordinaryPki(): Promise<{ caPem: string; leaves: { keyPem: string; certPem: string }[] }> {
  const caKeys = (await webcrypto.subtle.generateKey(EC, false, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: "CN=bench CA",
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 3_600_000),
      keys: caKeys,
      signingAlgorithm: ECDSA_SHA256,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
      ],
    },
    cryptoProvider,
  );
  const leaves = [];
  for (const cn of ["server", "client"]) {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const leaf = await x509.X509CertificateGenerator.create(
      {
        subject: `CN=${cn}`,
        issuer: ca.subjectName,
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 3_600_000),
        publicKey: new Uint8Array(publicKey.export({ type: "spki", format: "der" })),
        signingKey: caKeys.privateKey,
        signingAlgorithm: ECDSA_SHA256,
        extensions: [
          new x509.ExtendedKeyUsageExtension([
            x509.ExtendedKeyUsage.serverAuth,
            x509.ExtendedKeyUsage.clientAuth,
          ]),
          new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "localhost" }]),
        ],
      },
      cryptoProvider,
    );
    leaves.push({
      keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
      certPem: leaf.toString("pem"),
    });
  }
  return { caPem: ca.toString("pem"), leaves };
}

async function attestedTransport(root: string): Promise<Transport> {
  await initFabric(join(root, "fabric"), { racks: 2, serversPerRack: 1 });
  const fabric = await openFabric(join(root, "fabric"));
  const bundle = join(root, "bundle");
  await mkdir(bundle, { recursive: true });
  await writeFile(join(bundle, "node.js"), "console.log('bench');\n");
  const signer: KeyObject = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  await signBundle(bundle, signer, { productId: 1, svn: 1, debug: false });
  const [s1, s2] = fabric.servers();
  const serverEnclave = await launchEnclave(s1!, bundle);
  const clientEnclave = await launchEnclave(s2!, bundle);
  const policy = {
    allowedSigners: [{ mrsigner: serverEnclave.identity.mrsigner, productId: 1, minSvn: 1 }],
    allowedMeasurements: [serverEnclave.identity.mrenclave],
  };
  const serverId = await createAttestedIdentity(serverEnclave);
  const clientId = await createAttestedIdentity(clientEnclave);
  const server = await startAttestedServer({
    identity: serverId,
    policy,
    vendorRoot: fabric.vendorRootCertDer,
    services: [{ definition: peerProto().service, implementation: echo }],
  });
  return {
    name: "attested TLS",
    address: server.address,
    newClient: () => {
      const channel = attestedChannelCredentials({
        identity: clientId,
        policy,
        vendorRoot: fabric.vendorRootCertDer,
      });
      return new (peerProto().ctor)(server.address, channel.credentials, {
        ...channel.channelOptions,
        ...FRESH,
      });
    },
    close: () => server.close(),
  };
}

async function plainTlsTransport(): Promise<Transport> {
  const { caPem, leaves } = await ordinaryPki();
  const [serverLeaf, clientLeaf] = leaves as [(typeof leaves)[0], (typeof leaves)[0]];
  const server = await bindGrpc(
    grpc.ServerCredentials.createSsl(
      Buffer.from(caPem),
      [{ private_key: Buffer.from(serverLeaf.keyPem), cert_chain: Buffer.from(serverLeaf.certPem) }],
      true,
    ),
  );
  // Made once, as a plain mTLS client would: its key, certificate and CA are parsed into
  // one TLS context that every new channel reuses. The attested client does the same
  // (one context per identity), so both sides pay for the handshake, not for parsing PEM.
  const credentials = grpc.credentials.createSsl(
    Buffer.from(caPem),
    Buffer.from(clientLeaf.keyPem),
    Buffer.from(clientLeaf.certPem),
  );
  return {
    name: "plain TLS",
    address: server.address,
    newClient: () => new (peerProto().ctor)(server.address, credentials, FRESH),
    close: server.close,
  };
}

async function insecureTransport(): Promise<Transport> {
  const server = await bindGrpc(grpc.ServerCredentials.createInsecure());
  return {
    name: "insecure",
    address: server.address,
    newClient: () => new (peerProto().ctor)(server.address, grpc.credentials.createInsecure(), FRESH),
    close: server.close,
  };
}

/** Seconds for `n` sequential handshakes (new channel + first RPC) on `t`. */
async function handshakeSeconds(t: Transport, n: number): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const client = t.newClient();
    await hello(client);
    client.close();
  }
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Handshakes/s per transport, in ROUNDS interleaved across transports so machine noise hits them alike. */
async function handshakeRates(transports: Transport[]): Promise<Map<string, number>> {
  const seconds = new Map<string, number>(transports.map((t) => [t.name, 0]));
  const perRound = Math.ceil(HANDSHAKES / ROUNDS);
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of transports)
      seconds.set(t.name, (seconds.get(t.name) ?? 0) + (await handshakeSeconds(t, perRound)));
  }
  return new Map(transports.map((t) => [t.name, (perRound * ROUNDS) / (seconds.get(t.name) ?? 1)]));
}

async function timeCalls(client: PeerGrpcClient, n: number, into: number[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await hello(client);
    into.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
}

const percentile = (sortedMs: number[], p: number): number =>
  sortedMs[Math.min(sortedMs.length - 1, Math.floor((p / 100) * sortedMs.length))]!;

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "hsmpool-bench-tls-"));
  const transports = [await attestedTransport(root), await plainTlsTransport(), await insecureTransport()];
  try {
    const rate = await handshakeRates(transports);

    const clients = transports.map((t) => t.newClient());
    const samples = transports.map(() => [] as number[]);
    for (const c of clients) await timeCalls(c, WARMUP_CALLS, []);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, c] of clients.entries()) await timeCalls(c, CALLS_PER_ROUND, samples[i]!);
    }
    for (const c of clients) c.close();

    const rows = transports.map((t, i) => {
      const sorted = samples[i]!.sort((a, b) => a - b);
      return {
        name: t.name,
        hps: rate.get(t.name)!,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
      };
    });
    console.log(
      `handshakes: ${HANDSHAKES} sequential (new channel + first RPC); latency: ${ROUNDS * CALLS_PER_ROUND} sequential unary calls after ${WARMUP_CALLS} warm-up, per transport`,
    );
    console.log(
      `${"transport".padEnd(14)}${"handshakes/s".padStart(14)}${"p50 ms".padStart(10)}${"p99 ms".padStart(10)}`,
    );
    for (const r of rows) {
      console.log(
        `${r.name.padEnd(14)}${r.hps.toFixed(1).padStart(14)}${r.p50.toFixed(3).padStart(10)}${r.p99.toFixed(3).padStart(10)}`,
      );
    }
    const [attested, plain] = rows as [(typeof rows)[0], (typeof rows)[0]];
    console.log(
      `ratio attested/plain TLS p50 latency: ${(attested.p50 / plain.p50).toFixed(3)} (goal <= 1.1)`,
    );
    console.log(`ratio attested/plain TLS p99 latency: ${(attested.p99 / plain.p99).toFixed(3)}`);
    console.log(`ratio attested/plain TLS handshakes/s: ${(attested.hps / plain.hps).toFixed(3)}`);
    // Figure lines for `npm run bench -- --json` (scripts/bench.mjs).
    const figure = (name: string, value: number, op: ">=" | "<=", limit: number) =>
      console.log(
        `bench-figure ${JSON.stringify({ name, value: Number(value.toFixed(3)), unit: "x", goal: `${op} ${limit}`, met: op === ">=" ? value >= limit : value <= limit })}`,
      );
    figure("handshake_ratio_to_mtls", attested.hps / plain.hps, ">=", 0.8);
    figure("unary_p50_ratio_to_tls", attested.p50 / plain.p50, "<=", 1.1);
  } finally {
    for (const t of transports) await t.close();
    await rm(root, { recursive: true, force: true });
  }
}

await main();
