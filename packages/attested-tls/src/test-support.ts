/**
 * Test fixtures (excluded from the build): a real fabric in a temp dir, bundles
 * signed in every variant the rejection tests need, enclaves launched on
 * different servers, and raw grpc-js peers that skip attestation on their side so
 * each test isolates the decision of the side under test.
 */
import "reflect-metadata";
import { generateKeyPairSync, type KeyObject, webcrypto } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { isHsmPoolError } from "@hsmpool/errors";
import {
  type Enclave,
  type Fabric,
  initFabric,
  launchEnclave,
  openFabric,
  type Policy,
  type SigstructFields,
  signBundle,
} from "@hsmpool/platform";
import * as x509 from "@peculiar/x509";
import {
  type AttestedIdentity,
  createAttestedIdentity,
  issueAttestedLeaf,
  tlsPrivateKeyPem,
} from "./attested-identity.js";
import { type HelloResponse, type PeerGrpcClient, peerProto } from "./peer-proto.js";
import { RA_TLS_QUOTE_OID } from "./quote-binding.js";

const made: string[] = [];

export async function tempDir(prefix = "hsmpool-atls-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

const ecKey = (): KeyObject => generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;

async function signedBundle(
  root: string,
  name: string,
  content: string,
  key: KeyObject,
  fields: SigstructFields,
): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "node.js"), content);
  await writeFile(join(dir, "VERSION"), "1\n");
  await signBundle(dir, key, fields);
  return dir;
}

export const GOOD_FIELDS: SigstructFields = { productId: 7, svn: 3, debug: false };

/** Everything the attestation tests need, built once per test file. */
export interface World {
  fabric: Fabric;
  /** A second, unrelated fabric: its platforms do not chain to `fabric`'s vendor root. */
  foreignFabric: Fabric;
  policy: Policy;
  /** Enclaves of the one good bundle on two servers in different racks. */
  goodA: Enclave;
  goodB: Enclave;
  /** Same signer, different code (its MRENCLAVE is not in the policy). */
  tampered: Enclave;
  otherSigner: Enclave;
  debug: Enclave;
  lowSvn: Enclave;
  /** The good bundle running on a platform of `foreignFabric`. */
  foreign: Enclave;
}

export async function buildWorld(): Promise<World> {
  const root = await tempDir();
  await initFabric(join(root, "fabric"), { racks: 3, serversPerRack: 1 });
  const fabric = await openFabric(join(root, "fabric"));
  await initFabric(join(root, "foreign"), { racks: 1, serversPerRack: 1 });
  const foreignFabric = await openFabric(join(root, "foreign"));
  const signer = ecKey();
  const bundles = join(root, "bundles");
  const code = "console.log('hsmpool node v1');\n";
  const good = await signedBundle(bundles, "good", code, signer, GOOD_FIELDS);
  const tampered = await signedBundle(bundles, "tampered", `${code}// backdoor\n`, signer, GOOD_FIELDS);
  const other = await signedBundle(bundles, "other", code, ecKey(), GOOD_FIELDS);
  const debug = await signedBundle(bundles, "debug", code, signer, { ...GOOD_FIELDS, debug: true });
  const lowSvn = await signedBundle(bundles, "low-svn", code, signer, { ...GOOD_FIELDS, svn: 2 });
  const [s1, s2, s3] = fabric.servers();
  const goodA = await launchEnclave(s1!, good);
  const goodB = await launchEnclave(s2!, good);
  return {
    fabric,
    foreignFabric,
    policy: {
      allowedSigners: [{ mrsigner: goodA.identity.mrsigner, productId: GOOD_FIELDS.productId, minSvn: 3 }],
      allowedMeasurements: [goodA.identity.mrenclave],
      allowDebug: false,
    },
    goodA,
    goodB,
    tampered: await launchEnclave(s3!, tampered),
    otherSigner: await launchEnclave(s3!, other),
    debug: await launchEnclave(s3!, debug),
    lowSvn: await launchEnclave(s3!, lowSvn),
    foreign: await launchEnclave(foreignFabric.servers()[0]!, good),
  };
}

// @peculiar/x509 is typed against the DOM `Crypto`; Node's webcrypto is that object at runtime.
const cryptoProvider = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];
const EC = { name: "ECDSA", namedCurve: "P-256" } as const;
const SHA256_ECDSA = { name: "ECDSA", hash: "SHA-256" } as const;

/** TLS key material a test peer presents: a cert chain and its key, both PEM. */
export interface TlsMaterial {
  certChainPem: string;
  keyPem: string;
}

export function materialOf(identity: AttestedIdentity): TlsMaterial {
  return { certChainPem: identity.certChainPem, keyPem: tlsPrivateKeyPem(identity) };
}

/** An ordinary CA (not a platform) and a leaf it issued: what a normal TLS deployment has. */
export async function ordinaryCa(now = new Date()): Promise<{ caPem: string; leaf: TlsMaterial }> {
  const caKeys = (await webcrypto.subtle.generateKey(EC, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: "CN=ordinary test CA",
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + 86_400_000),
      keys: caKeys,
      signingAlgorithm: SHA256_ECDSA,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
      ],
    },
    cryptoProvider,
  );
  const leafKeys = (await webcrypto.subtle.generateKey(EC, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const leaf = await x509.X509CertificateGenerator.create(
    {
      subject: "CN=localhost",
      issuer: ca.subjectName,
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + 86_400_000),
      publicKey: leafKeys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: SHA256_ECDSA,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.ExtendedKeyUsageExtension([
          x509.ExtendedKeyUsage.serverAuth,
          x509.ExtendedKeyUsage.clientAuth,
        ]),
        new x509.SubjectAlternativeNameExtension([
          { type: "ip", value: "127.0.0.1" },
          { type: "dns", value: "localhost" },
        ]),
      ],
    },
    cryptoProvider,
  );
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", leafKeys.privateKey);
  return {
    caPem: ca.toString("pem"),
    leaf: {
      certChainPem: `${leaf.toString("pem")}\n${ca.toString("pem")}\n`,
      keyPem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY"),
    },
  };
}

/** Counts handler invocations: the proof that a rejected peer never reached application code. */
export class HandlerCounter {
  calls = 0;
  readonly implementation: grpc.UntypedServiceImplementation = {
    Hello: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      this.calls++;
      cb(null, { nodeId: "counter", payload: Buffer.alloc(0) });
      void call;
    },
  };
}

/**
 * A server that presents `material` but accepts any client (no client verification):
 * the "bad server" whose refusal must come from the client alone. `material: null`
 * serves plaintext gRPC (no certificate at all).
 */
export async function rawServer(
  material: TlsMaterial | null,
  counter: HandlerCounter,
): Promise<{ address: string; close(): Promise<void> }> {
  const server = new grpc.Server();
  server.addService(peerProto().service, counter.implementation);
  const creds = material
    ? grpc.ServerCredentials.createSsl(
        null,
        [{ private_key: Buffer.from(material.keyPem), cert_chain: Buffer.from(material.certChainPem) }],
        false,
      )
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 500).unref();
      }),
  };
}

/** A client that trusts the vendor root but checks nothing else: the "bad client" side. `material: null` sends no certificate. */
export function rawClient(
  address: string,
  vendorRootPem: string,
  material: TlsMaterial | null,
): PeerGrpcClient {
  const creds = grpc.credentials.createSsl(
    Buffer.from(vendorRootPem),
    material ? Buffer.from(material.keyPem) : null,
    material ? Buffer.from(material.certChainPem) : null,
    { checkServerIdentity: () => undefined },
  );
  return new (peerProto().ctor)(address, creds, { "grpc.ssl_target_name_override": "localhost" });
}

export function callHello(
  client: PeerGrpcClient,
  payload: Uint8Array = new Uint8Array(0),
  timeoutMs = 5_000,
): Promise<HelloResponse> {
  return new Promise((resolve, reject) =>
    client.Hello(
      { nodeId: "test-client", payload: Buffer.from(payload) },
      { deadline: Date.now() + timeoutMs },
      (err, res) => (err ? reject(err) : resolve(res!)),
    ),
  );
}

/** Runs `fn` and returns the HsmPoolError it throws; fails the test if it returns or throws anything else. */
export async function caught(fn: () => unknown): Promise<import("@hsmpool/errors").HsmPoolError> {
  try {
    await fn();
  } catch (e) {
    if (isHsmPoolError(e)) return e;
    throw new Error(`expected an HsmPoolError, got ${String(e)}`);
  }
  throw new Error("expected an HsmPoolError, but the call succeeded");
}

const derToPem = (der: Uint8Array): string => x509.PemConverter.encode(der, "CERTIFICATE");

export function quoteOfCert(leafDer: Uint8Array): Uint8Array {
  const ext = new x509.X509Certificate(leafDer).getExtension(RA_TLS_QUOTE_OID);
  if (!ext) throw new Error("test fixture: certificate has no quote");
  return new Uint8Array(ext.value);
}

/**
 * The key-substitution attack: a genuine platform issuer (of `issuerEnclave`) certifies
 * a fresh key made outside any enclave, with the quote copied from `victim`'s
 * certificate. Everything verifies except the quote's binding to the key.
 */
export async function forgedIdentity(
  victim: AttestedIdentity,
  issuerEnclave: Enclave,
): Promise<{ chainDer: Uint8Array[]; material: TlsMaterial }> {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const issuer = await issuerEnclave.quotingIssuer();
  const now = Date.now();
  const leaf = await issueAttestedLeaf({
    issuer,
    spkiDer: new Uint8Array(publicKey.export({ type: "spki", format: "der" })),
    quote: quoteOfCert(victim.certChainDer[0]!),
    commonName: "forged",
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
  });
  const chainDer = [leaf, ...issuer.chainDer];
  return {
    chainDer,
    material: {
      certChainPem: chainDer.map(derToPem).join("\n"),
      keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    },
  };
}

/**
 * A leaf for a fresh key issued by `issuerEnclave`'s genuine platform issuer, with
 * whatever quote a test wants in it (`null`: no quote extension at all).
 */
export async function customLeaf(
  issuerEnclave: Enclave,
  quoteFor: ((spkiDer: Uint8Array) => Uint8Array) | null,
): Promise<Uint8Array[]> {
  const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spkiDer = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
  const issuer = await issuerEnclave.quotingIssuer();
  const now = Date.now();
  if (quoteFor) {
    const leaf = await issueAttestedLeaf({
      issuer,
      spkiDer,
      quote: quoteFor(spkiDer),
      commonName: "custom",
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 3_600_000),
    });
    return [leaf, ...issuer.chainDer];
  }
  const platform = new x509.X509Certificate(issuer.chainDer[0]!);
  const leaf = await x509.X509CertificateGenerator.create(
    {
      subject: "CN=no quote",
      issuer: platform.subjectName,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 3_600_000),
      publicKey: spkiDer,
      signingKey: issuer.signingKey,
      signingAlgorithm: SHA256_ECDSA,
      extensions: [new x509.BasicConstraintsExtension(false, undefined, true)],
    },
    cryptoProvider,
  );
  return [new Uint8Array(leaf.rawData), ...issuer.chainDer];
}

/** An attested identity that expired an hour ago (made two days ago, valid for one day). */
export function expiredIdentity(enclave: Enclave): Promise<AttestedIdentity> {
  return createAttestedIdentity(enclave, {
    now: new Date(Date.now() - 2 * 86_400_000),
    validityMs: 86_400_000,
  });
}

export { createAttestedIdentity };
