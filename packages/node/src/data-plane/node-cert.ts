/**
 * The node's data-plane TLS certificate (DESIGN.md step 6): an ECDSA P-256 key pair
 * made in this process, a CSR for it, and the HFC's IssueNodeCert (proto/hfc.proto,
 * plain gRPC on loopback). Only the CSR leaves; the private key is kept in memory
 * (handed to the TLS stack as PEM, never written). The issued certificate must carry
 * our public key and chain to the fabric CA the config names.
 */
import "reflect-metadata";
import { webcrypto, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import * as grpc from "@grpc/grpc-js";
import { fail, HsmPoolError } from "@hsmpool/errors";
import { hfcProto } from "@hsmpool/wire";
import * as x509 from "@peculiar/x509";

const cryptoProvider = webcrypto as unknown as Parameters<
  typeof x509.Pkcs10CertificateRequestGenerator.create
>[1];
const EC_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;

export interface DataPlaneCredentials {
  /** PKCS#8 PEM of the in-memory key (for the TLS stack only). */
  keyPem: string;
  certPem: string;
  caPem: string;
  certFingerprint: string;
}

interface IssueNodeCertClient extends grpc.Client {
  IssueNodeCert(
    request: { nodeId: string; csrDer: Buffer },
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, response?: { certDer: Buffer; caCertDer: Buffer }) => void,
  ): grpc.ClientUnaryCall;
}

function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n");
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith("\n") ? "" : "\n"}-----END ${label}-----\n`;
}

async function makeCsr(
  nodeId: string,
  host: string,
): Promise<{ keys: webcrypto.CryptoKeyPair; csrDer: Uint8Array }> {
  const keys = (await webcrypto.subtle.generateKey(EC_P256, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const names: { type: "ip" | "dns"; value: string }[] = [
    { type: "ip", value: "127.0.0.1" },
    { type: "dns", value: "localhost" },
  ];
  if (host !== "127.0.0.1" && host !== "localhost") {
    names.push({ type: /^\d+\.\d+\.\d+\.\d+$/.test(host) ? "ip" : "dns", value: host });
  }
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: [{ CN: [nodeId] }, { O: ["hsmpool node"] }],
      keys: keys as unknown as Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[0]["keys"],
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [new x509.SubjectAlternativeNameExtension(names, false)],
    },
    cryptoProvider,
  );
  return { keys, csrDer: new Uint8Array(csr.rawData) };
}

function issue(hfcAddress: string, nodeId: string, csrDer: Uint8Array, timeoutMs: number) {
  const Client = hfcProto().FabricController.ctor;
  const client = new Client(hfcAddress, grpc.credentials.createInsecure()) as unknown as IssueNodeCertClient;
  return new Promise<{ certDer: Buffer; caCertDer: Buffer }>((resolve, reject) => {
    client.IssueNodeCert(
      { nodeId, csrDer: Buffer.from(csrDer) },
      { deadline: Date.now() + timeoutMs },
      (err, res) => {
        client.close();
        if (err || !res) {
          reject(
            new HsmPoolError(
              "ServiceUnavailable",
              `IssueNodeCert at ${hfcAddress} failed: ${err?.details ?? "empty"}`,
            ),
          );
        } else resolve(res);
      },
    );
  });
}

/** Checks the HFC's answer: our key, the configured CA, a valid signature. */
function checkIssued(
  certDer: Uint8Array,
  caDer: Uint8Array,
  configuredCaPem: string,
  spkiDer: Uint8Array,
): X509Certificate {
  let cert: X509Certificate;
  let ca: X509Certificate;
  try {
    cert = new X509Certificate(Buffer.from(certDer));
    ca = new X509Certificate(Buffer.from(caDer));
  } catch {
    return fail("BadParameter", "IssueNodeCert returned something that is not an X.509 certificate");
  }
  const configured = new X509Certificate(configuredCaPem);
  if (!Buffer.from(ca.raw).equals(Buffer.from(configured.raw))) {
    fail("Forbidden", "IssueNodeCert answered with a CA other than the fabric CA in the node config");
  }
  const certSpki = cert.publicKey.export({ type: "spki", format: "der" });
  if (!Buffer.from(certSpki).equals(Buffer.from(spkiDer))) {
    fail("Forbidden", "the issued data-plane certificate is not for this node's key");
  }
  if (!cert.verify(ca.publicKey))
    fail("Forbidden", "the issued data-plane certificate is not signed by the fabric CA");
  return cert;
}

export interface ObtainCertOptions {
  nodeId: string;
  hfcAddress: string;
  fabricCaCertPath: string;
  /** The data-plane host (added to the certificate's SANs). */
  host: string;
  /** Retries continue until this returns true. */
  stopped: () => boolean;
  onRetry: (error: HsmPoolError, attempt: number) => void;
}

/** Makes the key + CSR and asks the HFC until it answers (backoff 250 ms .. 2 s). */
export async function obtainDataPlaneCredentials(
  opts: ObtainCertOptions,
): Promise<DataPlaneCredentials | null> {
  const caPem = await readFile(opts.fabricCaCertPath, "utf8").catch((e: Error) =>
    fail("NotFound", `cannot read the fabric CA certificate ${opts.fabricCaCertPath}: ${e.message}`),
  );
  const { keys, csrDer } = await makeCsr(opts.nodeId, opts.host);
  const spkiDer = new Uint8Array(await webcrypto.subtle.exportKey("spki", keys.publicKey));
  let delayMs = 250;
  for (let attempt = 1; !opts.stopped(); attempt++) {
    try {
      const issued = await issue(opts.hfcAddress, opts.nodeId, csrDer, 5_000);
      const cert = checkIssued(issued.certDer, issued.caCertDer, caPem, spkiDer);
      const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
      const keyPem = pem("PRIVATE KEY", pkcs8);
      pkcs8.fill(0);
      return { keyPem, certPem: cert.toString(), caPem, certFingerprint: cert.fingerprint256 };
    } catch (e) {
      const err = e instanceof HsmPoolError ? e : new HsmPoolError("Internal", String(e));
      opts.onRetry(err, attempt);
      await new Promise((r) => setTimeout(r, delayMs));
      delayMs = Math.min(delayMs * 2, 2_000);
    }
  }
  return null;
}
